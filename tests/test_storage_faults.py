"""A full disk and a read-only state folder, for real: a small tmpfs as the state folder, filled or remounted
read-only (the tests mount it, so they run as root, as CI does).

Properties: a full disk is a state (degraded health, a clear 507 on writes, 200 on reads, the camera going on,
nothing saved lost) that clears by itself once there is room; a state folder Moodbox cannot write at all stops
the start with exit 78 and the cause on stderr.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from device.storage import FULL, StorageError
from device.store import Store
from tests.conftest import REPO, DaemonProcess, isolated_env


@contextlib.contextmanager
def tmpfs(where: Path, size: str):
    """A tmpfs of `size` mounted at `where` for the test, unmounted after it."""
    where.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)], capture_output=True
    )
    assert r.returncode == 0, f"mounting a tmpfs needs root (CI runs as root): {r.stderr.decode()}"
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the disk has not one byte left; returns it (delete it to free the space)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        chunk = 1 << 20
        while chunk:
            try:
                os.write(fd, b"\0" * chunk)
            except OSError:
                chunk //= 2
    finally:
        os.close(fd)
    return filler


def get(http, url: str):
    r = http.get(url, timeout=10)
    assert r.status_code == 200, (url, r.status_code, r.text[:300])
    return r.json()


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"not within {timeout} s: {what}")


def test_the_store_on_a_full_disk_refuses_writes_keeps_reads_and_recovers(tmp_path):
    with tmpfs(tmp_path / "disk", "3m") as disk:
        store = Store(disk / "state" / "moodbox.db")
        store.set_many({"speaker": "Kitchen", "dwell_seconds": 2.0})
        assert store.storage.report()["state"] == "ok"
        filler = fill(disk)
        assert store.storage.report()["state"] == FULL  # seen before any write fails
        with pytest.raises(StorageError) as err:
            store.set_many({"speaker": "Lounge", "cooldown_minutes": 9.0})
        assert err.value.problem == FULL and err.value.http_status == 507
        assert "full" in err.value.cause and "free some space" in err.value.fix
        assert store.settings() == {"speaker": "Kitchen", "dwell_seconds": 2.0}  # nothing half-saved, nothing lost
        filler.unlink()
        wait_for(lambda: store.storage.report()["state"] == "ok", 5, "the store notices the room")
        store.set("cooldown_minutes", 9.0)
        store.close()
        assert Store(disk / "state" / "moodbox.db").settings()["cooldown_minutes"] == 9.0


def test_a_full_disk_is_a_state_of_the_running_daemon_not_a_500(tmp_path):
    with tmpfs(tmp_path / "disk", "8m") as disk:
        env = isolated_env(tmp_path, XDG_STATE_HOME=str(disk))
        d = DaemonProcess(tmp_path, env=env)
        try:
            assert d.wait_healthy()["storage"]["state"] == "ok"
            http = d.login()
            assert http.patch(d.base + "/api/settings", json={"speaker": "Kitchen"}, timeout=10).status_code == 200
            frames_before = get(http, d.base + "/healthz")["frames"]

            filler = fill(disk)
            health = get(http, d.base + "/healthz")
            assert health["status"] == "degraded" and health["storage"]["state"] == "full", health
            assert "full" in health["storage"]["cause"] and health["storage"]["fix"]
            r = http.patch(d.base + "/api/settings", json={"dwell_seconds": 4}, timeout=10)
            assert r.status_code == 507, (r.status_code, r.text)
            answer = r.json()
            assert answer["storage"] == "full" and "full" in answer["error"] and "free some space" in answer["fix"]
            for path in ("/api/settings", "/api/state", "/api/history", "/api/videos", "/api/openapi.json"):
                get(http, d.base + path)  # reads keep working
            assert get(http, d.base + "/api/settings")["speaker"] == "Kitchen"
            assert get(http, d.base + "/api/settings")["dwell_seconds"] == 1.0  # the refused change did not apply
            state = get(http, d.base + "/api/state")
            assert any(e["source"] == "storage" and "full" in e["message"] for e in state["errors"]), state["errors"]
            wait_for(lambda: get(http, d.base + "/api/state")["storage"]["state"] == "full", 5, "the System page")
            wait_for(lambda: get(http, d.base + "/healthz")["frames"] > frames_before + 10, 10, "the camera goes on")
            assert "storage problem" in d.log()

            filler.unlink()
            health = wait_for(
                lambda: (h := get(http, d.base + "/healthz"))["status"] == "ok" and h, 15, "healthz ok again"
            )
            assert health["storage"]["state"] == "ok"
            assert http.patch(d.base + "/api/settings", json={"dwell_seconds": 4}, timeout=10).status_code == 200
            assert "writable again" in d.log()
        finally:
            assert d.stop() == 0
        log = d.log_path.read_text()
        assert "OperationalError" not in log and "internal error" not in log, log[-3000:]
        assert not [line for line in log.splitlines() if "request" in line and line.endswith("failed")], log[-3000:]
        with contextlib.closing(sqlite3.connect(disk / "moodbox" / "moodbox.db")) as db:
            saved = {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM settings")}
        assert saved["speaker"] == "Kitchen" and saved["dwell_seconds"] == 4.0


def moodbox(env: dict[str, str], *args: str, user: str | None = None) -> subprocess.CompletedProcess:
    prefix = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] if user else []
    return subprocess.run(
        [*prefix, sys.executable, "-m", "device", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("folder_exists", [True, False])
def test_a_read_only_state_folder_stops_the_start_with_78_and_the_cause(tmp_path, folder_exists):
    with tmpfs(tmp_path / "disk", "1m") as disk:
        if folder_exists:
            (disk / "moodbox").mkdir(mode=0o700)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        env = isolated_env(tmp_path, XDG_STATE_HOME=str(disk))
        for args in (["run", "--port", "9"], ["pairing-code"]):
            r = moodbox(env, *args)
            assert r.returncode == 78, (args, r.returncode, r.stderr[-2000:])
            assert "Traceback" not in r.stderr
            assert f"{disk / 'moodbox'} is read-only" in r.stderr and "[state] dir" in r.stderr, r.stderr


def test_a_state_folder_of_another_user_stops_the_start_with_78(tmp_path):
    base = Path(tempfile.mkdtemp(prefix="moodbox-state-"))
    try:
        base.chmod(0o755)
        state = base / "state"
        state.mkdir(mode=0o755)  # root's, and Moodbox runs as nobody: it can look, not write
        env = isolated_env(tmp_path, STATE_DIRECTORY=str(state), HOME=str(base), XDG_CONFIG_HOME=str(base))
        r = moodbox(env, "run", "--port", "9", user="65534")
    finally:
        shutil.rmtree(base)
    assert r.returncode == 78, (r.returncode, r.stderr[-2000:])
    assert f"{state} is read-only or not writable for Moodbox's user (Permission denied)" in r.stderr, r.stderr
