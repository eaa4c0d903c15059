"""The frame loop (device/pipeline.py) with the real detector and classifier: what the mood engine hears, which
frames a source with or without its own clock gets analysed, a reopened camera, ignored and dark faces, and the
numbers the System page shows. A fake stands in only for a live camera."""

from __future__ import annotations

import logging
import threading
import time

import cv2
import numpy as np
import pytest

from device.bus import Bus
from device.camera import CameraFeed
from device.camera._demo import DemoCamera
from device.camera._replay import ReplayCamera
from device.emotion import EmotionClassifier
from device.events import EMOTIONS, Frame, MoodChange, Reading
from device.mood import MoodEngine, MoodSettings
from device.pipeline import LatestFrame, Pipeline, has_own_clock
from tests.test_faces import darkened


class Listening(MoodEngine):
    """The mood engine, keeping every reading it is fed and every camera opening it hears of."""

    def __init__(self, settings: MoodSettings | None = None) -> None:
        super().__init__(settings)
        self.heard: list[Reading] = []
        self.openings = 0

    def update(self, reading: Reading) -> MoodChange | None:
        self.heard.append(reading)
        return super().update(reading)

    def camera_opened(self) -> None:
        self.openings += 1
        super().camera_opened()


class Counting:
    """The classifier, counting its calls."""

    def __init__(self, classifier: EmotionClassifier) -> None:
        self.classifier, self.calls, self.ms = classifier, 0, []

    def classify(self, grey: np.ndarray, face) -> np.ndarray:
        self.calls += 1
        started = time.perf_counter()
        try:
            return self.classifier.classify(grey, face)
        finally:
            self.ms.append((time.perf_counter() - started) * 1000)


class LiveCamera:
    """A live camera at `fps` on its own clock (the stand-in for a Pi camera): frames come whether taken or not."""

    live = True
    name = "test-live"

    def __init__(self, grey: np.ndarray, fps: float, frames: int) -> None:
        self.grey, self.gap, self.frames = grey, 1 / fps, frames
        self.index = 0
        self.next_at = 0.0

    def open(self) -> None:
        self.next_at = time.monotonic()

    def read(self) -> Frame | None:
        if self.index >= self.frames:
            return None
        self.next_at += self.gap
        time.sleep(max(0.0, self.next_at - time.monotonic()))  # the sensor's frame interval
        self.index += 1
        return Frame(self.grey, self.index * self.gap, self.index)

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def justin_small(justin_grey) -> np.ndarray:
    """justin.jpg at 320 px wide: one happy face, a frame the detector reads without resizing."""
    h, w = justin_grey.shape
    return cv2.resize(justin_grey, (320, round(h * 320 / w)), interpolation=cv2.INTER_AREA)


