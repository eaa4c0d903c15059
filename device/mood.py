"""The mood engine: per-frame emotion probabilities in, one room mood out.

- Faces in a frame are combined, each weighted by its size and by the detector's and classifier's confidence.
- Frames are averaged over a sliding time window (`window_seconds`), so the frame rate does not matter.
- A new mood must lead with at least `min_confidence`, beat the current mood by `hysteresis`, and keep
  doing so for `dwell_seconds` before it is announced.
- With no face for `nobody_after_seconds`, the mood becomes "nobody". A face too dark to read (`Reading.dark`)
  adds nothing to the average but counts as someone here: in the dark the mood holds.
- `someone_here` says whether a face, readable or too dark, was seen within `nobody_after_seconds`: Home
  Assistant's occupancy sensor, which a person walking into a dark room that was already "nobody" turns on.
- Times are the readings' (`Reading.t`: one clock, which the camera feed keeps going when a camera is reopened).
  A reading from a camera just (re)opened, or after a gap (its time went back, or is more than `GAP_SECONDS` and
  the window after the last one: a clock that jumped, an analysis that stalled), starts a fresh window: the mood
  holds, a new mood must lead for its whole dwell again, and the time without a face goes on from where it was,
  the gap left out.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from device.events import EMOTIONS, NOBODY, MoodChange, Reading

GAP_SECONDS = 5.0  # readings further apart than this (or than the window) have a gap between them


@dataclass(frozen=True)
class MoodSettings:
    window_seconds: float = 1.0
    min_confidence: float = 0.40
    hysteresis: float = 0.10
    dwell_seconds: float = 1.0
    nobody_after_seconds: float = 30.0


def frame_probabilities(reading: Reading) -> tuple[np.ndarray, float] | None:
    """One probability vector for the frame and its weight, or None without faces."""
    if not reading.faces:
        return None
    width, height = reading.frame_size
    probs = np.array([f.probabilities for f in reading.faces], np.float64)
    size = np.array([math.sqrt(f.face.w * f.face.h / (width * height)) for f in reading.faces])
    weights = size * np.array([f.face.score for f in reading.faces]) * probs.max(axis=1)
    total = weights.sum()
    if total <= 0:
        return None
    return (probs * weights[:, None]).sum(0) / total, float(total)


class MoodEngine:
    def __init__(self, settings: MoodSettings | None = None) -> None:
        self.settings = settings or MoodSettings()
        self.mood: str = NOBODY
        self.confidence = 0.0
        self.average = np.full(len(EMOTIONS), 1 / len(EMOTIONS))
        self._window: deque[tuple[float, np.ndarray, float]] = deque()
        self._last_face_t: float | None = None
        self.someone_here = False
        self._candidate: str | None = None
        self._candidate_since = 0.0
        self._last_t: float | None = None  # the time of the last reading
        self._camera_opened = False

    @property
    def leader(self) -> str | None:
        """The mood the averaged probabilities point at now, before dwell; None when unsure or empty."""
        return self._candidate

    def update(self, reading: Reading) -> MoodChange | None:
        """Feed one frame's reading; returns a MoodChange when the room's mood settles on something new."""
        s, t = self.settings, reading.t
        if self._last_t is not None:
            step = t - self._last_t
            if self._camera_opened or not 0 <= step <= max(GAP_SECONDS, s.window_seconds):
                self._start_afresh(t)
        self._last_t, self._camera_opened = t, False
        combined = frame_probabilities(reading)
        if reading.dark:
            self._last_face_t = t
        if combined is not None:
            self._window.append((t, combined[0], combined[1]))
            self._last_face_t = t
        self.someone_here = self._last_face_t is not None and t - self._last_face_t < s.nobody_after_seconds
        while self._window and self._window[0][0] <= t - s.window_seconds:
            self._window.popleft()

        if not self._window:
            self._candidate = None
            gone_since = self._last_face_t
            if self.mood != NOBODY and gone_since is not None and t - gone_since >= s.nobody_after_seconds:
                return self._change(NOBODY, 1.0, t)
            return None

        weights = np.array([w for _, _, w in self._window])
        self.average = (np.stack([p for _, p, _ in self._window]) * weights[:, None]).sum(0) / weights.sum()
        best = int(np.argmax(self.average))
        best_p = float(self.average[best])
        current_p = float(self.average[EMOTIONS.index(self.mood)]) if self.mood in EMOTIONS else 0.0
        if self.mood in EMOTIONS:
            self.confidence = current_p
        leader = EMOTIONS[best]
        qualifies = best_p >= s.min_confidence and leader != self.mood and best_p - current_p >= s.hysteresis
        if not qualifies:
            self._candidate = None
            return None
        if leader != self._candidate:
            self._candidate, self._candidate_since = leader, t
        if t - self._candidate_since >= s.dwell_seconds:
            return self._change(leader, best_p, t)
        return None

    def camera_opened(self) -> None:
        """The next reading comes from a camera just (re)opened: it starts a fresh window."""
        self._camera_opened = True

    def _start_afresh(self, t: float) -> None:
        """After a gap: forget the window and the candidate; the time since the last face goes on from `t`."""
        self._window.clear()
        self._candidate = None
        if self._last_face_t is not None and self._last_t is not None:
            self._last_face_t = t - max(0.0, self._last_t - self._last_face_t)

    def _change(self, mood: str, confidence: float, t: float) -> MoodChange:
        change = MoodChange(
            mood=mood,
            previous=self.mood,
            confidence=round(confidence, 4),
            t=t,
            wall_time=time.time(),
            probabilities=tuple(round(float(p), 4) for p in self.average),
        )
        self.mood, self.confidence, self._candidate = mood, confidence, None
        return change
