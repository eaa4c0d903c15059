"""Shared fixtures. Data and media come from ../shared beside the checkout; nothing from there is committed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MEDIA = SHARED / "media"
DATA = SHARED / "data"
ARTIFACTS = REPO / "artifacts"  # screenshots and logs CI keeps
CHROMIUM_ARGS = [  # Debian's Chromium, headless, asking nothing of the network
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def media() -> Path:
    assert (MEDIA / "justin.jpg").exists(), f"test media missing: {MEDIA} (../shared/media beside the checkout)"
    return MEDIA


@pytest.fixture(scope="session")
def justin_grey(media) -> np.ndarray:
    return cv2.imread(str(media / "justin.jpg"), cv2.IMREAD_GRAYSCALE)


@pytest.fixture(scope="session")
def classifier():
    from device.emotion import EmotionClassifier

    return EmotionClassifier()


@pytest.fixture(scope="session")
def detector():
    from device.faces import make_detector

    return make_detector("blazeface")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def isolated_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Environment for a daemon under test: its own HOME, state and config dirs, no real config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOODBOX_", "NOTIFY_SOCKET", "WATCHDOG_"))}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_STATE_HOME=str(home / ".state"),
        TMPDIR=str(tmp_path),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


PASSWORD = "correct horse battery"


def csrf_from(html: str) -> str:
    import re

    m = re.search(r'name="csrf[-_]token" (?:value|content)="([^"]+)"', html)
    assert m, "no CSRF token in the page"
    return m.group(1)


def login(base: str, state_dir: Path, password: str = PASSWORD):
    """A requests.Session signed in to the page (setting the password with the pairing code on first run),
    with the CSRF header set for state-changing calls."""
    import requests

    http = requests.Session()
    r = http.get(base + "/", timeout=10)
    if r.url.endswith("/setup"):
        code = (state_dir / "pairing-code").read_text().strip()
        r = http.post(
            base + "/setup",
            data={"csrf_token": csrf_from(r.text), "code": code, "password": password, "password2": password},
            timeout=30,
        )
    elif "/login" in r.url:
        r = http.post(base + "/login", data={"csrf_token": csrf_from(r.text), "password": password}, timeout=30)
    assert r.status_code == 200 and 'data-page="now"' in r.text, (r.status_code, r.url, r.text[:500])
    http.headers["X-CSRF-Token"] = csrf_from(r.text)
    return http


class DaemonProcess:
    """`moodbox run` in a subprocess, on a free port, with an isolated HOME."""

    def __init__(
        self, tmp_path: Path, args: list[str] | None = None, env: dict[str, str] | None = None, port: int | None = None
    ) -> None:
        self.env = env or isolated_env(tmp_path)
        self.state_dir = Path(self.env["XDG_STATE_HOME"]) / "moodbox"
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / f"daemon-{self.port}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "device", *(args or []), "run", "--port", str(self.port)],
            cwd=REPO,
            env=env or isolated_env(tmp_path),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_healthy(self, timeout: float = 60) -> dict:
        import json
        import urllib.request

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=2) as r:
                    return json.loads(r.read())
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"daemon not healthy within {timeout} s:\n{self.log()}")

    def login(self, password: str = PASSWORD):
        return login(self.base, self.state_dir, password)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def stop(self, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def daemon(tmp_path):
    started: list[DaemonProcess] = []

    def start(
        args: list[str] | None = None, env: dict[str, str] | None = None, port: int | None = None
    ) -> DaemonProcess:
        d = DaemonProcess(tmp_path, args, env, port)
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop()


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium under Playwright, one per test module."""
    from playwright.sync_api import sync_playwright

    (ARTIFACTS / "screenshots").mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()
