"""`moodbox run` with no camera, no config and no credentials: demo feed, page, health, preview player."""

from __future__ import annotations

import json
import time
import urllib.request

from tests.conftest import isolated_env


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:
        assert r.status == 200
        return json.loads(r.read())


def test_demo_by_default_page_health_and_changing_moods(daemon, tmp_path):
    d = daemon()
    health = d.wait_healthy()
    assert set(health) >= {"pipeline", "camera", "fps"}
    with urllib.request.urlopen(d.base + "/", timeout=5) as r:
        page = r.read().decode()
        assert r.status == 200 and "Moodbox" in page
        assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    http = d.login()
    moods, start = [], time.monotonic()
    while time.monotonic() - start < 60 and len(moods) < 3:
        state = http.get(d.base + "/api/state", timeout=5).json()
        name = state["mood"]["name"]
        if not moods or moods[-1] != name:
            moods.append(name)
        time.sleep(0.5)
    assert len(moods) >= 3, f"mood changed fewer than twice in 60 s: {moods}\n{d.log()}"
    health = get_json(d.base + "/healthz")
    assert health["pipeline"] == "running" and health["camera"]["source"] == "demo"
    assert health["fps"] > 5
    state = http.get(d.base + "/api/state", timeout=5).json()
    assert state["playing"]["preview"] is True and state["playing"]["source"]["description"]
    assert "would play" in d.log()


def test_live_events_stream_pushes_state(daemon):
    d = daemon()
    d.wait_healthy()
    http = d.login()
    with http.get(d.base + "/api/events", stream=True, timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/event-stream")
        versions = []
        for line in r.iter_lines(decode_unicode=True):
            if line.startswith("data: "):
                versions.append(json.loads(line[6:])["version"])
            if len(versions) == 3:
                break
    assert versions == sorted(versions) and len(set(versions)) == 3


def test_missing_camera_is_reported_and_retried_then_recovers(daemon, tmp_path, media):
    video = tmp_path / "camera.mp4"
    cfg = tmp_path / "moodbox.toml"
    cfg.write_text(f'[camera]\nsource = "replay"\nreplay_path = "{video}"\nreplay_loop = true\n')
    d = daemon(["--config", str(cfg)], env=isolated_env(tmp_path))
    d.wait_healthy(90)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        health = get_json(d.base + "/healthz")
        if health["pipeline"] == "camera-retrying":
            break
        time.sleep(0.2)
    assert health["pipeline"] == "camera-retrying" and "does not exist" in health["camera"]["error"]
    assert health["status"] == "degraded"
    video.write_bytes((media / "phone_smile.mp4").read_bytes())  # the camera comes back
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and health["pipeline"] != "running":
        time.sleep(0.5)
        health = get_json(d.base + "/healthz")
    assert health["pipeline"] == "running" and health["camera"]["error"] is None
    assert d.proc.poll() is None


def test_port_in_use_is_a_clear_error(daemon, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        d = daemon()
        d.proc.kill()
        d.proc.wait()
        import subprocess
        import sys

        from tests.conftest import REPO

        r = subprocess.run(
            [sys.executable, "-m", "device", "run", "--port", str(port)],
            cwd=REPO,
            env=isolated_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert r.returncode != 0 and f"127.0.0.1:{port}" in r.stderr and "--port" in r.stderr
