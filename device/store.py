"""Settings, mood history and caches in one SQLite file (WAL, fsync on commit) in the state directory.

A corrupt database is moved aside (kept for recovery, never deleted) and a fresh one started, with a notice for
the page; a locked one is waited for, then reported with the fix. A full disk or a read-only folder is a state,
not a crash: writes raise StorageError with the cause and the fix, and `storage` (device/storage.py) reports it.
Nothing here ever holds an image.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from device.storage import DAMAGED, StorageError, StorageWatch, StoreError, classify, describe

log = logging.getLogger(__name__)
SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS history (at REAL NOT NULL, mood TEXT NOT NULL, confidence REAL NOT NULL);
CREATE INDEX IF NOT EXISTS history_at ON history (at);
CREATE TABLE IF NOT EXISTS cache (kind TEXT, key TEXT, value TEXT NOT NULL, expires REAL NOT NULL,
                                  PRIMARY KEY (kind, key));
CREATE TABLE IF NOT EXISTS budget (name TEXT, day TEXT, used INTEGER NOT NULL, PRIMARY KEY (name, day));
CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, created REAL NOT NULL, seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS signin_limits (key TEXT PRIMARY KEY, failures INTEGER NOT NULL, last REAL NOT NULL,
                                          locked_until REAL NOT NULL);
CREATE TABLE IF NOT EXISTS signin_failures (at REAL NOT NULL, key TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS corrections (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, model TEXT NOT NULL,
                                        shown TEXT NOT NULL, mood TEXT NOT NULL, readings TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS room_readings (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, model TEXT NOT NULL,
                                          shown TEXT NOT NULL, probabilities TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS plays (id INTEGER PRIMARY KEY AUTOINCREMENT, started REAL NOT NULL, mood TEXT NOT NULL,
                                  uri TEXT NOT NULL, track TEXT NOT NULL, artist TEXT NOT NULL, cover TEXT NOT NULL,
                                  source TEXT NOT NULL, source_key TEXT NOT NULL, why TEXT NOT NULL,
                                  preview INTEGER NOT NULL, ended REAL, ending TEXT, listened REAL);
CREATE INDEX IF NOT EXISTS plays_started ON plays (started);
CREATE TABLE IF NOT EXISTS taste (mood TEXT NOT NULL, uri TEXT NOT NULL, track TEXT NOT NULL, artist TEXT NOT NULL,
                                  liked REAL, skipped REAL, PRIMARY KEY (mood, uri));
CREATE TABLE IF NOT EXISTS mood_music (mood TEXT PRIMARY KEY, playlist TEXT, skips_forgotten REAL);
"""
PLAY_COLUMNS = (
    "id", "started", "mood", "uri", "track", "artist", "cover", "source", "source_key", "why", "preview", "ended",
    "ending", "listened",
)  # fmt: skip
ADD_PLAY = (
    "INSERT INTO plays (started, mood, uri, track, artist, cover, source, source_key, why, preview) "
    "VALUES (:started, :mood, :uri, :track, :artist, :cover, :source, :source_key, :why, :preview) RETURNING id"
)
SELECT_PLAYS = (
    "SELECT id, started, mood, uri, track, artist, cover, source, source_key, why, preview, ended, ending, listened "
    "FROM plays WHERE id < ? ORDER BY id DESC LIMIT ?"
)
_INSERT_TASTE = "INSERT INTO taste (mood, uri, track, artist, liked, skipped) VALUES (:mood, :uri, :track, :artist, "
SET_TASTE = {  # one column set, the other kept
    "liked": _INSERT_TASTE + ":at, NULL) ON CONFLICT(mood, uri) DO UPDATE SET liked = excluded.liked",
    "skipped": _INSERT_TASTE + "NULL, :at) ON CONFLICT(mood, uri) DO UPDATE SET skipped = excluded.skipped",
}
SET_MOOD_MUSIC = {
    "playlist": "INSERT INTO mood_music (mood, playlist) VALUES (?, ?) "
    "ON CONFLICT(mood) DO UPDATE SET playlist = excluded.playlist",
    "skips_forgotten": "INSERT INTO mood_music (mood, skips_forgotten) VALUES (?, ?) "
    "ON CONFLICT(mood) DO UPDATE SET skips_forgotten = excluded.skips_forgotten",
}
SKIPS_EXPIRE_DAYS = 30  # a skip mark older than this is forgotten (device/taste.py's rule), whatever history_days


