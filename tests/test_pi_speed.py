"""The real daemon at a Pi 4's classification speed (80 ms per face, injected) with five faces in view.

The camera is a 15 fps stream written into a FIFO in real time (benchmarks/pi_speed.py, which prints the same
numbers for longer runs). Five faces at 80 ms each would take 400 ms a frame; the daemon must drop frames rather
than queue them, keep reading the camera, keep the page and /healthz quick, keep the watchdog fed, not grow, and
still start the music for a new mood within the dwell time plus one second.
"""

from __future__ import annotations

import time

import pytest

from benchmarks.pi_speed import FPS, WATCHDOG_SECONDS, crowd_frames, run
from device.emotion import EmotionClassifier
from device.events import EMOTIONS
from device.faces import make_detector
from device.pipeline import Pipeline


def test_the_crowd_shows_five_faces_with_the_expression_asked_for(classifier, detector):
    import cv2

    # Every demo expression, since models.demo_faces re-picks the faces with each new model: a face that reads
    # well in the room but is missed at the crowd's 150 px once made this crowd one person instead of five.
    for expression in ("happy", "surprise", "sad", "neutral", "angry"):
        grey = crowd_frames(expression, variants=1)[0]
        faces = [f.scaled(2) for f in detector.detect(cv2.resize(grey, (320, 240), interpolation=cv2.INTER_AREA))]
        assert len(faces) == 5
        assert {EMOTIONS[int(classifier.classify(grey, f).argmax())] for f in faces} == {expression}


def test_a_slow_classifier_spreads_the_faces_over_frames_within_its_budget(monkeypatch):
    from device.events import Frame
    from tests.test_pipeline import Listening

    monkeypatch.setenv("MOODBOX_TEST_CLASSIFY_DELAY_MS", "40")
    engine = Listening()
    pipeline = Pipeline(make_detector("blazeface"), EmotionClassifier(), engine, classify_budget_ms=100)
    grey = crowd_frames("happy", variants=1)[0]
    took = []
    for i in range(6):
        t0 = time.perf_counter()
        reading, _ = pipeline.process(Frame(grey, i / FPS, i))
        took.append(time.perf_counter() - t0)
    # The first frame classifies what fits in 100 ms (two or three faces at 40 ms), and each later frame the
    # faces not classified yet, so all five are known by the third frame and every frame stays near its budget.
    assert len(reading.faces) == 5
    assert {f.emotion for f in reading.faces} == {"happy"}
    assert max(took) < 0.2, took
    # The mood engine hears only the faces read in each frame: at most three, never the five the page shows.
    heard = [len(r.faces) for r in engine.heard]
    assert all(1 <= n <= 3 for n in heard), heard
    assert {f.emotion for r in engine.heard for f in r.faces} == {"happy"}


def test_the_mailbox_keeps_the_newest_frame_and_drops_the_rest():
    import threading

    import numpy as np

    from device.events import Frame
    from device.pipeline import LatestFrame

    stop, grey = threading.Event(), np.zeros((4, 4), np.uint8)
    box = LatestFrame()
    for i in range(5):
        box.put(Frame(grey, i / FPS, i), stop)  # a camera on its own clock: never waits
    frame, _captured_at = box.take(stop)
    assert (frame.index, box.captured, box.dropped) == (4, 5, 4)
    box.end()
    assert box.take(stop) is None


def test_a_replay_without_a_clock_waits_so_every_frame_is_analysed():
    import threading

    import numpy as np

    from device.events import Frame
    from device.pipeline import LatestFrame

    stop, grey = threading.Event(), np.zeros((4, 4), np.uint8)
    box = LatestFrame()

    def fast_replay() -> None:
        for i in range(5):
            box.put(Frame(grey, i / FPS, i), stop, wait=True)
        box.end()

    threading.Thread(target=fast_replay, daemon=True).start()
    taken = []
    while (slot := box.take(stop)) is not None:
        time.sleep(0.02)  # a slow analysis
        taken.append(slot[0].index)
    assert taken == [0, 1, 2, 3, 4] and box.dropped == 0


def test_a_bad_delay_knob_is_refused_by_name(monkeypatch):
    from device.litert import ModelError

    monkeypatch.setenv("MOODBOX_TEST_CLASSIFY_DELAY_MS", "fast")
    with pytest.raises(ModelError, match=r"MOODBOX_TEST_CLASSIFY_DELAY_MS='fast'.*unset it"):
        EmotionClassifier()


@pytest.mark.slow
def test_the_daemon_at_pi_speed_with_five_faces(tmp_path):
    result = run(tmp_path, [("happy", 4.5), ("sad", 4.5), ("happy", 4.5), ("surprise", 4.5)], delay_ms=80)
    report = str(result)
    # Frames are dropped, not queued: many frames are never analysed, and the analysed ones are fresh.
    assert result["frames_dropped"] > result["frames_written"] // 6, report
    assert result["frames_analysed"] + result["frames_dropped"] >= result["frames_written"] - 3, report
    assert result["latency_ms"]["age"] < 150, report
    # The capture thread never blocks: the camera (the FIFO writer) never fell behind its 15 fps clock.
    assert result["writer_worst_lateness_ms"] < 300, report
    # The page and /healthz stay responsive.
    assert result["page_ms"]["/"]["p95"] < 200 and result["page_ms"]["/healthz"]["p95"] < 200, report
    assert result["page_ms"]["/"]["n"] > 50, report
    # The watchdog is fed all along: no gap near the period.
    assert result["watchdog"]["pings"] >= 10 and result["watchdog"]["longest_gap_s"] < WATCHDOG_SECONDS * 0.75, report
    # Memory stays flat.
    assert result["rss_mb"]["last_third_max"] - result["rss_mb"]["first_third_max"] < 15, report
    # Every change of expression reaches the player within the dwell plus 1 s. With the default 1 s window and
    # 1 s dwell, full speed takes about 1.55 s (the window needs 0.55 s to turn, then the dwell); a Pi adds about
    # one frame's analysis and the faces' turns, 0.1-0.2 s, to that.
    assert result["expression_changes"] == ["sad", "happy", "surprise"], report
    times = result["expression_to_play_s"]
    assert None not in times, report
    assert max(times) <= result["dwell_seconds"] + 1.0, report
    assert result["daemon_exit"] == 0, report


def test_the_pi_estimate_counts_the_models_own_operations():
    from pathlib import Path

    from benchmarks.pi_estimate import count_macs
    from device.emotion import DEFAULT_MODEL
    from device.faces._blazeface import ASSETS

    # VGG16's 13 convolutions on a 48x48 grey face and its classifier head: 0.70 GMAC, counted from the file.
    assert 0.69e9 < count_macs(Path(DEFAULT_MODEL)) < 0.72e9
    # BlazeFace full-range at 192x192 is about a sixth of that, the short-range model a quarter of full-range.
    full = count_macs(ASSETS / "face_detection_full_range_sparse.tflite")
    short = count_macs(ASSETS / "face_detection_short_range.tflite")
    assert 0.10e9 < full < 0.13e9 and 3 < full / short < 5
