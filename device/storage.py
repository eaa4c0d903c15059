"""When the state folder cannot be written: a full disk, a read-only or damaged folder, a failing card.

These are states, not crashes. The settings database (device/store.py) reports each failed write here, and
`StorageWatch.report()` says what is wrong, why, and what to do, for /healthz, the System page and the log.
Writes are refused with that message (HTTP 507 for a full disk, 503 otherwise); reads, the camera and the music
carry on; the state clears by itself once a write works again. At start, a folder Moodbox cannot write at all
is refused with the cause (exit 78), and a full one starts degraded.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FULL, READ_ONLY, DAMAGED, UNWRITABLE = "full", "read-only", "damaged", "unwritable"
LOW_SPACE_BYTES = 1024 * 1024  # less than this free on the state folder's disk is reported as full
PROBE_EVERY_SECONDS = 2.0  # while a fault lasts, a one-row write checks at most this often whether it has cleared

_SQLITE_PROBLEMS = {13: FULL, 8: READ_ONLY, 10: UNWRITABLE, 14: UNWRITABLE, 11: DAMAGED, 26: DAMAGED}
_ERRNO_PROBLEMS = {
    errno.ENOSPC: FULL,
    errno.EDQUOT: FULL,
    errno.EROFS: READ_ONLY,
    errno.EACCES: READ_ONLY,
    errno.EPERM: READ_ONLY,
    errno.EIO: UNWRITABLE,
    errno.ENOTDIR: UNWRITABLE,
    errno.ENOENT: UNWRITABLE,
}


class StoreError(RuntimeError):
    """The database cannot be used; the message says why and what to do."""


class StorageError(StoreError):
    """Nothing was saved because of the state folder; `problem` is full, read-only, damaged or unwritable."""

    def __init__(self, problem: str, cause: str, fix: str) -> None:
        super().__init__(f"{cause}: {fix}")
        self.problem, self.cause, self.fix = problem, cause, fix

    @property
    def http_status(self) -> int:
        return 507 if self.problem == FULL else 503  # 507 Insufficient Storage; 503: try again once fixed


def classify(exc: BaseException) -> str | None:
    """Which storage problem an SQLite or OS error is, or None when it is something else (a bug, a lock)."""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None:
            return _SQLITE_PROBLEMS.get(code & 0xFF)
        text = str(exc).lower()
        for words, problem in (("full", FULL), ("readonly", READ_ONLY), ("i/o", UNWRITABLE), ("malformed", DAMAGED)):
            if words in text:
                return problem
        return None
    if isinstance(exc, OSError):
        return _ERRNO_PROBLEMS.get(exc.errno or 0)
    return None


def free_bytes(folder: Path) -> int | None:
    try:
        st = os.statvfs(folder)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def describe(problem: str, folder: Path, detail: str = "") -> StorageError:
    """The error for a problem, with its cause and the fix a household (or its admin) can apply."""
    why = f" ({detail})" if detail else ""
    if problem == FULL:
        free = free_bytes(folder)
        left = f", {free // 1024} KiB free" if free is not None else ""
        return StorageError(
            FULL,
            f"the disk holding the state folder {folder} is full{left}{why}",
            "free some space (e.g. sudo journalctl --vacuum-size=50M, or delete big files); "
            "Moodbox saves again by itself once there is room",
        )
    if problem == READ_ONLY:
        return StorageError(
            READ_ONLY,
            f"the state folder {folder} is read-only or not writable for Moodbox's user{why}",
            "make it writable for the user Moodbox runs as (check the mount and the owner), "
            "or set [state] dir to a writable folder",
        )
    if problem == DAMAGED:
        return StorageError(
            DAMAGED,
            f"the settings database in {folder} is damaged{why}",
            "restart Moodbox (sudo systemctl restart moodbox): it keeps the damaged file for recovery and starts "
            "a fresh one",
        )
    return StorageError(
        UNWRITABLE,
        f"the state folder {folder} cannot be written{why}",
        "check the SD card or disk (dmesg shows I/O errors) and that the folder still exists; "
        "Moodbox saves again by itself once writes work",
    )


def prepare_folder(folder: Path) -> None:
    """At start: create the state folder and write a file in it. Raises StorageError when Moodbox cannot write
    there at all; a full disk only logs, so Moodbox starts degraded rather than not at all."""
    test = folder / f".write-test-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if folder.stat().st_mode & 0o777 != 0o700:
            with contextlib.suppress(PermissionError):  # not its owner: the write below says whether it may write
                os.chmod(folder, 0o700)
        fd = os.open(test, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"moodbox")
            os.fsync(fd)
        finally:
            os.close(fd)
            test.unlink(missing_ok=True)
    except OSError as exc:
        problem = classify(exc) or UNWRITABLE
        error = describe(problem, folder, exc.strerror or str(exc))
        if problem != FULL:
            raise error from None
        log.error("storage problem at start: %s", error)


class StorageWatch:
    """The state folder's condition: set by failed and successful writes, and checked on each report."""

    def __init__(self, folder: Path, probe: Callable[[], None]) -> None:
        self.folder = folder
        self._probe = probe  # one real write to the database; raises StorageError when it fails
        self._lock = threading.Lock()
        self._error: StorageError | None = None
        self._since: float | None = None
        self._probed_at = 0.0
        self.listeners: list[Callable[[StorageError | None], None]] = []  # told when a problem starts or ends

    @property
    def error(self) -> StorageError | None:
        return self._error

    def failed(self, exc: BaseException) -> StorageError | None:
        """A write (or read) failed: the StorageError to raise instead, or None if it is not a storage fault."""
        problem = classify(exc)
        if problem is None:
            return None
        error = describe(problem, self.folder, str(exc))
        with self._lock:
            new = self._error is None or self._error.problem != problem
            self._error = error
            if new:
                self._since = time.time()
        if new:
            log.error("storage problem: %s; %s", error.cause, error.fix)
            self._tell(error)
        return error

    def succeeded(self) -> None:
        """A write reached the disk: a full or read-only folder is usable again (a damaged database is not)."""
        if self._error is None or self._error.problem == DAMAGED:
            return
        with self._lock:
            cleared, self._error, self._since = self._error, None, None
        if cleared is not None:
            log.info("storage: %s is writable again (it was %s)", self.folder, cleared.problem)
            self._tell(None)

    def _tell(self, error: StorageError | None) -> None:
        for listener in list(self.listeners):
            try:
                listener(error)
            except Exception:
                log.exception("a storage listener failed")

    def report(self) -> dict[str, Any]:
        """{"state": "ok" | full | read-only | damaged | unwritable, "cause", "fix", "since", "free_bytes"}."""
        if self._error is not None and self._error.problem != DAMAGED:
            now = time.monotonic()
            if now - self._probed_at >= PROBE_EVERY_SECONDS:
                self._probed_at = now
                with contextlib.suppress(StorageError):
                    self._probe()  # clears the problem through succeeded() when the write works
        free = free_bytes(self.folder)
        error, since = self._error, self._since
        if error is None:
            try:
                read_only = bool(os.statvfs(self.folder).f_flag & os.ST_RDONLY)
            except OSError as exc:
                error = describe(UNWRITABLE, self.folder, exc.strerror or str(exc))
            else:
                if read_only:
                    error = describe(READ_ONLY, self.folder, "mounted read-only")
                elif free is not None and free < LOW_SPACE_BYTES:
                    error = describe(FULL, self.folder, "less than 1 MiB left")
        if error is None:
            return {"state": "ok", "free_bytes": free}
        return {"state": error.problem, "cause": error.cause, "fix": error.fix, "since": since, "free_bytes": free}