def photos(tmp_path, grey: np.ndarray, n: int):
    """A folder of `n` photos (a replay source)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(n):
        cv2.imwrite(str(folder / f"{i:03}.png"), grey)
    return folder


def run_to_the_end(pipeline: Pipeline, feed: CameraFeed, **kw) -> None:
    stop = threading.Event()
    runner = threading.Thread(target=pipeline.run, args=(feed, stop), kwargs=kw, daemon=True)
    runner.start()
    runner.join(60)
    stop.set()
    assert not runner.is_alive(), "the frame loop did not end with its source"


def test_which_sources_keep_their_own_clock(media):
    assert has_own_clock(None)  # nothing open yet: nothing to wait for
    assert has_own_clock(LiveCamera(np.zeros((4, 4), np.uint8), 30, 1))
    assert has_own_clock(ReplayCamera(media / "phone_smile.mp4", pace="realtime"))
    assert not has_own_clock(ReplayCamera(media / "phone_smile.mp4", pace="fast"))
    assert has_own_clock(DemoCamera())
    assert not has_own_clock(DemoCamera(realtime=False))


def test_a_fast_replay_analyses_every_frame_however_slow_the_analysis(tmp_path, detector, classifier, justin_small):
    folder = photos(tmp_path, justin_small, 12)
    feed = CameraFeed(lambda: _opened(ReplayCamera(folder, pace="fast")))
    pipeline = Pipeline(detector, Counting(classifier), Listening())
    run_to_the_end(pipeline, feed)
    assert pipeline.frames == 12 and pipeline.dropped == 0 and pipeline.mailbox.captured == 12
    assert [r.t for r in pipeline.engine.heard] == pytest.approx([i / 5 for i in range(12)])  # 5 photos a second


def test_a_live_camera_is_never_kept_waiting(detector, classifier, justin_small):
    """At 200 frames a second the analysis cannot keep up: frames in between are dropped, not queued, and the ones
    analysed are the newest."""
    camera = LiveCamera(justin_small, fps=200, frames=60)
    feed = CameraFeed(lambda: _opened(camera))
    beats = []
    pipeline = Pipeline(detector, classifier, Listening())
    started = time.monotonic()
    run_to_the_end(pipeline, feed, heartbeat=lambda: beats.append(1))
    assert time.monotonic() - started < 60 / 200 + 2  # the camera's own pace, never the analysis's
    assert pipeline.dropped > 0 and pipeline.frames + pipeline.dropped == 60 == pipeline.mailbox.captured
    assert len(beats) == pipeline.frames  # the watchdog hears of every frame analysed
    assert pipeline.engine.heard[-1].t == pytest.approx(60 / 200, abs=0.02)  # the last frame is never dropped
    latency = pipeline.latency_ms()  # the System page: how long a frame waited, and the wait for it, in 0.01 ms
    assert latency["age"] > 0 and latency["capture"] >= 0 and latency["detect"] > 0
    assert all(isinstance(v, float) and v == round(v, 2) for v in latency.values()), latency


def test_max_fps_skips_a_live_camera_frames_and_keeps_the_watchdog_fed(detector, classifier, justin_small):
    camera = LiveCamera(justin_small, fps=50, frames=50)  # one second
    beats = []
    pipeline = Pipeline(detector, classifier, Listening())
    run_to_the_end(pipeline, CameraFeed(lambda: _opened(camera)), heartbeat=lambda: beats.append(1), max_fps=5)
    assert 4 <= pipeline.frames <= 7, pipeline.frames
    assert len(beats) > pipeline.frames  # skipped frames feed the watchdog too
    slow = Pipeline(detector, classifier, Listening())  # under one frame a second
    run_to_the_end(slow, CameraFeed(lambda: _opened(LiveCamera(justin_small, fps=50, frames=25))), max_fps=0.5)
    assert slow.frames == 1


def _opened(camera):
    camera.open()
    return camera


def test_the_mood_hears_only_the_faces_classified_in_this_frame(monkeypatch):
    """With a budget, a slow classifier (a Pi 4: 40 ms a face here) reads two of five faces a frame. The page shows
    every face with its last reading; the mood engine hears each reading once, in the frame it was made."""
    from benchmarks.pi_speed import FPS, crowd_frames
    from device.faces import make_detector

    monkeypatch.setenv("MOODBOX_TEST_CLASSIFY_DELAY_MS", "40")
    counting = Counting(EmotionClassifier())
    pipeline = Pipeline(make_detector("blazeface"), counting, Listening(), classify_budget_ms=100)
    grey = crowd_frames("happy", variants=1)[0]
    shown, heard = [], []
    for i in range(5):
        before = counting.calls
        reading, _ = pipeline.process(Frame(grey, i / FPS, i))
        shown.append(len(reading.faces))
        heard.append((len(pipeline.engine.heard[-1].faces), counting.calls - before))
    assert shown[-1] == 5 and shown[0] < 5  # the first frame had no time for all five
    assert all(n == classified for n, classified in heard), heard
    assert sum(n for n, _ in heard) == counting.calls < 25
    assert {f.emotion for f in pipeline.engine.heard[-1].faces} == {"happy"}


def test_a_budget_with_room_for_every_face_reads_every_face(monkeypatch):
    """A budget is a limit, not a ration: when five faces fit, all five are read in every frame, and the time a face
    takes is learned from what classifying one costs (which decides how many fit on a slower box)."""
    from benchmarks.pi_speed import FPS, crowd_frames
    from device.faces import make_detector

    monkeypatch.setenv("MOODBOX_TEST_CLASSIFY_DELAY_MS", "20")
    counting = Counting(EmotionClassifier())
    pipeline = Pipeline(make_detector("blazeface"), counting, Listening(), classify_budget_ms=10_000)
    grey = crowd_frames("happy", variants=1)[0]
    for i in range(3):
        before = counting.calls
        reading, _ = pipeline.process(Frame(grey, i / FPS, i))
        assert len(reading.faces) == 5 and counting.calls - before == 5
        assert len(pipeline.engine.heard[-1].faces) == 5
    assert min(counting.ms) <= pipeline._face_ms <= max(counting.ms) + 5  # a running mean of what a face cost


def test_without_a_budget_every_face_is_read_in_every_frame(detector, classifier, justin_small):
    counting = Counting(classifier)
    pipeline = Pipeline(detector, counting, Listening())
    for i in range(3):
        reading, _ = pipeline.process(Frame(justin_small, i / 10, i))
        assert pipeline.engine.heard[-1] is reading and len(reading.faces) == 1
    assert counting.calls == 3


def test_the_household_s_adjustment_is_what_the_mood_hears_and_the_learner_is_told(detector, classifier, justin_small):
    """What the household taught changes each face's reading before the mood engine hears it; the model's own
    reading stays beside it (the learner fits on that), and the learner hears exactly what the engine heard."""
    from device.learning import Adjustment

    pipeline = Pipeline(detector, classifier, Listening())
    told: list[Reading] = []
    pipeline.heard = told.append
    factory, _ = pipeline.process(Frame(justin_small, 0.0, 0))
    (face,) = factory.faces
    assert face.emotion == "happy" and face.model == ()  # nothing learned: the model's reading, kept once
    bias = np.zeros(7)
    bias[EMOTIONS.index("happy")], bias[EMOTIONS.index("sad")] = -2.5, 2.5  # "reads happy less, sad more readily"
    pipeline.adjustment = Adjustment(bias=bias)
    adjusted, _ = pipeline.process(Frame(justin_small, 0.1, 1))
    (again,) = adjusted.faces
    assert again.face == face.face and again.model == pytest.approx(face.probabilities, abs=1e-6)
    assert again.probabilities == pytest.approx(pipeline.adjustment.apply(again.model), abs=1e-9)
    assert again.probabilities[EMOTIONS.index("happy")] < face.probabilities[EMOTIONS.index("happy")]
    assert again.probabilities[EMOTIONS.index("sad")] > face.probabilities[EMOTIONS.index("sad")]
    assert pipeline.engine.heard[-1].faces == (again,)
    assert [r.faces for r in told] == [(face,), (again,)] and told[-1] is pipeline.engine.heard[-1]
    assert 0 < time.time() - told[-1].wall_time < 60  # when the frame arrived, for the page's age of a reading


def test_a_reopened_camera_starts_the_mood_afresh(detector, classifier, justin_small):
    """The dwell counts from the reopening, and the faces followed before are forgotten (so all are read anew)."""
    engine = Listening(MoodSettings(window_seconds=0.5, dwell_seconds=1))
    pipeline = Pipeline(detector, classifier, engine, classify_budget_ms=1000)
    changes = []
    for i in range(8):  # 0.7 s of the first opening: not yet the dwell
        changes.append(pipeline.process(Frame(justin_small, i / 10, i, opening=1))[1])
    for i in range(8, 30):  # the same camera, reopened (privacy mode off): one clock, going on
        changes.append(pipeline.process(Frame(justin_small, i / 10, i, opening=2))[1])
    announced = [(round(c.t, 2), c.mood) for c in changes if c]
    assert announced == [(1.8, "happy")]  # 1 s after the reopening, not at 1.0 s
    assert engine.openings == 2


def test_ignored_areas_and_dark_faces_never_reach_the_mood(detector, classifier, justin_small):
    h, w = justin_small.shape
    frame = np.full((h, 2 * w), 128, np.uint8)
    frame[:, :w], frame[:, w:] = justin_small, justin_small  # two people; the right one is a poster
    counting = Counting(classifier)
    pipeline = Pipeline(detector, counting, Listening())
    reading, _ = pipeline.process(Frame(frame, 0.0, 0))
    assert len(reading.faces) == 2 and counting.calls == 2
    pipeline.ignored_areas = ((0.5, 0.0, 0.5, 1.0),)  # the right half, edges included
    reading, _ = pipeline.process(Frame(frame, 0.1, 1))
    assert [f.face.x < w for f in reading.faces] == [True] and len(reading.ignored) == 1 and counting.calls == 3
    assert pipeline.engine.heard[-1].faces == reading.faces
    # One person in the dark: found, not read, and reported as someone here.
    pipeline.ignored_areas = ()
    dark = darkened(justin_small, 0.05)
    reading, _ = pipeline.process(Frame(dark, 0.2, 2))
    assert reading.faces == () and len(reading.dark) == 1 and reading.ignored == () and counting.calls == 3
    assert pipeline.engine.heard[-1].dark == reading.dark and pipeline.engine.someone_here
    pipeline.too_dark_below = 0  # off: every face is read
    reading, _ = pipeline.process(Frame(dark, 0.3, 3))
    assert len(reading.faces) == 1 and reading.dark == () and counting.calls == 4


def test_a_face_just_over_the_darkness_limit_is_read(detector, classifier, justin_small):
    pipeline = Pipeline(detector, classifier, Listening())
    (face,) = pipeline.process(Frame(justin_small, 0.0, 0))[0].faces
    x, y, fw, fh = face.face.box
    mean = float(justin_small[max(0, y) : y + fh, max(0, x) : x + fw].mean())
    pipeline.too_dark_below = mean  # a box exactly at the limit is light enough
    assert len(pipeline.process(Frame(justin_small, 0.1, 1))[0].faces) == 1
    pipeline.too_dark_below = mean + 0.5
    assert pipeline.process(Frame(justin_small, 0.2, 2))[0].faces == ()


def test_a_big_frame_is_shrunk_for_the_detector_and_its_boxes_scaled_back(detector, classifier, justin_grey):
    pipeline = Pipeline(detector, classifier, Listening())
    reading, _ = pipeline.process(Frame(justin_grey, 0.0, 0))
    (face,) = reading.faces
    assert reading.frame_size == (justin_grey.shape[1], justin_grey.shape[0])
    small = cv2.resize(justin_grey, (320, round(justin_grey.shape[0] * 320 / justin_grey.shape[1])))
    (seen,) = detector.detect(small)
    k = justin_grey.shape[1] / 320
    assert face.face.w == pytest.approx(seen.w * k, rel=0.05) and face.face.x == pytest.approx(seen.x * k, abs=3 * k)
    assert face.emotion == "happy" and max(face.probabilities) > 0.6


def test_the_readings_and_changes_go_out_on_the_bus_and_the_system_page_numbers(detector, classifier, justin_small):
    bus = Bus()
    got: list = []
    bus.subscribe("test", got.append, Reading, MoodChange)
    pipeline = Pipeline(detector, classifier, MoodEngine(MoodSettings(window_seconds=0.5, dwell_seconds=0.5)), bus)
    empty = np.full_like(justin_small, 128)
    try:
        pipeline.keep_last_frame = True
        for i in range(10):
            pipeline.process(Frame(justin_small, i / 10, i), capture_ms=2.0, age_ms=3.0)
        assert pipeline.last_grey is justin_small and pipeline.last_reading.t == pytest.approx(0.9)
        pipeline.keep_last_frame = False
        for i in range(10, 40):
            pipeline.process(Frame(empty, i / 10, i), capture_ms=2.0, age_ms=3.0)
        assert pipeline.last_grey is None  # not kept unless the owner's live preview is on
        deadline = time.monotonic() + 5
        while len(got) < 41 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        bus.close()
    readings = [e for e in got if isinstance(e, Reading)]
    assert [r.t for r in readings] == pytest.approx([i / 10 for i in range(40)])
    assert [e.mood for e in got if isinstance(e, MoodChange)] == ["happy"]
    assert pipeline.frames == 40 and pipeline.fps > 10  # processed back to back
    latency = pipeline.latency_ms()
    assert latency["capture"] == 2.0 and latency["age"] == 3.0
    assert set(latency) == {"capture", "age", "detect", "classify", "mood"}
    # The median of classify counts only frames with a face: thirty empty frames do not make it 0 ms.
    assert latency["classify"] > 0.1 and latency["detect"] > 0.1


def test_fps_is_zero_when_frames_stopped_coming(detector, classifier, justin_small, monkeypatch):
    pipeline = Pipeline(detector, classifier, MoodEngine())
    assert pipeline.fps == 0.0 and pipeline.latency_ms() == {} and pipeline.dropped == 0
    pipeline.process(Frame(justin_small, 0.0, 0))
    assert pipeline.fps == 0.0  # one frame is no rate
    pipeline.process(Frame(justin_small, 0.1, 1))
    assert pipeline.fps > 0
    later = time.monotonic() + 2.5
    monkeypatch.setattr(time, "monotonic", lambda: later)
    assert pipeline.fps == 0.0


def test_a_frame_that_fails_is_logged_and_the_loop_goes_on(tmp_path, detector, classifier, justin_small, caplog):
    folder = photos(tmp_path, justin_small, 5)
    pipeline = Pipeline(detector, classifier, Listening())
    real = pipeline.process

    def process(frame, *a):
        if frame.index == 2:
            raise RuntimeError("a bad frame")
        return real(frame, *a)

    pipeline.process = process
    with caplog.at_level(logging.ERROR, logger="device.pipeline"):
        run_to_the_end(pipeline, CameraFeed(lambda: _opened(ReplayCamera(folder, pace="fast"))))
    assert pipeline.frames == 4 and "frame 2 could not be processed" in caplog.text


def test_the_mailbox_ends_on_stop_and_a_waiting_source_gives_up_on_stop():
    stop, box = threading.Event(), LatestFrame()
    frame = Frame(np.zeros((4, 4), np.uint8), 0.0, 0)
    box.put(frame, stop, wait=True)
    stop.set()
    started = time.monotonic()
    box.put(frame, stop, wait=True)  # the slot is full and nobody takes: stopping must not hang the camera
    assert time.monotonic() - started < 1 and box.dropped == 1
    assert box.take(threading.Event())[0] is frame
    assert box.take(stop) is None


def test_an_empty_room_shows_every_stage_but_classify_and_keeps_no_frame(detector, classifier, justin_small):
    """The System page's latencies after frames with nobody in them: no classify time (0 ms would hide a face's
    cost), the rest as measured. No frame is kept unless the owner's live preview asks for it."""
    pipeline = Pipeline(detector, classifier, MoodEngine())
    empty = np.full_like(justin_small, 128)
    for i in range(3):
        pipeline.process(Frame(empty, i / 10, i), capture_ms=1.0, age_ms=2.0)
        assert pipeline.last_grey is None
    assert set(pipeline.latency_ms()) == {"capture", "age", "detect", "mood"}


