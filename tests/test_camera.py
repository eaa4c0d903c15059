"""Every camera source that can run here, the auto choice, and a camera that fails mid-run."""

from __future__ import annotations

import itertools
import sys
import threading
import time
import types

import cv2
import numpy as np
import pytest

from device.camera import CameraError, CameraFeed, open_camera
from device.camera._demo import DemoCamera
from device.camera._picamera import PiCamera
from device.camera._replay import ReplayCamera
from device.camera._v4l2 import V4L2Camera
from device.config import Camera as CameraConfig
from device.events import Frame


def frames(camera, n: int) -> list[Frame]:
    out = []
    for _ in range(n):
        f = camera.read()
        if f is None:
            break
        out.append(f)
    return out


def test_replay_video_gives_grey_frames_with_media_times(media):
    cam = ReplayCamera(media / "phone_smile.mp4", pace="fast")
    cam.open()
    got = frames(cam, 1000)
    cam.close()
    assert len(got) == 115
    assert got[0].grey.ndim == 2 and got[0].grey.dtype == np.uint8 and got[0].grey.shape == (336, 596)
    assert got[1].t - got[0].t == pytest.approx(1 / cam.fps)
    assert got[-1].t == pytest.approx(114 / cam.fps)


def test_replay_at_realtime_pace_takes_real_time(media):
    cam = ReplayCamera(media / "phone_smile.mp4", pace="realtime")
    cam.open()
    start = time.monotonic()
    got = frames(cam, 25)  # one second of video at 24.7 fps
    elapsed = time.monotonic() - start
    cam.close()
    assert elapsed >= got[-1].t - 0.05
    assert elapsed < got[-1].t + 1.0


def test_replay_loops_with_growing_times(media):
    cam = ReplayCamera(media / "phone_smile.mp4", pace="fast", loop=True)
    cam.open()
    got = frames(cam, 250)
    assert len(got) == 250
    assert all(b.t > a.t for a, b in itertools.pairwise(got))


def test_replay_image_folder(tmp_path, media):
    for i, name in enumerate(["justin.jpg", "no-faces.jpg", "justin.jpg"]):
        (tmp_path / f"{i:02d}.jpg").write_bytes((media / name).read_bytes())
    (tmp_path / "notes.txt").write_text("not an image")
    cam = ReplayCamera(tmp_path, pace="fast", folder_fps=2)
    cam.open()
    got = frames(cam, 10)
    assert [f.grey.shape for f in got] == [(384, 381), (148, 199), (384, 381)]
    assert [f.t for f in got] == [0.0, 0.5, 1.0]


def test_replay_of_a_missing_or_bad_file_says_so(tmp_path):
    with pytest.raises(CameraError, match="does not exist"):
        ReplayCamera(tmp_path / "nope.mp4").open()
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 1000)
    with pytest.raises(CameraError, match="not a video OpenCV can read"):
        ReplayCamera(bad).open()
    (tmp_path / "empty").mkdir()
    with pytest.raises(CameraError, match="holds no images"):
        ReplayCamera(tmp_path / "empty").open()


def test_demo_feed_shows_faces_that_change(detector):
    cam = DemoCamera(max_fps=15, realtime=False, cycles=1)
    cam.open()
    scenes = cam.room.scenes
    assert len({s.expression for s in scenes if s.faces}) >= 4
    assert any(not s.faces for s in scenes) and any(len(s.faces) > 1 for s in scenes)
    got = frames(cam, 10_000)
    assert len(got) == round(cam.room.cycle_seconds * 15)
    assert got[0].grey.shape == (480, 640)
    assert cam.read() is None  # one cycle only
    # Frames differ over time (drift, light, noise) like a live camera.
    assert np.abs(got[100].grey.astype(int) - got[101].grey.astype(int)).mean() > 1


def test_demo_assets_are_small():
    from device.camera._demo import ASSETS

    assert sum(p.stat().st_size for p in ASSETS.iterdir()) < 2_000_000


def test_v4l2_missing_device_is_a_clear_error():
    with pytest.raises(CameraError, match=r"there is no /dev/video99: is the webcam plugged in\? \(video devices"):
        V4L2Camera("/dev/video99").open()
    with pytest.raises(CameraError, match=r"there is no /dev/video99:"):
        V4L2Camera("99").open()  # an index names the same device


