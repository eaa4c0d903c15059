"""The mood engine on synthetic probability streams: deterministic, no camera, no model."""

from __future__ import annotations

import time

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
    assert engine.leader is None  # the page shows no mood leading either


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


def test_a_face_the_classifier_is_sure_of_weighs_more_than_an_unsure_one():
    """Same size, same detector score: a face read as happy at 0.9 outweighs one read as sad at 0.3 by three to one."""
    sure, unsure = probs("happy", 0.9), probs("sad", 0.3)
    p, weight = frame_probabilities(reading(0, (sure, 100, 0.9), (unsure, 100, 0.9)))
    expected = (0.9 * np.array(sure) + 0.3 * np.array(unsure)) / 1.2
    assert p == pytest.approx(expected)
    assert p[EMOTIONS.index("happy")] == pytest.approx((0.9 * 0.9 + 0.3 * 0.7 / 6) / 1.2)  # 0.70, not 0.47
    side = np.sqrt(100 * 100 / (640 * 480))  # each face's size: the square root of the share of the frame it fills
    assert weight == pytest.approx(side * 0.9 * 0.9 + side * 0.9 * 0.3)


def test_a_frame_weighs_what_its_faces_weigh():
    """A face filling the whole frame, found and read with full confidence, weighs 1; a frame's weight is the sum
    of its faces' (size x detector score x the classifier's top probability)."""
    whole = Reading(0, (FaceEmotion(Face(0, 0, 640, 480, 1.0), probs("happy", 1.0)),), (640, 480))
    assert frame_probabilities(whole)[1] == pytest.approx(1.0)
    quarter = Reading(0, (FaceEmotion(Face(0, 0, 320, 240, 0.5), probs("sad", 0.8)),), (640, 480))
    assert frame_probabilities(quarter)[1] == pytest.approx(0.5 * 0.5 * 0.8)
    # A frame whose faces the detector gives no confidence at all adds nothing.
    assert frame_probabilities(reading(0, (probs("happy", 0.9), 100, 0.0))) is None
    assert frame_probabilities(reading(0)) is None


def test_frames_with_bigger_faces_count_for_more_of_the_window():
    """Frames alternate between someone close by (happy) and someone far away (sad): the window leans to the
    close face as much as a single frame with both faces in it would."""
    near, far = (probs("happy", 0.8), 200, 0.9), (probs("sad", 0.8), 50, 0.9)
    engine = MoodEngine(MoodSettings(window_seconds=1, dwell_seconds=1))
    changes, t = [], 0.0
    for i in range(30):
        if c := engine.update(reading(t, near if i % 2 == 0 else far)):
            changes.append(c.mood)
        t += 0.1
    together, _ = frame_probabilities(reading(0, near, far))
    assert engine.average == pytest.approx(together, abs=1e-9)
    assert engine.average[EMOTIONS.index("happy")] == pytest.approx((0.8 * 4 + 0.2 / 6) / 5)  # 0.65, not 0.45
    assert changes == ["happy"]


def test_a_new_leader_waits_its_own_dwell_when_another_was_leading():
    """Sad leads for 1.6 s, not long enough, then happy leads: happy's dwell counts from when it took the lead."""
    engine = MoodEngine(MoodSettings(window_seconds=0.1, dwell_seconds=2))  # a window of one frame
    changes, t = [], 0.0
    for p in [probs("sad", 0.9)] * 16 + [probs("happy", 0.9)] * 40:
        if c := engine.update(reading(t, (p, 100, 0.9))):
            changes.append((round(c.t, 2), c.mood))
        t = round(t + 0.1, 10)
    assert changes == [(3.6, "happy")]  # not at 2.0 s, the dwell of sad's lead


def test_the_sureness_shown_follows_the_current_mood():
    """The page's "X% sure" is the current mood's share of the window, frame by frame, not the share it had when
    it was announced."""
    engine = MoodEngine(MoodSettings(window_seconds=0.5, dwell_seconds=1))
    fresh = MoodEngine()
    assert (fresh.mood, fresh.confidence, fresh.leader, fresh.someone_here) == (NOBODY, 0.0, None, False)
    assert fresh.average == pytest.approx([1 / len(EMOTIONS)] * len(EMOTIONS))  # no reading yet: no leaning
    run(engine, [(2, probs("happy", 0.9))])
    assert engine.mood == "happy" and engine.confidence == pytest.approx(0.9)
    run(engine, [(1, probs("happy", 0.6))], start=2.0)
    assert engine.mood == "happy" and engine.confidence == pytest.approx(0.6)
    assert engine.confidence == pytest.approx(engine.average[EMOTIONS.index("happy")])


def test_the_thresholds_are_inclusive():
    """ "At least min_confidence" and "by hysteresis": a lead of exactly either is enough. A face filling the frame
    with detector score 1 keeps the numbers exact."""

    def whole(t: float, p: tuple[float, ...]) -> Reading:
        return Reading(t, (FaceEmotion(Face(0, 0, 640, 480, 1.0), p),), (640, 480))

    at_minimum = tuple(0.5 if e == "happy" else 0.5 / 6 for e in EMOTIONS)
    engine = MoodEngine(MoodSettings(window_seconds=1, dwell_seconds=1, min_confidence=0.5, hysteresis=0.25))
    changes = [c.mood for i in range(21) if (c := engine.update(whole(i / 10, at_minimum)))]
    assert changes == ["happy"]
    lead_of_hysteresis = tuple({"happy": 0.25, "sad": 0.5}.get(e, 0.25 / 5) for e in EMOTIONS)
    changes = [c.mood for i in range(21, 51) if (c := engine.update(whole(i / 10, lead_of_hysteresis)))]
    assert changes == ["sad"]