def test_the_stage_times_are_milliseconds(monkeypatch, detector, justin_small):
    """A classifier slowed to 40 ms a face shows as about 40 ms of classify, not 0.04 or 40000."""
    monkeypatch.setenv("MOODBOX_TEST_CLASSIFY_DELAY_MS", "40")
    pipeline = Pipeline(detector, EmotionClassifier(), MoodEngine())
    for i in range(3):
        reading, _ = pipeline.process(Frame(justin_small, i / 10, i))
        assert 40 <= reading.timings_ms["classify"] < 1000 and 0 < reading.timings_ms["detect"] < 1000
        assert 0 < reading.timings_ms["mood"] < 100
    assert 40 <= pipeline.latency_ms()["classify"] < 1000


@pytest.mark.parametrize(("left", "width", "ignored"), [(0.0, 0.4, False), (0.4, 0.2, True), (0.5, 0.5, True)])
def test_a_face_is_ignored_by_where_its_centre_is(detector, classifier, justin_small, left, width, ignored):
    """An area over part of a face ignores it only if the face's centre is in it (edges included)."""
    pipeline = Pipeline(detector, classifier, Listening())
    (face,) = pipeline.process(Frame(justin_small, 0.0, 0))[0].faces
    h, w = justin_small.shape
    cx, cy = (face.face.x + face.face.w / 2) / w, (face.face.y + face.face.h / 2) / h
    fx, fw = face.face.x / w, face.face.w / w
    area_x = cx if left == 0.5 else fx + left * fw  # (0.5, 0.5): from the centre itself
    pipeline.ignored_areas = ((area_x, cy if left == 0.5 else 0.0, width * fw, 1.0),)
    reading, _ = pipeline.process(Frame(justin_small, 0.1, 1))
    assert (len(reading.ignored), len(reading.faces)) == ((1, 0) if ignored else (0, 1))
