"""systemd integration with real sd_notify datagrams: the test binds NOTIFY_SOCKET itself and reads what the
daemon sends. The camera is a video stream through a FIFO that the test writes, so the test can freeze it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, DaemonProcess, isolated_env

UNIT = REPO / "deploy" / "systemd" / "moodbox.service"


class NotifySocket:
    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._stop = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            for line in data.decode().splitlines():
                self.messages.append((time.monotonic(), line))

    def wait_for(self, prefix: str, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, m in list(self.messages):
                if m.startswith(prefix):
                    return t
            time.sleep(0.05)
        raise AssertionError(f"no {prefix} within {timeout} s; got {[m for _, m in self.messages][-10:]}")

    def count(self, message: str, since: float) -> int:
        return sum(1 for t, m in list(self.messages) if m == message and t >= since)

    def close(self) -> None:
        self._stop = True
        self.sock.close()


class FifoCamera:
    """A camera as a YUV4MPEG2 stream through a FIFO, written at 15 fps until frozen."""

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.path = path
        self.frozen = threading.Event()
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._write, daemon=True)
        self._thread.start()

    def _write(self) -> None:
        with contextlib.suppress(BrokenPipeError):  # the daemon under test stopped reading: it exited
            self._feed()

    def _feed(self) -> None:
        with open(self.path, "wb") as f:
            f.write(b"YUV4MPEG2 W320 H240 F15:1 Ip A1:1 C420jpeg\n")
            i = 0
            while not self.done.is_set():
                if self.frozen.is_set():  # the pipe stays open, nothing more comes: a hung camera
                    time.sleep(0.05)
                    continue
                f.write(b"FRAME\n" + np.full(320 * 240, i % 200, np.uint8).tobytes() + bytes([128]) * (320 * 120))
                f.flush()
                i += 1
                time.sleep(1 / 15)


@pytest.fixture
def notified(tmp_path):
    sock_path = tmp_path / "notify.sock"
    notify = NotifySocket(sock_path)
    camera = FifoCamera(tmp_path / "camera.y4m")
    cfg = tmp_path / "moodbox.toml"
    cfg.write_text(
        f'[camera]\nsource = "replay"\nreplay_path = "{camera.path}"\nreplay_pace = "fast"\nreplay_loop = false\n'
    )
    env = isolated_env(tmp_path, NOTIFY_SOCKET=str(sock_path), WATCHDOG_USEC="1500000")
    d = DaemonProcess(tmp_path, ["--config", str(cfg)], env)
    yield d, notify, camera
    camera.done.set()
    d.stop()
    notify.close()


def test_ready_watchdog_status_and_a_frozen_camera_stops_the_pings(notified):
    d, notify, camera = notified
    ready = notify.wait_for("READY=1", 90)
    health = d.wait_healthy(5)  # the page is up by the time READY=1 is sent
    assert health["frames"] >= 1 and health["camera"]["state"] == "live"
    notify.wait_for("STATUS=mood ", 10)
    time.sleep(3)
    assert notify.count("WATCHDOG=1", since=ready) >= 4  # every half period (0.75 s) or more often
    camera.frozen.set()
    time.sleep(1.0)  # let a frame in flight finish
    frozen_at = time.monotonic()
    time.sleep(3.0)
    assert notify.count("WATCHDOG=1", since=frozen_at) == 0, "pings must stop when the frame loop hangs"
    assert d.proc.poll() is None  # the daemon itself does not notice; systemd will restart it
    camera.frozen.clear()
    time.sleep(2.5)
    assert notify.count("WATCHDOG=1", since=frozen_at + 3.0) >= 1  # frames again, pings again


def test_sigterm_stops_cleanly_within_5_s_with_settings_saved(notified):
    d, notify, _ = notified
    notify.wait_for("READY=1", 90)
    http = d.login()
    r = http.patch(d.base + "/api/settings", json={"dwell_seconds": 7.5, "speaker": "Kitchen"}, timeout=10)
    assert r.status_code == 200
    start = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    code = d.proc.wait(10)
    elapsed = time.monotonic() - start
    assert code == 0 and elapsed < 5, (code, elapsed, d.log()[-2000:])
    notify.wait_for("STOPPING=1", 1)
    with sqlite3.connect(d.state_dir / "moodbox.db") as db:
        saved = dict(db.execute("SELECT key, value FROM settings").fetchall())
    assert saved["dwell_seconds"] == "7.5" and saved["speaker"] == '"Kitchen"'
    assert "stopped; settings saved" in d.log()


def test_without_systemd_it_runs_the_same_with_plain_logging(daemon):
    d = daemon()
    assert d.wait_healthy()["pipeline"] in ("running", "starting")
    deadline = time.monotonic() + 30
    while " INFO moodbox: ready" not in d.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert " INFO moodbox: ready" in d.log()  # plain stderr logging, no journal needed


def test_the_unit_passes_systemd_analyze_verify(tmp_path):
    root = tmp_path / "root"
    (root / "usr/lib/systemd").mkdir(parents=True)
    shutil.copytree("/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    exe = root / "opt/moodbox/.venv/bin/moodbox"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(UNIT, root / "etc/systemd/system/moodbox.service")
    r = subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", "/etc/systemd/system/moodbox.service"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr
    # The same check catches a broken unit: it can fail.
    broken = UNIT.read_text().replace("Type=notify", "Type=notfy")
    (root / "etc/systemd/system/moodbox.service").write_text(broken)
    r = subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", "/etc/systemd/system/moodbox.service"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "notfy" in r.stdout + r.stderr


def test_the_unit_has_what_the_appliance_needs():
    text = UNIT.read_text()
    for line in (
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "SupplementaryGroups=video",
        "StateDirectory=moodbox",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "User=moodbox",
        "RestartPreventExitStatus=78",
    ):
        assert line in text
    assert "PrivateDevices=yes" not in text  # it would hide the camera


def test_no_ready_until_the_camera_is_up_but_the_start_timeout_is_extended(tmp_path):
    sock_path = tmp_path / "notify.sock"
    notify = NotifySocket(sock_path)
    video = tmp_path / "camera.mp4"  # not there yet: the camera is unplugged at boot
    cfg = tmp_path / "moodbox.toml"
    cfg.write_text(f'[camera]\nsource = "replay"\nreplay_path = "{video}"\nreplay_loop = true\n')
    d = DaemonProcess(tmp_path, ["--config", str(cfg)], isolated_env(tmp_path, NOTIFY_SOCKET=str(sock_path)))
    try:
        health = d.wait_healthy(60)  # the page is up and says what is wrong
        assert health["pipeline"] in ("starting", "camera-retrying")
        notify.wait_for("EXTEND_TIMEOUT_USEC=", 20)
        notify.wait_for("STATUS=waiting for the camera", 20)
        time.sleep(2)
        assert not any(m == "READY=1" for _, m in notify.messages)
        from tests.conftest import MEDIA

        video.write_bytes((MEDIA / "phone_smile.mp4").read_bytes())  # plugged in
        notify.wait_for("READY=1", 60)
    finally:
        d.stop()
        notify.close()
