"""What the page is told about the room's mood while it changes: the shown mood's share, the mood the faces read
now and its share, and the mood the room is changing to. No camera, no model: synthetic readings."""

from __future__ import annotations

from device.events import EMOTIONS, Face, FaceEmotion, Reading
from device.mood import MoodEngine, MoodSettings
from device.roomview import RoomView


def face_reading(t: float, mood: str | None, p: float = 0.8) -> Reading:
    if mood is None:
        return Reading(t, (), (640, 480))
    rest = (1 - p) / (len(EMOTIONS) - 1)
    probs = tuple(p if e == mood else rest for e in EMOTIONS)
    return Reading(t, (FaceEmotion(Face(10, 10, 100, 100, 0.9), probs),), (640, 480))


def feed(engine: MoodEngine, view: RoomView, t0: float, seconds: float, mood: str | None, p: float = 0.8) -> float:
    t = t0
    while t < t0 + seconds - 1e-9:
        r = face_reading(t, mood, p)
        change = engine.update(r)
        if change:
            view.on_mood(change)
        view.on_reading(r, engine.leader, engine.confidence, engine.average)
        t += 0.1
    return t


def test_during_a_change_the_view_says_what_the_faces_read_and_where_the_mood_goes():
    engine = MoodEngine(MoodSettings(window_seconds=1, dwell_seconds=2, min_confidence=0.4, hysteresis=0.1))
    view = RoomView()
    t = feed(engine, view, 0.0, 5, "happy")
    mood = view.snapshot()["mood"]
    assert mood["name"] == "happy" and mood["leader"] is None
    assert mood["leaning"] == {"mood": "happy", "share": mood["confidence"]} and mood["confidence"] > 0.7
    # The faces turn sad: within the dwell, happy is still the room's mood, but its share is near 0.
    t = feed(engine, view, t, 1.5, "sad")
    mood = view.snapshot()["mood"]
    assert mood["name"] == "happy" and mood["confidence"] < 0.1  # what the page once showed as "0% sure"
    assert mood["leader"] == "sad" and mood["leaning"]["mood"] == "sad" and mood["leaning"]["share"] > 0.7
    t = feed(engine, view, t, 1.5, "sad")
    mood = view.snapshot()["mood"]
    assert mood["name"] == "sad" and mood["leader"] is None and mood["leaning"]["mood"] == "sad"
    # Faces that lean neutral, but too weakly to change the mood: leaning, and no leader.
    t = feed(engine, view, t, 2, "neutral", p=0.35)
    mood = view.snapshot()["mood"]
    assert mood["name"] == "sad" and mood["leader"] is None
    assert mood["leaning"]["mood"] == "neutral" and mood["leaning"]["share"] < 0.4
    # No face in this frame: nothing is read now.
    feed(engine, view, t, 0.2, None)
    assert view.snapshot()["mood"]["leaning"] is None