def test_v4l2_a_file_that_is_no_camera_is_named(tmp_path):
    not_a_camera = tmp_path / "video0"
    not_a_camera.write_bytes(b"")
    with pytest.raises(CameraError, match=f"cannot open {not_a_camera}: is it a camera, and is it free"):
        V4L2Camera(str(not_a_camera)).open()


class FakeLibcamera:
    """Stands in for picamera2 (there is no Pi camera here). It keeps picamera2's API and array shapes:
    a YUV420 'lores' stream comes back as a (height * 3/2, width) uint8 array whose top part is the Y plane."""

    cameras = [{"Model": "imx708", "Location": 2, "Rotation": 180, "Id": "/base/soc/i2c0mux/i2c@1/imx708@1a"}]

    class Picamera2:
        instances: list = []

        def __init__(self, camera_num: int = 0) -> None:
            self.config = None
            self.started = False
            self.frames = 0
            FakeLibcamera.Picamera2.instances.append(self)

        @staticmethod
        def global_camera_info():
            return FakeLibcamera.cameras

        def create_preview_configuration(self, main=None, lores=None, **kw):
            return {"main": {"format": "XBGR8888", **(main or {})}, "lores": lores, **kw}

        def configure(self, config):
            if config["lores"]["format"] != "YUV420":
                raise RuntimeError("lores must be YUV420 on Pi 4 and older")
            self.config = config

        def start(self):
            self.started = True

        def capture_array(self, name="main"):
            if not self.started:
                raise RuntimeError("Camera must be started before capture")
            w, h = self.config[name]["size"]
            self.frames += 1
            yuv = np.full((h * 3 // 2, w), 128, np.uint8)
            yuv[:h] = (np.arange(w)[None, :] + self.frames) % 256  # a moving ramp in the Y plane
            return yuv

        def stop(self):
            self.started = False

        def close(self):
            pass


@pytest.fixture
def fake_picamera2(monkeypatch):
    module = types.ModuleType("picamera2")
    module.Picamera2 = FakeLibcamera.Picamera2
    monkeypatch.setitem(sys.modules, "picamera2", module)
    FakeLibcamera.Picamera2.instances.clear()
    return module


def test_picamera_reads_the_grey_y_plane_of_the_lores_stream(fake_picamera2):
    cam = PiCamera()
    cam.open()
    f1, f2 = frames(cam, 2)
    assert f1.grey.shape == (240, 320) and f1.grey.dtype == np.uint8
    assert f1.grey[0, 5] == 6 and f2.grey[0, 5] == 7  # Y plane only, not the chroma rows
    pc = FakeLibcamera.Picamera2.instances[0]
    assert pc.config["lores"] == {"size": (320, 240), "format": "YUV420"}
    cam.close()
    assert not pc.started


def test_picamera_missing_or_absent(monkeypatch, fake_picamera2):
    monkeypatch.setattr(FakeLibcamera, "cameras", [])
    with pytest.raises(CameraError, match="no Pi camera detected: check the ribbon cable"):
        PiCamera().open()
    monkeypatch.setitem(sys.modules, "picamera2", None)
    with pytest.raises(CameraError, match="apt install python3-picamera2"):
        PiCamera().open()


def test_auto_prefers_the_pi_camera(fake_picamera2):
    cam = open_camera(CameraConfig(source="auto"))
    assert cam.name == "picamera2"
    cam.close()


def test_auto_falls_back_to_the_demo_feed_without_cameras(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)
    monkeypatch.setattr("device.camera._v4l2.find_v4l2_devices", lambda: ["/dev/video97"])
    cam = open_camera(CameraConfig(source="auto"))
    assert cam.name == "demo" and cam.read().grey.shape == (480, 640)


def test_explicit_sources_fail_clearly():
    with pytest.raises(CameraError, match="needs \\[camera\\] replay_path"):
        open_camera(CameraConfig(source="replay"))
    with pytest.raises(CameraError, match="there is no /dev/video98"):
        open_camera(CameraConfig(source="v4l2", device="/dev/video98"))


class FlakyCamera:
    """A real replay that dies after some frames, like a webcam pulled out mid-run."""

    name = "flaky"
    live = True

    def __init__(self, path, die_after: int) -> None:
        self.inner = ReplayCamera(path, pace="fast", loop=True)
        self.die_after = die_after

    def open(self):
        self.inner.open()

    def read(self):
        if self.inner._index >= self.die_after:
            raise CameraError("flaky stopped delivering frames (unplugged?)")
        return self.inner.read()

    def close(self):
        self.inner.close()


def test_feed_survives_a_camera_that_dies_and_comes_back(media):
    opened = []
    unplugged = threading.Event()

    def opener():
        if unplugged.is_set() and len(opened) < 3:
            opened.append("refused")
            raise CameraError("/dev/video0 is gone")
        opened.append("ok")
        cam = FlakyCamera(media / "phone_smile.mp4", die_after=5)
        cam.open()
        return cam

    beats = []
    feed = CameraFeed(opener, heartbeat=lambda: beats.append(time.monotonic()), backoff=(0.05, 0.1))
    stop = threading.Event()
    got = [feed.next_frame(stop) for _ in range(5)]
    assert all(isinstance(f, Frame) for f in got) and feed.state == "live"
    unplugged.set()
    states = []
    t = threading.Thread(target=lambda: states.append(feed.next_frame(stop)))
    t.start()
    t.join(5)
    assert not t.is_alive(), "the feed must recover by itself"
    assert isinstance(states[0], Frame)
    assert opened == ["ok", "refused", "refused", "ok"]
    assert feed.state == "live" and feed.error is None and feed.failures == 0
    assert beats, "the watchdog heartbeat keeps going while the camera is retried"


def test_feed_reports_the_error_while_retrying():
    feed = CameraFeed(lambda: (_ for _ in ()).throw(CameraError("no camera at all")), backoff=(10,))
    stop = threading.Event()
    t = threading.Thread(target=feed.next_frame, args=(stop,))
    t.start()
    deadline = time.monotonic() + 5
    while feed.state != "retrying" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert feed.state == "retrying" and feed.error == "no camera at all" and feed.retry_at > time.time()
    stop.set()
    t.join(2)
    assert not t.is_alive()


def test_privacy_pause_closes_the_camera(media):
    cams = []

    def opener():
        cams.append(ReplayCamera(media / "phone_smile.mp4", pace="fast", loop=True))
        cams[-1].open()
        return cams[-1]

    feed = CameraFeed(opener)
    stop = threading.Event()
    assert feed.next_frame(stop) is not None
    feed.paused.set()
    t = threading.Thread(target=feed.next_frame, args=(stop,))
    t.start()
    deadline = time.monotonic() + 5
    while feed.state != "off":
        assert time.monotonic() < deadline, f"privacy mode did not close the camera in 5 s: {feed.state}"
        time.sleep(0.01)
    assert feed.camera is None and cams[0]._cap is None and t.is_alive()  # closed, and waiting to reopen
    feed.paused.clear()
    t.join(3)
    assert feed.state == "live" and len(cams) == 2


def test_cv2_is_a_4x_build_with_haar():
    assert cv2.__version__.startswith("4.") and hasattr(cv2, "CascadeClassifier")


# -- replay: max_fps, and a FIFO stream whose writer comes and goes ------------------------------------------------


def test_replay_at_realtime_pace_is_analysed_at_most_max_fps(media, detector, classifier):
    from device.mood import MoodEngine, MoodSettings
    from device.pipeline import Pipeline

    config = CameraConfig(source="replay", replay_path=str(media / "phone_smile.mp4"), max_fps=5, replay_loop=True)
    feed = CameraFeed(lambda: open_camera(config))
    pipeline = Pipeline(detector, classifier, MoodEngine(MoodSettings()))
    stop = threading.Event()
    runner = threading.Thread(target=pipeline.run, args=(feed, stop), kwargs={"max_fps": 5}, daemon=True)
    start = time.monotonic()
    runner.start()
    time.sleep(3.0)
    stop.set()
    runner.join(5)
    elapsed = time.monotonic() - start
    feed.close()
    assert not runner.is_alive()
    fps = pipeline.frames / elapsed
    assert 3.5 < fps <= 5.5, f"{pipeline.frames} frames analysed in {elapsed:.2f} s = {fps:.2f} fps at max_fps 5"


def test_replay_max_fps_spaces_frames_in_media_time_at_either_pace(media):
    cam = ReplayCamera(media / "phone_smile.mp4", pace="fast", max_fps=5)
    cam.open()
    got = frames(cam, 1000)
    cam.close()
    assert len(got) == 24  # 115 frames at 24.7 fps: 4.65 s of video, on a schedule of one per 0.2 s
    gaps = [b.t - a.t for a, b in itertools.pairwise(got)]
    assert (got[-1].t - got[0].t) / len(gaps) >= 0.2 - 1e-6  # five a second at most, on average
    assert min(gaps) > 0.2 - 1 / cam.fps and max(gaps) < 0.2 + 1 / cam.fps
    assert got[0].grey.shape == (336, 596)


class Y4MWriter:
    """A program feeding a FIFO with a YUV4MPEG2 stream: `frames` frames of one grey level, then it closes."""

    def __init__(self, path, frames: int, level: int, after: float = 0.0) -> None:
        self.path, self.frames, self.level, self.after = path, frames, level, after
        self.thread = threading.Thread(target=self._write, daemon=True)
        self.thread.start()

    def _write(self) -> None:
        time.sleep(self.after)
        with open(self.path, "wb") as f:
            f.write(b"YUV4MPEG2 W64 H48 F10:1 Ip A1:1 C420jpeg\n")
            for _ in range(self.frames):
                f.write(b"FRAME\n" + bytes([self.level]) * (64 * 48) + bytes([128]) * (64 * 24))


def test_a_fifo_replay_reopens_when_its_writer_goes_and_a_new_one_comes(tmp_path):
    import os

    fifo = tmp_path / "camera.y4m"
    os.mkfifo(fifo)
    cam = ReplayCamera(fifo, pace="fast", loop=True, writer_wait=2.0)
    first = Y4MWriter(fifo, 15, 60, after=0.2)
    cam.open()
    second = Y4MWriter(fifo, 15, 200, after=0.5)  # starts after the first has gone
    got = frames(cam, 30)
    first.thread.join(2)
    second.thread.join(2)
    assert len(got) == 30
    assert all(b.t > a.t for a, b in itertools.pairwise(got)), "times keep growing across writers"
    levels = [int(f.grey[0, 0]) for f in got]
    assert levels[0] < 100 and levels[-1] > 150 and levels == sorted(levels)
    start = time.monotonic()
    with pytest.raises(CameraError, match="writer closed"):  # no third writer: the feed retries, never hangs
        cam.read()
    assert time.monotonic() - start < 4
    cam.close()


def test_the_feed_picks_up_a_fifo_whose_writer_was_away_for_long(tmp_path):
    import os

    fifo = tmp_path / "camera.y4m"
    os.mkfifo(fifo)

    def opener():
        cam = ReplayCamera(fifo, pace="fast", loop=True, writer_wait=0.3)
        cam.open()
        return cam

    feed = CameraFeed(opener, backoff=(0.1, 0.2))
    stop = threading.Event()
    Y4MWriter(fifo, 3, 60)
    assert [feed.next_frame(stop) is not None for _ in range(3)] == [True] * 3
    Y4MWriter(fifo, 3, 200, after=1.5)  # longer than the camera waits: the feed reports, retries, recovers
    frame = feed.next_frame(stop)
    assert frame is not None and int(frame.grey[0, 0]) > 150 and feed.state == "live"
    assert feed.failures == 0
    feed.close()


def test_a_fifo_without_a_writer_is_a_clear_error_not_a_hang(tmp_path):
    import os

    fifo = tmp_path / "camera.y4m"
    os.mkfifo(fifo)
    start = time.monotonic()
    with pytest.raises(CameraError, match="no writer: start the program that feeds it"):
        ReplayCamera(fifo, writer_wait=0.3).open()
    assert time.monotonic() - start < 2
    Y4MWriter(fifo, 2, 60)
    cam = ReplayCamera(fifo, pace="fast", loop=False, writer_wait=2.0)
    cam.open()
    assert len(frames(cam, 10)) == 2 and cam.read() is None  # replay_loop = false: the stream's end ends it
    cam.close()
