"""A camera reopened (privacy mode off, another source, a webcam plugged back in): the one clock goes on, and the
mood does not freeze. A fake clock stands in for the hours; the cameras are the real sources, and picamera2 and
a USB webcam's driver are faked where there is no such hardware."""

from __future__ import annotations

import itertools
import sys
import threading
import time
import types
from collections.abc import Callable

import cv2
import pytest

from device.camera import Camera, CameraFeed, open_camera
from device.camera._clock import FrameClock
from device.camera._demo import DemoCamera
from device.camera._replay import ReplayCamera
from device.config import Camera as CameraConfig
from device.events import Frame
from device.mood import MoodEngine, MoodSettings
from device.pipeline import Pipeline
from tests.conftest import isolated_env
from tests.test_camera import FakeLibcamera

HOUR = 3600.0
FRAME = 1 / 15


class FakeClock:
    """time.monotonic that moves only when the test says; also stands in for a camera module's `time`."""

    def __init__(self, t: float = 5000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.t


class Webcam:
    """cv2 as device.camera._v4l2 sees it, with a USB webcam at /dev/video0 that shows a real video and can be
    pulled out: OpenCV's V4L2 backend then fails reads with (False, None), and refuses to open the device."""

    def __init__(self, video) -> None:
        self.video = str(video)
        self.plugged_in = True

    def __getattr__(self, name: str):
        return getattr(cv2, name)

    def VideoCapture(self, target, api):  # OpenCV's names
        assert target == "/dev/video0" and api == cv2.CAP_V4L2
        return _WebcamCapture(self, cv2.VideoCapture(self.video if self.plugged_in else "/nonexistent.mp4"))


class _WebcamCapture:
    def __init__(self, webcam: Webcam, cap: cv2.VideoCapture) -> None:
        self.webcam, self.cap = webcam, cap

    def isOpened(self) -> bool:
        return self.cap.isOpened()

    def set(self, prop: int, value: float) -> bool:
        return True

    def read(self):
        if not self.webcam.plugged_in:
            return False, None
        ok, image = self.cap.read()
        if not ok:  # a webcam never ends: the video starts again
            self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, image = self.cap.read()
        return ok, image

    def release(self) -> None:
        self.cap.release()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def pi_camera(monkeypatch, clock):
    """The Pi camera through a fake picamera2, its own times on the fake clock."""
    module = types.ModuleType("picamera2")
    module.Picamera2 = FakeLibcamera.Picamera2
    monkeypatch.setitem(sys.modules, "picamera2", module)
    monkeypatch.setattr("device.camera._picamera.time", clock)
    return lambda: open_camera(CameraConfig(source="picamera2"))


@pytest.fixture
def webcam(monkeypatch, media, clock):
    fake = Webcam(media / "phone_smile.mp4")
    monkeypatch.setattr("device.camera._v4l2.cv2", fake)
    monkeypatch.setattr("device.camera._v4l2.time", clock)
    return fake


def openers(source: str, request) -> Callable[[], Camera]:
    if source == "picamera2":
        return request.getfixturevalue("pi_camera")
    if source == "v4l2":
        request.getfixturevalue("webcam")
        return lambda: open_camera(CameraConfig(source="v4l2", device="/dev/video0"))
    media = request.getfixturevalue("media")
    if source == "replay":
        return lambda: open_camera(
            CameraConfig(source="replay", replay_path=str(media / "phone_smile.mp4"), replay_pace="fast")
        )
    return lambda: _opened(DemoCamera(realtime=False))


def _opened(camera):
    camera.open()
    return camera


def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def read(feed: CameraFeed, clock: FakeClock, n: int, every: float = FRAME) -> list[Frame]:
    stop = threading.Event()
    out = []
    for _ in range(n):
        clock.t += every
        out.append(feed.next_frame(stop))
    return out


def first_frame_after_privacy_mode(feed: CameraFeed, clock: FakeClock, seconds: float) -> Frame:
    """Privacy mode on for `seconds` by the fake clock, then off: the reopened camera's first frame."""
    stop, got = threading.Event(), []
    feed.paused.set()
    reader = threading.Thread(target=lambda: got.append(feed.next_frame(stop)))
    reader.start()
    wait_for(lambda: feed.state == "off")
    assert feed.camera is None
    clock.t += seconds
    feed.paused.clear()
    reader.join(5)
    assert got and got[0] is not None
    return got[0]


# -- the clock ---------------------------------------------------------------------------------------------------


def test_the_clock_follows_the_camera_and_carries_on_across_reopenings():
    now = FakeClock()
    clock = FrameClock(now)
    assert [clock.stamp(t) for t in (0.0, 0.5, 1.0)] == [0.0, 0.5, 1.0]  # a first camera keeps its own times
    now.t += 0.1  # a replay running faster than real time: its video's pace, not the wall's
    assert clock.stamp(3.0) == 3.0
    clock.camera_opened()
    now.t += 600  # ten minutes closed; the camera counts from 0 again
    assert clock.stamp(0.0) == pytest.approx(603.0)
    assert clock.stamp(0.2) == pytest.approx(603.2)
    now.t += 5
    assert clock.stamp(0.1) == pytest.approx(608.2)  # a camera whose own time went back: real time goes on
    now.t -= 86400  # and a real clock that went back a day does not take the frames with it
    assert clock.stamp(0.2) == pytest.approx(608.3)


# -- every source, every way of reopening ------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["picamera2", "v4l2", "replay", "demo"])
def test_privacy_mode_after_an_hour_and_a_source_change_keep_one_clock(source, request, clock):
    feed = CameraFeed(openers(source, request), backoff=(0.01,), clock=clock)
    before = read(feed, clock, 5)
    clock.t += HOUR  # an hour of running: a live camera's own times are an hour along
    before += read(feed, clock, 5)
    last = before[-1]
    after = first_frame_after_privacy_mode(feed, clock, 600)
    assert after.opening == last.opening + 1
    assert after.t - last.t == pytest.approx(600, abs=0.01)  # what the camera's own times said: about 0
    more = read(feed, clock, 5)
    feed.switch(openers("demo" if source != "demo" else "replay", request))  # the page chose another camera
    clock.t += 2
    switched = read(feed, clock, 5)
    assert feed.source in ("demo", "replay:phone_smile.mp4") and switched[0].opening == after.opening + 1
    frames = [*before, after, *more, *switched]
    assert all(b.t > a.t for a, b in itertools.pairwise(frames)), [round(f.t, 2) for f in frames]
    assert switched[0].t - more[-1].t == pytest.approx(2 + FRAME, abs=0.01)


@pytest.mark.parametrize("source", ["picamera2", "v4l2"])
def test_a_camera_unplugged_for_a_while_comes_back_on_the_same_clock(source, request, clock, monkeypatch):
    feed = CameraFeed(openers(source, request), backoff=(0.01,), clock=clock)
    before = read(feed, clock, 5)
    clock.t += HOUR
    before += read(feed, clock, 3)
    if source == "picamera2":  # the ribbon cable is pulled: capture fails, and there is no camera to reopen
        picam = FakeLibcamera.Picamera2.instances[-1]
        monkeypatch.setattr(picam, "capture_array", lambda name="main": (_ for _ in ()).throw(RuntimeError("EIO")))
        monkeypatch.setattr(FakeLibcamera, "cameras", [])
    else:
        request.getfixturevalue("webcam").plugged_in = False
    attempts = []

    def away() -> None:  # each failed attempt: thirty seconds by the fake clock; plugged back in after three
        attempts.append(feed.error)
        clock.t += 30
        if len(attempts) == 3:
            monkeypatch.setattr(FakeLibcamera, "cameras", [{"Model": "imx708"}])
            if source == "v4l2":
                request.getfixturevalue("webcam").plugged_in = True

    feed._heartbeat = away
    back = feed.next_frame(threading.Event())
    assert "stopped delivering frames" in attempts[0] and len(attempts) >= 3
    assert back.opening == before[-1].opening + 1 and feed.state == "live"
    assert back.t - before[-1].t == pytest.approx(30 * len(attempts), abs=0.01)


# -- the mood, with the real detector and classifier -------------------------------------------------------------


def timeline(pipeline: Pipeline, frames: list[Frame]) -> list[tuple[float, str]]:
    """The mood changes, each at its time since the first of these frames."""
    out = []
    for frame in frames:
        _, change = pipeline.process(frame)
        if change is not None:
            out.append((round(change.t - frames[0].t, 2), change.mood))
    return out


def test_the_mood_after_privacy_mode_follows_the_room_as_the_first_time(media, detector, classifier, clock):
    """The reported defect: after privacy mode, the mood held what it was for as long as the camera had run."""
    replay = lambda: _opened(ReplayCamera(media / "phone_smile.mp4", pace="fast", max_fps=8))  # noqa: E731
    feed = CameraFeed(replay, clock=clock)
    pipeline = Pipeline(detector, classifier, MoodEngine(MoodSettings()))
    stop = threading.Event()
    first = []
    while (frame := feed.next_frame(stop)) is not None:  # the whole video: a sad face that smiles
        first.append(frame)
    before = timeline(pipeline, first)
    assert [m for _, m in before] == ["sad", "happy"]
    second = [first_frame_after_privacy_mode(feed, clock, 2)]
    while (frame := feed.next_frame(stop)) is not None:
        second.append(frame)
    assert timeline(pipeline, second) == before  # sad again within seconds, then happy: as the first time
    assert second[0].t > first[-1].t


# -- the daemon --------------------------------------------------------------------------------------------------


def test_the_daemon_after_privacy_mode_changes_the_mood_within_seconds(daemon, tmp_path, media):
    """Issue 32's check on the real daemon, on a looping video (sad, then a smile, 4.6 s a loop)."""
    cfg = tmp_path / "moodbox.toml"
    cfg.write_text(
        f'[camera]\nsource = "replay"\nreplay_path = "{media / "phone_smile.mp4"}"\nreplay_loop = true\n'
        f'[state]\ndir = "{tmp_path / "state"}"\n'
    )
    d = daemon(["--config", str(cfg)], env=isolated_env(tmp_path))
    d.state_dir = tmp_path / "state"
    d.wait_healthy(90)
    http = d.login()

    def changes_since(since: float, count: int, within: float) -> list[str]:
        deadline, seen = time.monotonic() + within, {}
        while time.monotonic() < deadline and len(seen) < count:
            state = http.get(d.base + "/api/state", timeout=5).json()
            seen.update({c["at"]: c["mood"] for c in state["recent_changes"] if c["at"] > since})
            time.sleep(0.2)
        return [seen[at] for at in sorted(seen)]

    assert len(changes_since(0, 4, 30)) >= 4, d.log()  # two loops of the video: the mood has run for a while
    assert http.patch(d.base + "/api/settings", json={"privacy_mode": True}, timeout=10).ok
    wait_for(lambda: http.get(d.base + "/api/state", timeout=5).json()["camera"]["state"] == "off", 10)
    assert http.patch(d.base + "/api/settings", json={"privacy_mode": False}, timeout=10).ok
    after = changes_since(time.time(), 2, 8)
    assert after == ["sad", "happy"], f"mood changes in the 8 s after privacy mode: {after}\n{d.log()}"
