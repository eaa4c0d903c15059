"""The mood engine on synthetic probability streams: deterministic, no camera, no model."""

from __future__ import annotations

import numpy as np
import pytest

from device.events import EMOTIONS, NOBODY, Face, FaceEmotion, Reading
from device.mood import MoodEngine, MoodSettings, frame_probabilities


def probs(main: str, p: float) -> tuple[float, ...]:
    rest = (1 - p) / (len(EMOTIONS) - 1)
    return tuple(p if e == main else rest for e in EMOTIONS)


def reading(t: float, *faces: tuple[tuple[float, ...], float, float]) -> Reading:
    """faces: (probabilities, box side in px, detector score) in a 640x480 frame."""
    return Reading(t, tuple(FaceEmotion(Face(10, 10, side, side, score), p) for p, side, score in faces), (640, 480))


def run(engine: MoodEngine, stream, fps: float = 10.0):
    """stream: [(seconds, probabilities or None)] -> list of (t, mood) changes."""
    changes, t = [], 0.0
    for seconds, p in stream:
        for _ in range(round(seconds * fps)):
            r = reading(t, (p, 100, 0.9)) if p is not None else reading(t)
            c = engine.update(r)
            if c:
                changes.append((round(c.t, 2), c.mood))
            t += 1 / fps
    return changes


def test_first_mood_waits_for_the_dwell():
    engine = MoodEngine(MoodSettings(window_seconds=1, dwell_seconds=3, min_confidence=0.4, hysteresis=0.1))
    changes = run(engine, [(10, probs("happy", 0.8))])
    assert changes == [(3.0, "happy")]  # first frame at 0: the leader since 0, announced at 3 s


def test_a_short_blip_does_not_change_the_mood():
    engine = MoodEngine(MoodSettings(window_seconds=0.5, dwell_seconds=2))
    changes = run(engine, [(5, probs("happy", 0.8)), (1.5, probs("sad", 0.9)), (5, probs("happy", 0.8))])
    assert [m for _, m in changes] == ["happy"]


def test_a_lasting_change_is_announced_after_dwell():
    engine = MoodEngine(MoodSettings(window_seconds=0.5, dwell_seconds=2))
    changes = run(engine, [(5, probs("happy", 0.8)), (5, probs("sad", 0.9))])
    assert [m for _, m in changes] == ["happy", "sad"]
    sad_at = changes[1][0]
    assert 5 + 2 <= sad_at <= 5 + 2 + 0.5 + 0.11  # dwell plus at most the averaging window


def test_hysteresis_holds_the_current_mood_against_a_narrow_lead():
    # happy 0.42 vs sad 0.38: sad leads nowhere; then sad 0.45 vs happy 0.40: lead 0.05 < hysteresis 0.1
    narrow = tuple(0.40 if e == "happy" else 0.45 if e == "sad" else 0.15 / 5 for e in EMOTIONS)
    engine = MoodEngine(MoodSettings(window_seconds=0.5, dwell_seconds=1, hysteresis=0.1, min_confidence=0.3))
    changes = run(engine, [(3, probs("happy", 0.8)), (10, narrow)])
    assert [m for _, m in changes] == ["happy"]
    # Without hysteresis the same stream flips.
    engine = MoodEngine(MoodSettings(window_seconds=0.5, dwell_seconds=1, hysteresis=0.0, min_confidence=0.3))
    assert [m for _, m in run(engine, [(3, probs("happy", 0.8)), (10, narrow)])] == ["happy", "sad"]


def test_below_minimum_confidence_nothing_is_announced():
    engine = MoodEngine(MoodSettings(min_confidence=0.5, dwell_seconds=1))
    assert run(engine, [(10, probs("angry", 0.35))]) == []


def test_nobody_after_the_timeout():
    engine = MoodEngine(MoodSettings(window_seconds=1, dwell_seconds=1, nobody_after_seconds=5))
    changes = run(engine, [(3, probs("happy", 0.9)), (10, None)])
    assert [m for _, m in changes] == ["happy", NOBODY]
    assert changes[1][0] == pytest.approx(3 + 5, abs=0.15)


def test_frame_rate_does_not_change_the_timeline():
    stream = [(4, probs("happy", 0.8)), (6, probs("surprise", 0.7)), (8, probs("neutral", 0.6))]
    slow = run(MoodEngine(MoodSettings(window_seconds=1, dwell_seconds=2)), stream, fps=5)
    fast = run(MoodEngine(MoodSettings(window_seconds=1, dwell_seconds=2)), stream, fps=30)
    assert [m for _, m in slow] == [m for _, m in fast] == ["happy", "surprise", "neutral"]
    for (a, _), (b, _) in zip(slow, fast):
        assert abs(a - b) <= 2 / 5  # within two frames of the slower stream


def test_bigger_and_surer_faces_weigh_more():
    near = (probs("happy", 0.9), 200, 0.95)
    far = (probs("sad", 0.9), 40, 0.6)
    p, _ = frame_probabilities(reading(0, near, far))
    assert p[EMOTIONS.index("happy")] > 0.7 > p[EMOTIONS.index("sad")]
    # Two equal faces count equally.
    p, _ = frame_probabilities(reading(0, (probs("happy", 0.9), 100, 0.9), (probs("sad", 0.9), 100, 0.9)))
    assert p[EMOTIONS.index("happy")] == pytest.approx(p[EMOTIONS.index("sad")])


def test_change_events_carry_times_and_the_previous_mood():
    engine = MoodEngine(MoodSettings(window_seconds=0.5, dwell_seconds=1))
    events = []
    t = 0.0
    for p in [probs("happy", 0.9)] * 30 + [probs("angry", 0.9)] * 30:
        c = engine.update(reading(t, (p, 100, 0.9)))
        if c:
            events.append(c)
        t += 0.1
    assert [(e.previous, e.mood) for e in events] == [(NOBODY, "happy"), ("happy", "angry")]
    assert all(e.wall_time > 0 and 0 < e.confidence <= 1 for e in events)
    assert np.isclose(sum(events[1].probabilities), 1.0, atol=1e-3)