def test_a_reading_leaves_the_window_when_it_is_exactly_window_seconds_old():
    engine = MoodEngine(MoodSettings(window_seconds=1))
    engine.update(reading(0.0, (probs("happy", 0.9), 100, 0.9)))
    engine.update(reading(1.0, (probs("sad", 0.9), 100, 0.9)))
    assert engine.average == pytest.approx(probs("sad", 0.9))


def test_frames_that_share_a_time_or_come_five_seconds_apart_go_on_with_the_window():
    """A camera whose time stamps are coarse sends frames with equal times; a slow replay frames 5 s apart (the
    longest step that is not a gap). Neither starts the dwell again."""
    engine = MoodEngine(MoodSettings(window_seconds=1, dwell_seconds=1))
    changes = []
    for i in range(30):
        t = (i // 2) / 10  # every time twice
        if c := engine.update(reading(t, (probs("happy", 0.9), 100, 0.9))):
            changes.append((c.t, c.mood))
    assert changes == [(1.0, "happy")]
    engine = MoodEngine(MoodSettings(window_seconds=1, dwell_seconds=6))
    changes = [c.t for t in (0.0, 5.0, 10.0) if (c := engine.update(reading(t, (probs("sad", 0.9), 100, 0.9))))]
    assert changes == [10.0]


def test_someone_leaves_when_the_mood_becomes_nobody_not_a_frame_before_or_after():
    """Home Assistant's "someone present" and the mood agree: both turn at nobody_after_seconds."""
    engine = MoodEngine(MoodSettings(window_seconds=1, dwell_seconds=1, nobody_after_seconds=30))
    engine.update(reading(0.0, (probs("happy", 0.9), 100, 0.9)))
    engine.update(reading(1.0, (probs("happy", 0.9), 100, 0.9)))
    assert engine.mood == "happy"
    seen = []
    for t in range(2, 33):
        c = engine.update(reading(float(t)))
        seen.append((t, engine.someone_here, c.mood if c else None))
    assert seen[28] == (30, True, None)
    assert seen[29] == (31, False, NOBODY)  # 30 s after the last face


def test_a_face_too_dark_to_read_keeps_the_room_occupied_and_the_mood_held():
    engine = MoodEngine(MoodSettings(window_seconds=1, dwell_seconds=1, nobody_after_seconds=5))
    run(engine, [(2, probs("happy", 0.9))])
    t, changes = 2.0, []
    for _ in range(100):  # 10 s of a face in the dark, twice nobody_after_seconds
        dark = Reading(t, (), (640, 480), dark=(Face(10, 10, 100, 100, 0.9),))
        if c := engine.update(dark):
            changes.append(c.mood)
        t += 0.1
    assert changes == [] and engine.mood == "happy" and engine.someone_here
    assert engine.leader is None  # nothing to read: no mood is leading


def test_an_empty_room_then_a_reopened_camera_then_a_face():
    """The camera opens on an empty room and is reopened before anyone came: the first face is read as usual."""
    engine = MoodEngine(MoodSettings(window_seconds=1, dwell_seconds=1))
    for i in range(10):
        assert engine.update(reading(i / 10)) is None
    assert not engine.someone_here and engine.leader is None
    engine.camera_opened()
    changes = run(engine, [(3, probs("surprise", 0.9))], start=1.0)
    assert changes == [(pytest.approx(2.0, abs=0.11), "surprise")] and engine.someone_here


def test_change_events_carry_times_and_the_previous_mood():
    engine = MoodEngine(MoodSettings(window_seconds=0.5, dwell_seconds=1))
    events = []
    for i, p in enumerate([probs("happy", 0.87654321)] * 30 + [probs("angry", 0.9)] * 30):
        c = engine.update(reading(i / 10, (p, 100, 0.9)))
        if c:
            events.append(c)
    assert [(e.previous, e.mood) for e in events] == [(NOBODY, "happy"), ("happy", "angry")]
    assert [e.t for e in events] == [1.0, 4.2]  # angry leads from 3.2 s, with three of the window's five frames
    assert all(abs(e.wall_time - time.time()) < 60 for e in events)
    # The mood's share of the window at the moment it was announced, kept to 4 places, as the history stores it.
    assert [e.confidence for e in events] == [0.8765, pytest.approx(0.9, abs=1e-4)]
    for e in events:
        assert e.confidence == round(e.confidence, 4) and isinstance(e.confidence, float)
        assert e.probabilities == tuple(round(p, 4) for p in e.probabilities)
        assert e.confidence == e.probabilities[EMOTIONS.index(e.mood)]
    assert np.isclose(sum(events[1].probabilities), 1.0, atol=1e-3)
    assert events[0].probabilities == tuple(round(p, 4) for p in probs("happy", 0.87654321))


def test_nobody_is_announced_with_full_confidence():
    engine = MoodEngine(MoodSettings(window_seconds=1, dwell_seconds=1, nobody_after_seconds=2))
    run(engine, [(2, probs("happy", 0.9))])
    t, change = 2.0, None
    while change is None and t < 10:
        change = engine.update(reading(t))
        t += 0.1
    assert change.mood == NOBODY and change.previous == "happy" and change.confidence == 1.0


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