__all__ = ["StorageError", "Store", "StoreError"]


class Store:
    def __init__(self, path: Path, busy_timeout: float = 5.0) -> None:
        self.path = Path(path)
        self.notice: str | None = None  # shown on the page after a recovery
        self._lock = threading.RLock()
        self._busy_timeout = busy_timeout
        self.storage = StorageWatch(self.path.parent, self._probe)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                self._db = self._open()
            except sqlite3.DatabaseError as exc:
                if "locked" in str(exc):
                    raise StoreError(
                        f"{self.path} is locked by another process (is a second Moodbox running?): "
                        "stop it, or point [state] dir elsewhere"
                    ) from exc
                if classify(exc) not in (None, DAMAGED):  # full or read-only: the file is fine, keep it
                    raise describe(classify(exc), self.path.parent, str(exc)) from None
                self._db = self._recover(exc)
        except OSError as exc:
            raise describe(classify(exc) or "unwritable", self.path.parent, exc.strerror or str(exc)) from None

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

    def _run(self, sql: str, args: tuple | dict[str, Any] = ()) -> list[tuple]:
        with self._lock:
            try:
                rows = self._db.execute(sql, args).fetchall()
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    raise StoreError(
                        f"{self.path} stayed locked for {self._busy_timeout:.0f} s: another process "
                        "holds it; stop it and try again"
                    ) from exc
                raise self.storage.failed(exc) or exc from None
            except sqlite3.DatabaseError as exc:  # damaged
                raise self.storage.failed(exc) or exc from None
            if not self._db.in_transaction and not sql.lstrip().upper().startswith(("SELECT", "ROLLBACK")):
                self.storage.succeeded()  # a write reached the disk
            return rows

    def _rollback(self) -> None:
        """Undo an open transaction; SQLite has already rolled back by itself after a full disk or I/O error."""
        if self._db.in_transaction:
            self._run("ROLLBACK")

    def _probe(self) -> None:
        """One small real write, to see whether a storage problem has cleared (StorageError if not)."""
        self._run(
            "INSERT OR REPLACE INTO cache (kind, key, value, expires) VALUES ('storage', 'probe', ?, 0)",
            (json.dumps(time.time()),),
        )

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
                self._rollback()
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
        """Mood changes, plays, likes and skips, all of them; returns how many mood changes and plays there were."""
        with self._lock:
            n = self._run("SELECT (SELECT count(*) FROM history) + (SELECT count(*) FROM plays)")[0][0]
            for sql in ("DELETE FROM history", "DELETE FROM plays", "DELETE FROM taste"):
                self._run(sql)
            self._run("DELETE FROM room_readings")  # the learner's everyday readings are history too
            self._run("UPDATE mood_music SET skips_forgotten = NULL")
        self._run("PRAGMA wal_checkpoint(TRUNCATE)")
        self._run("VACUUM")  # deleted rows must not linger in free pages
        return n

    def prune_history(self, keep_days: float, now: float | None = None) -> int:
        """Mood changes and plays older than keep_days, and skip marks older than that or 30 days; likes stay."""
        now = time.time() if now is None else now
        cutoff = now - keep_days * 86400
        n = self._run("SELECT count(*) FROM history WHERE at < ?", (cutoff,))[0][0]
        if n:
            self._run("DELETE FROM history WHERE at < ?", (cutoff,))
        self._run("DELETE FROM plays WHERE started < ?", (cutoff,))
        skips_cutoff = max(cutoff, now - SKIPS_EXPIRE_DAYS * 86400)
        self._run("UPDATE taste SET skipped = NULL WHERE skipped < ?", (skips_cutoff,))
        self._run("DELETE FROM taste WHERE liked IS NULL AND skipped IS NULL")
        self._run("DELETE FROM room_readings WHERE at < ?", (cutoff,))
        return n

    # -- the household learner (device/learning): numbers only, never a picture ---------------------------------
    def add_correction(self, at: float, model: str, shown: str, mood: str, readings: list[dict]) -> int:
        rows = self._run(
            "INSERT INTO corrections (at, model, shown, mood, readings) VALUES (?, ?, ?, ?, ?) RETURNING id",
            (at, model, shown, mood, json.dumps(readings, separators=(",", ":"))),
        )
        return int(rows[0][0])

    def corrections(self, model: str | None) -> list[dict[str, Any]]:
        """Every correction (of one model, or of all), oldest first."""
        sql = "SELECT id, at, model, shown, mood, readings FROM corrections"
        rows = self._run(sql + " WHERE model = ? ORDER BY id", (model,)) if model else self._run(sql + " ORDER BY id")
        return [
            {"id": i, "at": at, "model": m, "shown": shown, "mood": mood, "readings": json.loads(r)}
            for i, at, m, shown, mood, r in rows
        ]

    def delete_last_correction(self, model: str) -> dict[str, Any] | None:
        rows = self._run(
            "DELETE FROM corrections WHERE id = (SELECT max(id) FROM corrections WHERE model = ?) "
            "RETURNING id, at, shown, mood",
            (model,),
        )
        return {"id": rows[0][0], "at": rows[0][1], "shown": rows[0][2], "mood": rows[0][3]} if rows else None

    def delete_corrections(self) -> int:
        n = len(self._run("DELETE FROM corrections RETURNING id"))
        self._run("PRAGMA wal_checkpoint(TRUNCATE)")
        self._run("VACUUM")  # forgotten readings must not linger in free pages
        return n

    def add_room_reading(self, at: float, model: str, shown: str, probabilities: list[float], keep: int) -> None:
        """One everyday reading; only the newest `keep` of the model are kept."""
        with self._lock:
            self._run(
                "INSERT INTO room_readings (at, model, shown, probabilities) VALUES (?, ?, ?, ?)",
                (at, model, shown, json.dumps(probabilities)),
            )
            self._run(
                "DELETE FROM room_readings WHERE model = ? AND id <= "
                "(SELECT id FROM room_readings WHERE model = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (model, model, keep),
            )

    def room_readings(self, model: str, limit: int) -> list[dict[str, Any]]:
        """The newest `limit` everyday readings of a model, oldest first."""
        rows = self._run(
            "SELECT at, shown, probabilities FROM room_readings WHERE model = ? ORDER BY id DESC LIMIT ?",
            (model, limit),
        )
        return [{"at": at, "shown": shown, "probabilities": json.loads(p)} for at, shown, p in reversed(rows)]

    def delete_room_readings(self) -> int:
        return len(self._run("DELETE FROM room_readings RETURNING id"))

    # -- plays: what Moodbox started, why, and how it ended (track names and times only) ---------------------
    def add_play(self, play: dict[str, Any]) -> int:
        return self._run(ADD_PLAY, play)[0][0]

    def end_play(self, play_id: int, ended: float, ending: str, listened: float | None) -> None:
        self._run(
            "UPDATE plays SET ended = ?, ending = ?, listened = ? WHERE id = ? AND ended IS NULL",
            (ended, ending, listened, play_id),
        )

    def plays(self, limit: int = 20, before: int | None = None) -> list[dict[str, Any]]:
        """Newest first; `before` is the id of the last play of the previous page."""
        rows = self._run(SELECT_PLAYS, (before if before is not None else 2**62, limit))
        return [dict(zip(PLAY_COLUMNS, row)) for row in rows]

    def heard(self, n: int) -> list[str]:
        """The last n tracks started on the speaker, any mood, oldest first."""
        rows = self._run("SELECT uri FROM plays WHERE preview = 0 AND uri != '' ORDER BY id DESC LIMIT ?", (n,))
        return [r[0] for r in reversed(rows)]

    def early_skips(self, mood: str, source_key: str, since: float, within: float) -> int:
        """Plays of one mood's music skipped (on the page or elsewhere) within `within` seconds, since `since`."""
        return self._run(
            "SELECT count(*) FROM plays WHERE mood = ? AND source_key = ? AND started >= ? AND listened < ? "
            "AND ending IN ('skipped-page', 'skipped-app')",
            (mood, source_key, since, within),
        )[0][0]

    # -- taste: likes and skips per mood ---------------------------------------------------------------------
    def set_taste(self, mood: str, track: dict[str, Any], column: str, at: float | None) -> None:
        """Mark (or unmark, at=None) a track liked or skipped for a mood."""
        assert column in ("liked", "skipped")
        with self._lock:
            names = {"track": track.get("track", ""), "artist": track.get("artist", "")}
            self._run(SET_TASTE[column], {"mood": mood, "uri": track["uri"], **names, "at": at})
            self._run("DELETE FROM taste WHERE liked IS NULL AND skipped IS NULL")

    def taste(self, mood: str | None = None) -> list[dict[str, Any]]:
        cols = ("mood", "uri", "track", "artist", "liked", "skipped")
        rows = self._run(
            "SELECT mood, uri, track, artist, liked, skipped FROM taste WHERE mood = ? OR ? IS NULL", (mood, mood)
        )
        return [dict(zip(cols, r)) for r in rows]

    def forget_skips(self, mood: str, at: float) -> int:
        with self._lock:
            n = self._run("SELECT count(*) FROM taste WHERE mood = ? AND skipped IS NOT NULL", (mood,))[0][0]
            self._run("UPDATE taste SET skipped = NULL WHERE mood = ?", (mood,))
            self._run("DELETE FROM taste WHERE liked IS NULL AND skipped IS NULL")
            self._mood_music(mood, "skips_forgotten", at)
        return n

    def mood_music(self, mood: str) -> dict[str, Any]:
        """A mood's Spotify playlist of likes (its id) and when its skips were last forgotten."""
        rows = self._run("SELECT playlist, skips_forgotten FROM mood_music WHERE mood = ?", (mood,))
        return {"playlist": rows[0][0], "skips_forgotten": rows[0][1]} if rows else {}

    def set_mood_playlist(self, mood: str, playlist_id: str | None) -> None:
        self._mood_music(mood, "playlist", playlist_id)

    def _mood_music(self, mood: str, column: str, value: Any) -> None:
        self._run(SET_MOOD_MUSIC[column], (mood, value))

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
                self._rollback()
                raise

    def budget_used(self, name: str, day: str | None = None) -> int:
        rows = self._run("SELECT used FROM budget WHERE name = ? AND day = ?", (name, day or time.strftime("%Y-%m-%d")))
        return rows[0][0] if rows else 0

    # -- sign-in sessions and limits (the rules are in web_ui/auth.py; ids here are hashes of the cookies') ----
    def session_start(self, sid: str, now: float) -> None:
        self._run("INSERT OR REPLACE INTO sessions (id, created, seen) VALUES (?, ?, ?)", (sid, now, now))

    def session_times(self, sid: str) -> tuple[float, float] | None:
        """(created, last seen) of a live session, or None."""
        rows = self._run("SELECT created, seen FROM sessions WHERE id = ?", (sid,))
        return (rows[0][0], rows[0][1]) if rows else None

    def session_seen(self, sid: str, now: float) -> None:
        self._run("UPDATE sessions SET seen = ? WHERE id = ?", (now, sid))

    def sessions_end(self, sid: str | None = None, idle_before: float | None = None) -> int:
        """End one session (sid), those last seen before idle_before, or else all of them; returns how many."""
        if sid is not None:
            sql, args = "DELETE FROM sessions WHERE id = ? RETURNING id", (sid,)
        elif idle_before is not None:
            sql, args = "DELETE FROM sessions WHERE seen < ? RETURNING id", (idle_before,)
        else:
            sql, args = "DELETE FROM sessions RETURNING id", ()
        return len(self._run(sql, args))

    def signin_limit(self, key: str) -> tuple[int, float, float] | None:
        """(failures, last failure, locked until) for one address, browser or session, or None."""
        rows = self._run("SELECT failures, last, locked_until FROM signin_limits WHERE key = ?", (key,))
        return (rows[0][0], rows[0][1], rows[0][2]) if rows else None

    def set_signin_limit(self, key: str, failures: int, last: float, locked_until: float, forget_before: float) -> None:
        with self._lock:
            self._run("DELETE FROM signin_limits WHERE last < ?", (forget_before,))
            self._run(
                "INSERT OR REPLACE INTO signin_limits (key, failures, last, locked_until) VALUES (?, ?, ?, ?)",
                (key, failures, last, locked_until),
            )

    def clear_signin_limit(self, key: str) -> None:
        self._run("DELETE FROM signin_limits WHERE key = ?", (key,))

    def signin_failed(self, key: str, at: float, forget_before: float) -> int:
        """Log one failed sign-in; returns how many are logged since forget_before (older ones are dropped)."""
        with self._lock:
            self._run("DELETE FROM signin_failures WHERE at < ?", (forget_before,))
            self._run("INSERT INTO signin_failures (at, key) VALUES (?, ?)", (at, key))
            return self._run("SELECT count(*) FROM signin_failures")[0][0]

    def signin_failures_since(self, since: float) -> int:
        return self._run("SELECT count(*) FROM signin_failures WHERE at >= ?", (since,))[0][0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
