"""The last few seconds of what the mood engine heard, in memory only: what a correction is made of.

Each entry is one face's reading as the model gave it (seven probabilities, before any learned adjustment), with
the face's size (its width over the frame's) and the detector's score, and the weight the mood engine gave it.
No picture, crop, box position or face landmark is kept, here or anywhere the learner stores.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from device.events import Reading

KEEP_SECONDS = 15.0


@dataclass(frozen=True)
class FaceReading:
    at: float  # monotonic time it was heard
    probabilities: tuple[float, ...]  # the model's, in EMOTIONS order
    size: float  # face width / frame width
    score: float  # the detector's
    weight: float  # size * score * top probability: the mood engine's weighting, for a square face

    def as_record(self, now: float) -> dict:
        """What a correction stores of it: numbers only."""
        return {
            "p": [round(p, 4) for p in self.probabilities],
            "size": round(self.size, 3),
            "score": round(self.score, 3),
            "age": round(max(0.0, now - self.at), 1),
        }


def weighted_average(readings: list[FaceReading] | list[dict]) -> np.ndarray | None:
    """The readings' average probabilities, weighted as the mood engine weighs faces; None without readings."""
    if not readings:
        return None
    if isinstance(readings[0], dict):
        p = np.array([r["p"] for r in readings], np.float64)
        w = np.array([r["size"] * r["score"] * max(r["p"]) for r in readings])
    else:
        p = np.array([r.probabilities for r in readings], np.float64)
        w = np.array([r.weight for r in readings])
    if w.sum() <= 0:
        w = np.ones(len(p))
    avg = (p * w[:, None]).sum(0) / w.sum()
    return avg / avg.sum()


class RecentReadings:
    def __init__(self, keep_seconds: float = KEEP_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._keep = keep_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._faces: deque[FaceReading] = deque()

    def heard(self, reading: Reading) -> None:
        """The faces the mood engine heard in one frame (classified in that frame)."""
        if not reading.faces:
            return
        now = self._clock()
        width = reading.frame_size[0] or 1
        entries = []
        for f in reading.faces:
            probs = f.model_probabilities
            size = f.face.w / width
            entries.append(FaceReading(now, tuple(probs), size, f.face.score, size * f.face.score * max(probs)))
        with self._lock:
            self._faces.extend(entries)
            while self._faces and self._faces[0].at < now - self._keep:
                self._faces.popleft()

    def last(self, seconds: float = 10.0, within: float = 60.0) -> list[FaceReading]:
        """The readings of the `seconds` before the newest one, if that is at most `within` seconds old."""
        with self._lock:
            faces = list(self._faces)
        if not faces or self._clock() - faces[-1].at > within:
            return []
        end = faces[-1].at
        return [f for f in faces if f.at >= end - seconds]

    def clear(self) -> None:
        with self._lock:
            self._faces.clear()
