"""What the page shows: a thread-safe, versioned snapshot of the room, fed by bus events.

Web requests read `snapshot()`; the live stream waits on `wait_for_change()`. Nothing here holds a picture.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from device.events import EMOTIONS, NOBODY, MoodChange, Reading


def leaning(average: Any) -> dict[str, Any] | None:
    """The top mood of the faces' averaged probabilities and its share: {"mood": "sad", "share": 0.61}."""
    if average is None or len(average) != len(EMOTIONS):
        return None
    best = max(range(len(EMOTIONS)), key=lambda i: average[i])
    return {"mood": EMOTIONS[best], "share": round(float(average[best]), 4)}


class RoomView:
    def __init__(self) -> None:
        self._lock = threading.Condition()
        self.version = 0
        self._mood: dict[str, Any] = {
            "name": NOBODY,
            "confidence": 0.0,
            "since": time.time(),
            "leader": None,
            "leaning": None,
        }
        self._faces: list[dict[str, Any]] = []
        self._ignored: list[list[int]] = []  # boxes of faces in an ignored area (a TV, a poster), not read
        self._dark: list[list[int]] = []  # boxes of faces too dark to read
        self._frame: dict[str, Any] = {"t": None, "wall_time": None}
        self._changes: deque[dict[str, Any]] = deque(maxlen=50)
        self._playing: dict[str, Any] | None = None
        self._errors: deque[dict[str, Any]] = deque(maxlen=20)
        self._extra: dict[str, Any] = {}
        self._face_signature: tuple = ()
        self._last_bump = 0.0

    def _bump(self) -> None:
        self.version += 1
        self._lock.notify_all()

    def on_reading(
        self, reading: Reading, leader: str | None = None, confidence: float | None = None, average: Any = None
    ) -> None:
        """A frame's faces; the mood the room is changing to (`leader`, once it qualifies); the current mood's share
        of the faces' averaged reading (`confidence`); and that average itself, whose top mood the page shows as
        what the faces read now ("leaning"), whether or not it is enough to change the room's mood."""
        faces = [
            {
                "box": list(f.face.box),
                "emotion": f.emotion,
                "confidence": round(max(f.probabilities), 3),
                "probabilities": dict(zip(EMOTIONS, (round(p, 3) for p in f.probabilities))),
            }
            for f in reading.faces
        ]
        ignored = [list(f.box) for f in reading.ignored]
        dark = [list(f.box) for f in reading.dark]
        signature = (*(f["emotion"] for f in faces), len(ignored), len(dark))
        with self._lock:
            self._faces = faces
            self._ignored = ignored
            self._dark = dark
            self._frame = {"t": reading.t, "wall_time": reading.wall_time, "size": list(reading.frame_size)}
            self._mood["leader"] = leader
            self._mood["leaning"] = leaning(average) if reading.faces else None
            if confidence is not None and self._mood["name"] != NOBODY:
                self._mood["confidence"] = round(confidence, 4)
            # Wake the page when what a person would see changes, and otherwise at most twice a second.
            if signature != self._face_signature or time.time() - self._last_bump > 0.5:
                self._face_signature = signature
                self._last_bump = time.time()
                self._bump()

    def on_mood(self, change: MoodChange) -> None:
        with self._lock:
            self._mood = {
                "name": change.mood,
                "confidence": change.confidence,
                "since": change.wall_time,
                "leader": None,
                "leaning": self._mood.get("leaning"),
            }
            self._changes.append(
                {
                    "mood": change.mood,
                    "previous": change.previous,
                    "confidence": change.confidence,
                    "at": change.wall_time,
                    "t": change.t,
                }
            )
            self._bump()

    def set_playing(self, playing: dict[str, Any] | None) -> None:
        with self._lock:
            self._playing = playing
            self._bump()

    def add_error(self, source: str, message: str) -> None:
        with self._lock:
            self._errors.append({"source": source, "message": message, "at": time.time()})
            self._bump()

    def set(self, key: str, value: Any) -> None:
        """Other facts the page shows (camera, pipeline, player status), replaced whole."""
        with self._lock:
            if self._extra.get(key) != value:
                self._extra[key] = value
                self._bump()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "version": self.version,
                "mood": dict(self._mood),
                "faces": list(self._faces),
                "ignored_faces": list(self._ignored),
                "dark_faces": list(self._dark),
                "frame": dict(self._frame),
                "recent_changes": list(self._changes)[-10:],
                "playing": self._playing,
                "errors": list(self._errors),
                **self._extra,
            }

    def wait_for_change(self, version: int, timeout: float) -> bool:
        """Block until the version moves past `version` or the timeout passes; True if it moved."""
        with self._lock:
            return self._lock.wait_for(lambda: self.version != version, timeout)
