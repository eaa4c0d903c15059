"""What flows down the pipeline: camera -> faces -> emotion -> mood -> actions."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NOBODY = "nobody"
# The word for each mood wherever a person reads one: "the room feels surprised", "Because you chose afraid". The
# page, the why line and Home Assistant's attributes use it; the API and the store keep the model's names.
MOOD_WORDS = {m: {"surprise": "surprised", "fear": "afraid", "disgust": "disgusted"}.get(m, m) for m in EMOTIONS}


def mood_word(mood: str) -> str:
    return MOOD_WORDS.get(mood, mood)


@dataclass(frozen=True)
class Frame:
    """One grey picture from a camera. It lives in memory only and is never written anywhere."""

    grey: np.ndarray  # uint8 [H, W]
    t: float  # seconds: the camera's own time, or the one clock once the feed has stamped it (see CameraFeed)
    index: int
    opening: int = 0  # which opening of the camera it came from: the feed counts them, and a new one starts afresh


@dataclass(frozen=True)
class Face:
    """A face found in a frame: its box in frame pixels, the detector's score and eye/nose/mouth points."""

    x: float
    y: float
    w: float
    h: float
    score: float
    keypoints: tuple[tuple[float, float], ...] = ()

    @property
    def box(self) -> tuple[int, int, int, int]:
        return round(self.x), round(self.y), round(self.w), round(self.h)

    def scaled(self, k: float) -> Face:
        """The same face in a frame k times larger."""
        return Face(
            self.x * k, self.y * k, self.w * k, self.h * k, self.score, tuple((x * k, y * k) for x, y in self.keypoints)
        )


@dataclass(frozen=True)
class FaceEmotion:
    face: Face
    probabilities: tuple[float, ...]  # in EMOTIONS order, after the household's learned adjustment (if any)
    model: tuple[float, ...] = ()  # the model's own reading, where an adjustment changed it

    @property
    def model_probabilities(self) -> tuple[float, ...]:
        """What the model itself read, before any learned adjustment (what a correction records)."""
        return self.model or self.probabilities

    @property
    def emotion(self) -> str:
        return EMOTIONS[int(np.argmax(self.probabilities))]


@dataclass(frozen=True)
class Reading:
    """Everything the pipeline learned from one frame."""

    t: float  # the one clock: seconds that never go back, whichever camera took the frame (video time in a replay)
    faces: tuple[FaceEmotion, ...]
    frame_size: tuple[int, int]  # (width, height)
    wall_time: float = 0.0  # time.time() when the frame arrived
    timings_ms: dict[str, float] = field(default_factory=dict)
    ignored: tuple[Face, ...] = ()  # faces found in an ignored area (a TV, a poster): not read, not counted
    dark: tuple[Face, ...] = ()  # faces too dark to read (pipeline.TOO_DARK_BELOW): someone is here, not read


@dataclass(frozen=True)
class MoodChange:
    """The room's mood settled on something new."""

    mood: str  # one of EMOTIONS, or NOBODY
    previous: str | None
    confidence: float
    t: float  # the time (Reading.t) of the frame that settled it
    wall_time: float  # time.time() when it was decided
    probabilities: tuple[float, ...] = ()
