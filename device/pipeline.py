"""The frame loop: camera -> faces -> emotion -> mood, publishing what it finds on the bus.

`Pipeline.process` is the whole per-frame step; `run` drives it from the camera feed on its own thread and
pings `heartbeat` (the systemd watchdog) only while frames or camera retries make progress.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

import cv2
import numpy as np

from device.bus import Bus
from device.camera import CameraFeed
from device.emotion import EmotionClassifier
from device.events import FaceEmotion, Frame, MoodChange, Reading
from device.faces import FaceDetector
from device.mood import MoodEngine

log = logging.getLogger(__name__)
DETECT_WIDTH = 320


class Pipeline:
    def __init__(
        self, detector: FaceDetector, classifier: EmotionClassifier, engine: MoodEngine, bus: Bus | None = None
    ) -> None:
        self.detector, self.classifier, self.engine = detector, classifier, engine
        self.bus = bus
        self.frames = 0
        self.started = time.monotonic()
        self._arrivals: deque[float] = deque(maxlen=60)
        self._timings: dict[str, deque[float]] = {}
        self.last_reading: Reading | None = None
        self.keep_last_frame = False  # only while the owner's live preview is on; memory only
        self.last_grey: np.ndarray | None = None

    def process(self, frame: Frame, capture_ms: float = 0.0) -> tuple[Reading, MoodChange | None]:
        t0 = time.perf_counter()
        arrived = time.time()
        grey = frame.grey
        h, w = grey.shape[:2]
        if w > DETECT_WIDTH:
            k = w / DETECT_WIDTH
            small = cv2.resize(grey, (DETECT_WIDTH, round(h / k)), interpolation=cv2.INTER_AREA)
        else:
            k, small = 1.0, grey
        faces = self.detector.detect(small)
        t1 = time.perf_counter()
        if k != 1.0:
            faces = [f.scaled(k) for f in faces]
        results = tuple(FaceEmotion(f, tuple(float(p) for p in self.classifier.classify(grey, f))) for f in faces)
        t2 = time.perf_counter()
        timings = {"capture": capture_ms, "detect": (t1 - t0) * 1000, "classify": (t2 - t1) * 1000}
        reading = Reading(frame.t, results, (w, h), arrived, timings)
        change = self.engine.update(reading)
        timings["mood"] = (time.perf_counter() - t2) * 1000
        self._account(timings)
        self.last_reading = reading
        self.last_grey = grey if self.keep_last_frame else None
        if self.bus is not None:
            self.bus.publish(reading)
            if change is not None:
                self.bus.publish(change)
        return reading, change

    def _account(self, timings: dict[str, float]) -> None:
        self.frames += 1
        self._arrivals.append(time.monotonic())
        for stage, ms in timings.items():
            self._timings.setdefault(stage, deque(maxlen=120)).append(ms)

    @property
    def fps(self) -> float:
        if len(self._arrivals) < 2 or time.monotonic() - self._arrivals[-1] > 2.0:
            return 0.0
        return (len(self._arrivals) - 1) / max(1e-6, self._arrivals[-1] - self._arrivals[0])

    def latency_ms(self) -> dict[str, float]:
        """Median milliseconds per stage over the last frames."""
        return {stage: round(float(np.median(v)), 2) for stage, v in self._timings.items() if v}

    def run(
        self,
        feed: CameraFeed,
        stop: threading.Event,
        heartbeat: Callable[[], None] = lambda: None,
        max_fps: float = 0.0,
    ) -> None:
        """Process frames from the feed until `stop` is set or a replay ends."""
        min_gap = 1.0 / max_fps if max_fps > 0 else 0.0
        last = 0.0
        while not stop.is_set():
            t0 = time.perf_counter()
            frame = feed.next_frame(stop)
            capture_ms = (time.perf_counter() - t0) * 1000
            if frame is None:
                break
            now = time.monotonic()
            if feed.camera is not None and feed.camera.live and now - last < min_gap:
                heartbeat()
                continue  # a live camera faster than max_fps: skip frames rather than heat the Pi
            last = now
            try:
                self.process(frame, capture_ms)
            except Exception:
                log.exception("frame %d could not be processed", frame.index)
            heartbeat()
