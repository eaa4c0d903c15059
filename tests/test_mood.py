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


def run(engine: MoodEngine, stream, fps: float = 10.0, start: float = 0.0):
    """stream: [(seconds, probabilities or None)] from time `start` -> list of (t, mood) changes."""
    changes, t = [], start
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


HOUR = 3600.0


def test_readings_whose_times_start_again_at_zero_after_an_hour_change_the_mood_within_seconds():
    # What a reopened camera used to send: its own times, from 0 again. The hour-old readings, later than all
    # the new ones, must not stay in the window.
    engine = MoodEngine(MoodSettings(window_seconds=1, dwell_seconds=1))
    assert run(engine, [(HOUR, probs("happy", 0.8))], fps=2) == [(1.0, "happy")]
    assert run(engine, [(10, probs("sad", 0.9))]) == [(pytest.approx(1.0, abs=0.11), "sad")]  # within a frame
    (at, mood), *_ = run(engine, [(10, probs("angry", 0.9))], start=10.0)  # and it goes on changing
    assert mood == "angry" and at <= 10 + 1 + 1 + 0.11  # to lead the window, then the dwell


def test_a_reopened_camera_starts_a_fresh_window():
    settings = MoodSettings(window_seconds=3, dwell_seconds=1)
    fresh, carried_on = MoodEngine(settings), MoodEngine(settings)
    for engine in (fresh, carried_on):
        assert [m for _, m in run(engine, [(HOUR, probs("happy", 0.9))], fps=2)] == ["happy"]
    fresh.camera_opened()
    # The one clock went on through a short privacy-mode toggle: only the reopening says the old readings are done.
    assert run(fresh, [(5, probs("sad", 0.9))], start=HOUR + 0.5) == [(pytest.approx(HOUR + 1.5, abs=0.11), "sad")]
    later = run(carried_on, [(5, probs("sad", 0.9))], start=HOUR + 0.5)
    assert later[0][0] > HOUR + 2, "without the reopening, the hour's happy readings would have counted"


def test_a_clock_that_jumps_ahead_does_not_announce_a_stale_mood():
    engine = MoodEngine(MoodSettings(window_seconds=1, dwell_seconds=3, nobody_after_seconds=30))
    assert [m for _, m in run(engine, [(5, probs("happy", 0.9)), (2, probs("sad", 0.9))])] == ["happy"]
    assert engine.leader == "sad"  # two of its three seconds of dwell are done
    # An hour later by the clock, sad is still in view: it must lead for a whole dwell again, and the hour the
    # clock skipped does not make the room empty.
    assert run(engine, [(5, probs("sad", 0.9))], start=7 + HOUR) == [(pytest.approx(7 + HOUR + 3, abs=0.11), "sad")]
    assert engine.someone_here


def test_nobody_counts_only_time_watched_across_jumps_and_reopenings():
    engine = MoodEngine(MoodSettings(window_seconds=1, dwell_seconds=1, nobody_after_seconds=5))
    run(engine, [(HOUR, probs("happy", 0.9))], fps=2)
    assert engine.someone_here and engine.mood == "happy"
    engine.camera_opened()  # privacy mode on for ten minutes, then off: the room is empty now
    changes, here, t = [], [], HOUR + 600
    while t < HOUR + 610:
        if c := engine.update(reading(t)):
            changes.append((round(c.t - HOUR - 600, 2), c.mood))
        here.append((round(t - HOUR - 600, 1), engine.someone_here))
        t += 0.1
    assert changes == [(pytest.approx(5.0, abs=0.11), NOBODY)]  # five seconds watched, not ten minutes closed
    assert next(t for t, h in here if not h) == pytest.approx(5.0, abs=0.11)
    # Two seconds more of an empty room, then the clock jumps back a day: still nobody, and a face counts at once.
    engine.update(reading(HOUR + 612))
    engine.update(reading(HOUR + 612 - 86400))
    assert engine.mood == NOBODY and not engine.someone_here
    engine.update(reading(HOUR + 612.1 - 86400, (probs("sad", 0.9), 100, 0.9)))
    assert engine.someone_here
