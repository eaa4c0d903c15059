"""Settings, mood history and caches in one SQLite file (WAL, fsync on commit) in the state directory.

A corrupt database is moved aside (kept for recovery, never deleted) and a fresh one started, with a notice for
the page; a locked one is waited for, then reported with the fix. Nothing here ever holds an image.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS history (at REAL NOT NULL, mood TEXT NOT NULL, confidence REAL NOT NULL);
CREATE INDEX IF NOT EXISTS history_at ON history (at);
CREATE TABLE IF NOT EXISTS cache (kind TEXT, key TEXT, value TEXT NOT NULL, expires REAL NOT NULL,
                                  PRIMARY KEY (kind, key));
CREATE TABLE IF NOT EXISTS budget (name TEXT, day TEXT, used INTEGER NOT NULL, PRIMARY KEY (name, day));
"""


class StoreError(RuntimeError):
    """The database cannot be used; the message says why and what to do."""


class Store:
    def __init__(self, path: Path, busy_timeout: float = 5.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.notice: str | None = None  # shown on the page after a recovery
        self._lock = threading.RLock()
        self._busy_timeout = busy_timeout
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as exc:
            if "locked" in str(exc):
                raise StoreError(
                    f"{self.path} is locked by another process (is a second Moodbox running?): "
                    "stop it, or point [state] dir elsewhere"
                ) from exc
            self._db = self._recover(exc)

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=self._busy_timeout, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # a setting saved is a setting kept, power cut or not
            check = db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(f"integrity check failed: {check}")
            db.executescript(SCHEMA)
        except sqlite3.DatabaseError:
            db.close()
            raise
        self.path.chmod(0o600)
        return db

    def _recover(self, exc: Exception) -> sqlite3.Connection:
        aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        self.path.rename(aside)
        for suffix in ("-wal", "-shm"):
            extra = self.path.with_name(self.path.name + suffix)
            if extra.exists():
                extra.rename(aside.with_name(aside.name + suffix))
        self.notice = (
            f"The settings database was damaged ({exc}). It was kept as {aside.name} and Moodbox "
            "started with default settings; set them again on the Settings page."
        )
        log.error(self.notice)
        return self._open()

    def _run(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    raise StoreError(
                        f"{self.path} stayed locked for {self._busy_timeout:.0f} s: another process "
                        "holds it; stop it and try again"
                    ) from exc
                raise

    # -- settings ------------------------------------------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        rows = self._run("SELECT value FROM settings WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else default

    def set(self, key: str, value: Any) -> None:
        self._run(
            "INSERT INTO settings (key, value, updated) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
            "value = excluded.value, updated = excluded.updated",
            (key, json.dumps(value), time.time()),
        )

    def set_many(self, values: dict[str, Any]) -> None:
        with self._lock:
            self._run("BEGIN IMMEDIATE")
            try:
                for k, v in values.items():
                    self.set(k, v)
                self._run("COMMIT")
            except BaseException:
                self._run("ROLLBACK")
                raise

    def settings(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self._run("SELECT key, value FROM settings")}

    def delete(self, key: str) -> None:
        self._run("DELETE FROM settings WHERE key = ?", (key,))

    # -- history -------------------------------------------------------------------------------------------
    def add_mood(self, at: float, mood: str, confidence: float) -> None:
        self._run("INSERT INTO history (at, mood, confidence) VALUES (?, ?, ?)", (at, mood, confidence))

    def history(self, since: float, until: float | None = None) -> list[dict[str, Any]]:
        rows = self._run(
            "SELECT at, mood, confidence FROM history WHERE at >= ? AND at <= ? ORDER BY at",
            (since, until if until is not None else time.time() + 1),
        )
        return [{"at": at, "mood": mood, "confidence": c} for at, mood, c in rows]

    def mood_before(self, at: float) -> dict[str, Any] | None:
        rows = self._run("SELECT at, mood, confidence FROM history WHERE at < ? ORDER BY at DESC LIMIT 1", (at,))
        return {"at": rows[0][0], "mood": rows[0][1], "confidence": rows[0][2]} if rows else None

    def delete_history(self) -> int:
        n = self._run("SELECT count(*) FROM history")[0][0]
        self._run("DELETE FROM history")
        self._run("PRAGMA wal_checkpoint(TRUNCATE)")
        self._run("VACUUM")  # deleted rows must not linger in free pages
        return n

    def prune_history(self, keep_days: float) -> int:
        cutoff = time.time() - keep_days * 86400
        n = self._run("SELECT count(*) FROM history WHERE at < ?", (cutoff,))[0][0]
        if n:
            self._run("DELETE FROM history WHERE at < ?", (cutoff,))
        return n

    # -- caches and daily budgets --------------------------------------------------------------------------
    def cache_get(self, kind: str, key: str, allow_stale: bool = False) -> tuple[Any, bool] | None:
        """(value, fresh) or None."""
        rows = self._run("SELECT value, expires FROM cache WHERE kind = ? AND key = ?", (kind, key))
        if not rows:
            return None
        fresh = rows[0][1] > time.time()
        if not fresh and not allow_stale:
            return None
        return json.loads(rows[0][0]), fresh

    def cache_put(self, kind: str, key: str, value: Any, ttl: float) -> None:
        self._run(
            "INSERT OR REPLACE INTO cache (kind, key, value, expires) VALUES (?, ?, ?, ?)",
            (kind, key, json.dumps(value), time.time() + ttl),
        )

    def take_budget(self, name: str, limit: int, day: str | None = None) -> bool:
        """Use one unit of a daily budget; False (and nothing used) when today's is spent."""
        day = day or time.strftime("%Y-%m-%d")
        with self._lock:
            self._run("BEGIN IMMEDIATE")
            try:
                rows = self._run("SELECT used FROM budget WHERE name = ? AND day = ?", (name, day))
                used = rows[0][0] if rows else 0
                if used >= limit:
                    self._run("COMMIT")
                    return False
                self._run("INSERT OR REPLACE INTO budget (name, day, used) VALUES (?, ?, ?)", (name, day, used + 1))
                self._run("COMMIT")
                return True
            except BaseException:
                self._run("ROLLBACK")
                raise

    def budget_used(self, name: str, day: str | None = None) -> int:
        rows = self._run("SELECT used FROM budget WHERE name = ? AND day = ?", (name, day or time.strftime("%Y-%m-%d")))
        return rows[0][0] if rows else 0

    def close(self) -> None:
        with self._lock:
            self._db.close()
