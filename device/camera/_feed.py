"""Keeps a camera running: opens it, reports failures, and retries with backoff. The daemon never dies from a
camera that fails at start, freezes its errors, or is unplugged mid-run.

Every frame it hands on carries the one clock's time (`FrameClock`), and the number of the camera's opening
(`Frame.opening`): a reopened camera's frames go on from where the last ones were, and the mood starts a fresh
window with them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from device.camera import Camera, CameraError
from device.camera._clock import FrameClock
from device.events import Frame

log = logging.getLogger(__name__)
BACKOFF = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)


class CameraFeed:
    def __init__(
        self,
        opener: Callable[[], Camera],
        heartbeat: Callable[[], None] = lambda: None,
        backoff: tuple[float, ...] = BACKOFF,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._opener = opener
        self._heartbeat = heartbeat
        self._backoff = backoff
        self.camera: Camera | None = None
        self.state = "starting"  # starting | live | retrying | ended | off
        self.error: str | None = None
        self.failures = 0
        self.retry_at: float | None = None
        self.source = "none"
        self.paused = threading.Event()  # privacy mode: camera closed until cleared
        self._reopen: Callable[[], Camera] | None = None
        self._clock = FrameClock(clock)
        self.openings = 0  # how many times a camera was opened; the frames carry it

    def switch(self, opener: Callable[[], Camera]) -> None:
        """Use another camera source from the next frame on (the settings page changed it)."""
        self._reopen = opener

    def _wait(self, seconds: float, stop: threading.Event) -> None:
        end = time.monotonic() + seconds
        while not stop.is_set() and time.monotonic() < end:
            self._heartbeat()
            stop.wait(min(0.5, max(0.0, end - time.monotonic())))

    def _fail(self, reason: str, stop: threading.Event) -> None:
        if self.camera is not None:
            try:
                self.camera.close()
            except Exception:
                log.debug("closing %s failed", self.source, exc_info=True)
            self.camera = None
        delay = self._backoff[min(self.failures, len(self._backoff) - 1)]
        self.failures += 1
        self.state, self.error, self.retry_at = "retrying", reason, time.time() + delay
        log.error("camera problem: %s; retrying in %.0f s (attempt %d)", reason, delay, self.failures)
        self._wait(delay, stop)

    def next_frame(self, stop: threading.Event) -> Frame | None:
        """The next frame; None when stopping or when a replay ended. Never raises for camera trouble."""
        while not stop.is_set():
            if self._reopen is not None:
                self._opener, self._reopen = self._reopen, None
                if self.camera is not None:
                    self.camera.close()
                    self.camera = None
                self.failures, self.state = 0, "starting"
            if self.paused.is_set():
                if self.camera is not None:
                    self.camera.close()
                    self.camera = None
                self.state, self.source = "off", "off (privacy mode)"
                self._wait(0.5, stop)
                continue
            if self.camera is None:
                try:
                    self.camera = self._opener()
                    self.openings += 1
                    self._clock.camera_opened()
                    self.source = self.camera.name
                    self.state, self.retry_at = "live", None
                    if self.failures:
                        log.info("camera %s is back after %d failed attempt(s)", self.source, self.failures)
                    self.failures = 0
                    self.error = None
                except CameraError as exc:
                    self._fail(str(exc), stop)
                    continue
            try:
                frame = self.camera.read()
            except CameraError as exc:
                self._fail(str(exc), stop)
                continue
            except Exception as exc:  # a driver or decoder bug is still a camera problem
                self._fail(f"{type(exc).__name__}: {exc}", stop)
                continue
            if frame is None:
                self.state = "ended"
                return None
            return replace(frame, t=self._clock.stamp(frame.t), opening=self.openings)
        return None

    def close(self) -> None:
        if self.camera is not None:
            self.camera.close()
            self.camera = None
