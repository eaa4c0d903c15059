"""Privacy: no frame or face crop is ever written to disk or sent over the network.

The real process runs under strace, which sees every file it opens for writing and every socket it connects,
whatever library does it (Python, OpenCV's C++, LiteRT). Then every file it wrote, and every file that appeared
where it can write, is checked for image data.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port, isolated_env, login
from tests.mqtt_broker import Broker, Listener
from tests.test_learning import assert_learner_keeps_numbers_only

IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"BM", b"GIF8", b"II*\x00", b"MM\x00*", b"RIFF", b"P5", b"P6", b"\x93NUMPY")
IMAGE_SUFFIX = re.compile(r"\.(jpe?g|png|bmp|gif|tiff?|webp|pgm|ppm|npy|npz|yuv|raw|h264|mp4|avi|mkv)$", re.I)
WRITE_OPEN = re.compile(r'open(?:at)?\((?:[^,]+, )?"([^"]+)", ([A-Z_|]+)[^)]*\) = (\d+)')
CONNECT = re.compile(
    r"connect\(\d+, \{sa_family=(AF_INET6?|AF_UNIX)[^}]*?(?:sin6?_addr=inet_pton\(AF_INET6?, \"([^\"]+)\"\)|inet_addr\(\"([^\"]+)\"\)|sun_path=\"([^\"]*)\")"
)


def traced(cmd: list[str], tmp_path: Path, **kw) -> tuple[subprocess.Popen, Path]:
    trace = tmp_path / "strace.txt"
    full = [
        "strace",
        "-f",
        "-qq",
        "-s",
        "200",
        "-o",
        str(trace),
        "-e",
        "trace=open,openat,creat,connect,sendto,sendmsg",
        *cmd,
    ]
    proc = subprocess.Popen(
        full, cwd=REPO, env=isolated_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw
    )
    return proc, trace


def stop_traced(proc: subprocess.Popen) -> None:
    """SIGTERM the traced program (strace's child), then let strace finish writing the trace."""
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    for pid in children:
        subprocess.run(["kill", "-TERM", pid], check=False)
    proc.communicate(timeout=30)


def written_paths(trace: Path) -> set[str]:
    paths = set()
    for m in WRITE_OPEN.finditer(trace.read_text()):
        path, flags = m.group(1), m.group(2)
        if any(f in flags for f in ("O_WRONLY", "O_RDWR", "O_CREAT")):
            paths.add(path)
    return paths


def remote_connects(trace: Path) -> list[str]:
    bad = []
    for m in CONNECT.finditer(trace.read_text()):
        family, v6, v4, _unix = m.groups()
        addr = v6 or v4
        if family != "AF_UNIX" and addr not in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
            bad.append(m.group(0))
    return bad


def looks_like_image(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            head = f.read(16)
    except OSError:
        return False
    return bool(IMAGE_SUFFIX.search(path.name)) or any(head.startswith(m) for m in IMAGE_MAGIC)


def new_files(roots: list[Path], since: float) -> list[Path]:
    out = []
    for root in roots:
        if root.exists():
            out += [p for p in root.rglob("*") if p.is_file() and p.stat().st_mtime >= since]
    return out


def assert_no_images(trace: Path, tmp_path: Path, since: float) -> None:
    text = trace.read_text()
    assert WRITE_OPEN.search(text), "strace recorded no file opened: the trace is not real, and so proves nothing"
    written = written_paths(trace)
    for path in written:
        assert not IMAGE_SUFFIX.search(path), f"the process opened {path} for writing"
        p = Path(path)
        if p.is_file() and not path.startswith(("/dev/", "/proc/")):
            assert not looks_like_image(p), f"{path} holds image data"
    roots = [tmp_path, REPO, Path("/tmp"), Path("/var/tmp"), Path("/dev/shm")]
    images = [
        p
        for p in new_files(roots, since)
        if looks_like_image(p)
        and "strace" not in p.name
        and ".pytest_cache" not in p.parts
        and "artifacts" not in p.parts
        and "pytest-of" not in str(p)
    ]
    assert images == [], images


def test_replay_writes_no_image_and_opens_no_remote_connection(tmp_path, media):
    since = time.time() - 1
    proc, trace = traced([sys.executable, "-m", "device", "replay", str(media / "phone_smile.mp4"), "--json"], tmp_path)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert '"final_mood"' in out
    text = trace.read_text()
    assert "phone_smile.mp4" in text, "strace saw the video being opened: the trace is real"
    assert_no_images(trace, tmp_path, since)
    assert remote_connects(trace) == []


def assert_only_text_or_json(messages: list) -> None:
    """Every MQTT payload is UTF-8 text, JSON or a printable line, and small: never a picture."""
    assert messages, "nothing was published over MQTT: the check is real only with Home Assistant on"
    for m in messages:
        assert not any(m.payload.startswith(magic) for magic in IMAGE_MAGIC), m.topic
        assert len(m.payload) < 4096, (m.topic, len(m.payload))
        try:
            text = m.payload.decode("utf-8")
        except UnicodeDecodeError:
            raise AssertionError(f"{m.topic}: a binary payload") from None
        if text.startswith(("{", "[")):
            json.loads(text)
        else:
            assert text.isprintable(), (m.topic, text[:80])


def test_the_running_daemon_writes_no_image_and_serves_none(tmp_path):
    since = time.time() - 1
    port = free_port()
    broker = Broker(tmp_path / "mosquitto").start()  # with Home Assistant (MQTT) on: nothing but text goes there
    config = tmp_path / "moodbox.toml"
    config.write_text(broker.toml())
    everything = Listener(broker, "#")
    proc, trace = traced(
        [sys.executable, "-m", "device", "--config", str(config), "run", "--port", str(port)], tmp_path
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as r:
                    if b'"frames"' in r.read():
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the daemon did not analyse a frame within 60 s"
            time.sleep(0.2)
        http = login(base, tmp_path / "home" / ".state" / "moodbox")
        # Frames analysed until the mood changed: the demo's faces were read, and the music would follow.
        deadline = time.monotonic() + 60
        while len(moods := {m.payload for m in everything.messages if m.topic == "moodbox/test/mood"}) < 2:
            assert time.monotonic() < deadline, f"the mood did not change in 60 s: {moods}"
            time.sleep(0.2)
        for path in ("/", "/system", "/api/state", "/healthz", "/static/app.js", "/api/preview.jpg"):
            r = http.get(base + path, timeout=5)
            ctype = r.headers["Content-Type"]
            assert not ctype.startswith(("image/", "video/")), (path, ctype)
            assert not any(r.content.startswith(m) for m in IMAGE_MAGIC[:4]), path
        assert http.get(base + "/api/preview.jpg", timeout=5).status_code == 403  # off unless the owner allows it
        # A correction ("read wrong? it is really ..."), made while a face is in view: it records numbers only.
        deadline, made = time.monotonic() + 60, None
        while made is None and time.monotonic() < deadline:
            shown = http.get(base + "/api/state", timeout=5).json()["mood"]["name"]
            r = http.post(base + "/api/corrections", json={"mood": "fear" if shown != "fear" else "sad"}, timeout=5)
            if r.status_code == 200:
                made = r.json()
            else:
                assert r.status_code == 409, r.text  # nobody in view just now: the demo's empty room
                time.sleep(0.5)
        assert made is not None and made["faces"] > 0
    finally:
        stop_traced(proc)
        everything.close()
        broker.kill()
    assert "face_detection_full_range" in trace.read_text()
    assert f"sin_port=htons({broker.port})" in trace.read_text(), "strace saw the connection to the MQTT broker"
    assert_no_images(trace, tmp_path, since)
    assert remote_connects(trace) == []
    assert_only_text_or_json(everything.messages)
    assert any(m.topic == "moodbox/test/mood" for m in everything.messages)
    assert assert_learner_keeps_numbers_only(tmp_path / "home" / ".state" / "moodbox" / "moodbox.db") > 0


def test_the_mqtt_check_catches_a_picture():
    from tests.mqtt_broker import Message

    assert_only_text_or_json([Message(0, "moodbox/test/mood", b"happy", True)])
    for payload in (b"\xff\xd8\xff\xe0" + bytes(100), b"\x89PNG\r\n", bytes(range(256)), b"x" * 5000):
        with pytest.raises(AssertionError):
            assert_only_text_or_json([Message(0, "moodbox/test/mood", payload, True)])


def test_the_checker_catches_an_image_write(tmp_path):
    """The same checks flag a process that does save a frame: the privacy test can fail."""
    since = time.time() - 1
    script = "import cv2, numpy as np; cv2.imwrite('leak.png', np.zeros((8, 8), np.uint8))"
    proc, trace = traced([sys.executable, "-c", script], tmp_path)
    proc.communicate(timeout=60)
    assert any(p.endswith("leak.png") for p in written_paths(trace))
    try:
        assert_no_images(trace, tmp_path, since)
    except AssertionError:
        pass
    else:
        raise AssertionError("an image write went unnoticed")
    finally:
        (REPO / "leak.png").unlink(missing_ok=True)
