"""The one clock of the readings: frame times that never go back, whichever camera took the frames.

Each camera counts from its own opening (a replay in its video's time), so a camera that is reopened (privacy
mode off, another source chosen, a webcam plugged back in) starts again at 0. `FrameClock` turns those times into
one timeline: within an opening it moves as the camera's times do, so a replay run faster than real time keeps
its video's pace; the first frame of a new opening, or a frame whose time went back, carries on from the last
time given plus the real time that passed since.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class FrameClock:
    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now  # real time, only to measure how long the camera was away
        self._offset = 0.0  # added to the camera's times in the current opening
        self._last: float | None = None
        self._last_at = 0.0
        self._new_opening = True

    def camera_opened(self) -> None:
        """The next frame comes from a camera that counts from its own new start."""
        self._new_opening = True

    def stamp(self, camera_t: float) -> float:
        """The time of a frame the camera stamped `camera_t`: never before the last time given."""
        now = self._now()
        t = self._offset + camera_t
        if self._last is not None and (self._new_opening or t < self._last):
            self._offset = self._last + max(0.0, now - self._last_at) - camera_t
            t = self._offset + camera_t
        self._new_opening = False
        self._last, self._last_at = t, now
        return t
