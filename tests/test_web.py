"""The page's security and durability over real HTTP: login, cookies, CSRF, rate limits, CSP, bad input,
SIGKILL restarts, and damaged or locked databases."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import requests

from tests.conftest import PASSWORD, REPO, DaemonProcess, csrf_from, isolated_env


def moodbox_command(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """The `moodbox` command line, as the owner would run it in a shell beside the daemon."""
    return subprocess.run(
        [sys.executable, "-m", "device", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("web")
    d = DaemonProcess(tmp, env=isolated_env(tmp))
    d.wait_healthy()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def http(box):
    return box.login()


def test_everything_but_health_needs_a_login(box):
    anon = requests.Session()
    assert anon.get(box.base + "/healthz", timeout=5).status_code == 200
    for path in (
        "/api/state",
        "/api/settings",
        "/api/history",
        "/api/videos",
        "/api/speakers",
        "/api/events",
        "/api/openapi.json",
        "/api/preview.jpg",
    ):
        assert anon.get(box.base + path, timeout=5).status_code == 401, path
    for path in ("/", "/history", "/settings", "/system", "/videos"):
        r = anon.get(box.base + path, timeout=5, allow_redirects=False)
        assert r.status_code == 302 and r.headers["Location"].startswith(("/login", "/setup")), path
    assert anon.patch(box.base + "/api/settings", json={"autoplay": False}, timeout=5).status_code == 401


def test_password_is_stored_as_scrypt(box, http):
    with sqlite3.connect(box.state_dir / "moodbox.db") as db:
        stored = json.loads(db.execute("SELECT value FROM settings WHERE key = '_owner'").fetchone()[0])
    assert stored["hash"].startswith("scrypt:") and PASSWORD not in stored["hash"]


def test_session_cookie_flags(box):
    r = requests.get(box.base + "/login", timeout=5)
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "moodbox_session=" in cookie


def test_security_headers_and_no_inline_script(box, http):
    r = http.get(box.base + "/settings", timeout=5)
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert r.headers["X-Frame-Options"] == "DENY" and r.headers["X-Content-Type-Options"] == "nosniff"
    assert "<script>" not in r.text and "onclick=" not in r.text
    assert "cdn" not in r.text.lower() and "https://" not in r.text.split("<main")[0]  # all assets local


def test_state_changes_need_the_csrf_token(box, http):
    token = http.headers["X-CSRF-Token"]
    del http.headers["X-CSRF-Token"]
    try:
        r = http.patch(box.base + "/api/settings", json={"dwell_seconds": 5}, timeout=5)
        assert r.status_code == 403 and "CSRF" in r.json()["error"]
        r = http.patch(
            box.base + "/api/settings", json={"dwell_seconds": 5}, headers={"X-CSRF-Token": "x" * 32}, timeout=5
        )
        assert r.status_code == 403
    finally:
        http.headers["X-CSRF-Token"] = token
    assert http.patch(box.base + "/api/settings", json={"dwell_seconds": 5}, timeout=5).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body", "fragment"),
    [
        ("PATCH", "/api/settings", "not json", "JSON object"),
        ("PATCH", "/api/settings", {"dwel_seconds": 3}, "unknown setting"),
        ("PATCH", "/api/settings", {"dwell_seconds": "long"}, "valid number"),
        ("PATCH", "/api/settings", {"music": {"happy": {"kind": "radio"}}}, "allowed values"),
        ("PATCH", "/api/settings", {"quiet_hours": {"start": "25:00"}}, "HH:MM"),
        ("PATCH", "/api/settings", [], "JSON object"),
        ("POST", "/api/not-my-mood", {"mood": "elated"}, "mood must be one of"),
        ("POST", "/api/autoplay", {"enabled": "yes"}, "true or false"),
        ("POST", "/api/spotify/finish", {"url": ""}, "paste the whole address"),
        ("GET", "/api/history?hours=nan", None, "between 0 and"),
        ("GET", "/api/history?hours=abc", None, "must be a number"),
        ("GET", "/api/videos?mood=x", None, "mood must be one of"),
    ],
)
def test_malformed_input_gets_a_400_with_a_message(box, http, method, path, body, fragment):
    kwargs = {"data": body} if isinstance(body, str) else {"json": body} if body is not None else {}
    r = http.request(method, box.base + path, timeout=5, **kwargs)
    assert r.status_code == 400, r.text
    assert fragment in json.dumps(r.json())


def test_oversized_requests_are_refused(box, http):
    r = http.patch(
        box.base + "/api/settings", data="x" * 200_000, headers={"Content-Type": "application/json"}, timeout=5
    )
    assert r.status_code == 413


def test_logins_are_rate_limited(tmp_path):
    d = DaemonProcess(tmp_path, env=isolated_env(tmp_path))
    try:
        d.wait_healthy()
        d.login()  # sets the password
        s = requests.Session()
        codes = []
        for _ in range(7):
            page = s.get(d.base + "/login", timeout=5)
            codes.append(
                s.post(
                    d.base + "/login", data={"csrf_token": csrf_from(page.text), "password": "guess"}, timeout=10
                ).status_code
            )
        assert codes[:5] == [401] * 5 and codes[5:] == [429, 429]
        page = s.get(d.base + "/login", timeout=5)
        r = s.post(d.base + "/login", data={"csrf_token": csrf_from(page.text), "password": PASSWORD}, timeout=10)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0  # even the right password waits
    finally:
        d.stop()


def test_settings_and_history_survive_sigkill(tmp_path):
    env = isolated_env(tmp_path)
    d = DaemonProcess(tmp_path, env=env)
    d.wait_healthy()
    http = d.login()
    changes = {
        "speaker": "Kitchen",
        "dwell_seconds": 4.5,
        "cooldown_minutes": 10,
        "autoplay": False,
        "quiet_hours": {"enabled": True, "start": "23:00", "end": "06:30"},
        "music": {"sad": {"kind": "search", "value": "rainy day jazz", "label": ""}},
    }
    assert http.patch(d.base + "/api/settings", json=changes, timeout=5).status_code == 200
    deadline = time.monotonic() + 30
    while not http.get(d.base + "/api/history?hours=1", timeout=5).json()["changes"] and time.monotonic() < deadline:
        time.sleep(0.5)
    history = http.get(d.base + "/api/history?hours=1", timeout=5).json()["changes"]
    assert history
    everything = [{"x": 0, "y": 0, "w": 1, "h": 1}]  # the whole view: every demo face is "a poster" from now on
    assert http.patch(d.base + "/api/settings", json={"ignored_areas": everything}, timeout=5).status_code == 200
    d.proc.send_signal(signal.SIGKILL)  # a power cut, as far as the process can tell
    d.proc.wait(10)
    d.stop()
    again = DaemonProcess(tmp_path, env=env, port=d.port)
    try:
        again.wait_healthy()
        http = again.login()  # the password survived too
        saved = http.get(again.base + "/api/settings", timeout=5).json()
        assert saved["speaker"] == "Kitchen" and saved["dwell_seconds"] == 4.5 and saved["autoplay"] is False
        assert saved["quiet_hours"] == {"enabled": True, "start": "23:00", "end": "06:30"}
        assert saved["music"]["sad"]["value"] == "rainy day jazz"
        assert saved["ignored_areas"] == [{"x": 0.0, "y": 0.0, "w": 1.0, "h": 1.0}]
        deadline = time.monotonic() + 30  # and it holds from the first frame: faces are seen, none is read
        while True:
            state = http.get(again.base + "/api/state", timeout=5).json()
            assert state["faces"] == [], "a face was read in an area the owner had set to be ignored"
            if state["ignored_faces"]:
                break
            assert time.monotonic() < deadline, "no demo face showed up in 30 s"
            time.sleep(0.1)
        after = http.get(again.base + "/api/history?hours=1", timeout=5).json()["changes"]
        assert after[: len(history)] == history
    finally:
        again.stop()


def test_delete_my_history(box, http):
    deadline = time.monotonic() + 30
    while not http.get(box.base + "/api/history?hours=1", timeout=5).json()["changes"] and time.monotonic() < deadline:
        time.sleep(0.5)
    with sqlite3.connect(box.state_dir / "moodbox.db") as db:
        before = db.execute("SELECT at, mood FROM history").fetchall()
    r = http.delete(box.base + "/api/history", timeout=10)
    assert r.status_code == 200 and r.json()["deleted"] >= len(before) >= 1
    with sqlite3.connect(box.state_dir / "moodbox.db") as db:
        after = db.execute("SELECT at, mood FROM history").fetchall()
    # Every change stored before the delete is gone; only changes the room made since may be there.
    assert not set(before) & set(after), set(before) & set(after)


def test_a_damaged_database_is_kept_aside_and_the_box_starts(tmp_path):
    env = isolated_env(tmp_path)
    state = tmp_path / "home" / ".state" / "moodbox"
    state.mkdir(parents=True)
    (state / "moodbox.db").write_bytes(b"SQLite format 3\x00" + b"\xff" * 5000)
    d = DaemonProcess(tmp_path, env=env)
    try:
        d.wait_healthy()
        kept = list(state.glob("moodbox.db.corrupt-*"))
        assert len(kept) == 1 and kept[0].read_bytes().startswith(b"SQLite format 3")
        http = d.login()
        errors = http.get(d.base + "/api/state", timeout=5).json()["errors"]
        assert any("damaged" in e["message"] and kept[0].name in e["message"] for e in errors)
    finally:
        d.stop()


def test_a_locked_database_is_explained(tmp_path):
    env = isolated_env(tmp_path)
    state = tmp_path / "home" / ".state" / "moodbox"
    state.mkdir(parents=True)
    holder = sqlite3.connect(state / "moodbox.db", isolation_level=None)
    holder.execute("PRAGMA journal_mode=DELETE")
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        r = moodbox_command(env, "replay", "demo")
        assert r.returncode == 0  # replay does not need the database
        d = DaemonProcess(tmp_path, env=env)
        code = d.proc.wait(60)
        assert code != 0 and "locked by another process" in d.log() and "Traceback" not in d.log()
        d.stop()
    finally:
        holder.rollback()
        holder.close()


def test_forgotten_password_reset_from_the_shell_signs_everyone_out(tmp_path):
    env = isolated_env(tmp_path)
    d = DaemonProcess(tmp_path, env=env)
    try:
        d.wait_healthy()
        http = d.login()
        assert http.get(d.base + "/api/state", timeout=5).status_code == 200
        r = moodbox_command(env, "pairing-code", "--reset")
        assert r.returncode == 0 and "Pairing code:" in r.stdout
        assert http.get(d.base + "/api/state", timeout=5).status_code == 401  # the old session is out
        again = d.login("a brand new password")  # set up anew with the new code
        assert again.get(d.base + "/api/state", timeout=5).status_code == 200
        assert http.get(d.base + "/api/state", timeout=5).status_code == 401  # and stays out
    finally:
        d.stop()


def test_a_password_reset_also_ends_open_live_streams(tmp_path):
    env = isolated_env(tmp_path)
    d = DaemonProcess(tmp_path, env=env)
    try:
        d.wait_healthy()
        http = d.login()
        with http.get(d.base + "/api/events", stream=True, timeout=30) as r:
            lines = r.iter_lines(decode_unicode=True)
            assert any(line.startswith("data: ") for line in (next(lines) for _ in range(6)))
            moodbox_command(env, "pairing-code", "--reset").check_returncode()
            start = time.monotonic()
            for _ in lines:  # the server closes the stream after the next event
                pass
            assert time.monotonic() - start < 10
    finally:
        d.stop()


def test_saving_a_client_id_alone_keeps_what_plays(box, http):
    """Until Spotify is connected the preview shows what would play. A Client ID saved on its own changes no
    player, so "Playing" must not turn into "Nothing yet" (it did: the save restarted auto-play)."""
    deadline, playing = time.monotonic() + 90, None
    while playing is None and time.monotonic() < deadline:
        playing = http.get(box.base + "/api/state", timeout=5).json()["playing"]
        time.sleep(0.3)
    assert playing and playing["preview"], playing
    try:
        r = http.patch(box.base + "/api/settings", json={"spotify_client_id": "0123456789abcdef0123456789abcdef"})
        assert r.status_code == 200, r.text
        after = http.get(box.base + "/api/state", timeout=5).json()["playing"]
        assert after is not None and after["started_at"] == playing["started_at"], after
    finally:
        http.patch(box.base + "/api/settings", json={"spotify_client_id": ""})
