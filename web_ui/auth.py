"""Who may use the page: one owner password (scrypt), set on first run with a one-time pairing code.

- Every page and API needs a signed-in session, except /healthz.
- A session is a record in the settings database; the browser holds its id in Flask's signed cookie (HttpOnly,
  SameSite=Strict), with a CSRF token that every state-changing request must send back (X-CSRF-Token header or
  csrf_token form field). Logging out, "sign out everywhere", a password change or reset, and 7 days unused
  end it; so does its 30th day.
- A browser that has signed in once keeps a signed "known browser" cookie for a year: its sign-ins are limited
  on their own, never by its address (web_ui/signin_limits.py).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import sqlite3
import threading
import time
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.security import check_password_hash, generate_password_hash

from device.store import Store, StoreError

log = logging.getLogger(__name__)
OWNER_KEY = "_owner"  # {"hash": ..., "version": n}
PAIRING_FILE = "pairing-code"
MIN_PASSWORD = 8
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
SESSION_IDLE_SECONDS = 7 * 86400  # a session unused this long is over
SESSION_LONGEST_SECONDS = 30 * 86400  # and none lasts longer (the cookie's own lifetime)
SEEN_EVERY_SECONDS = 60  # how often a session's "last seen" is written (not on every request)
BROWSER_COOKIE = "moodbox_browser"
BROWSER_SECONDS = 365 * 86400


def secret_key(state_dir: Path) -> bytes:
    """The session-signing key: random, made once, mode 0600 in the state directory."""
    path = state_dir / "web-secret"
    try:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
    except OSError:
        pass
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


class Owner:
    def __init__(self, store: Store, state_dir: Path) -> None:
        self.store, self.state_dir = store, state_dir
        self._lock = threading.Lock()

    @property
    def has_password(self) -> bool:
        return bool((self.store.get(OWNER_KEY) or {}).get("hash"))

    @property
    def version(self) -> int:
        return int((self.store.get(OWNER_KEY) or {}).get("version", 0))

    def pairing_code(self) -> str | None:
        """The one-time code for first run (made if missing); None once a password is set."""
        if self.has_password:
            (self.state_dir / PAIRING_FILE).unlink(missing_ok=True)
            return None
        path = self.state_dir / PAIRING_FILE
        with self._lock:
            try:
                code = path.read_text().strip()
                if len(code) == 9:
                    return code
            except OSError:
                pass
            raw = "".join(secrets.choice(_ALPHABET) for _ in range(8))
            code = f"{raw[:4]}-{raw[4:]}"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(code + "\n")
            return code

    def set_first_password(self, code: str, password: str) -> None:
        expected = self.pairing_code()
        if expected is None:
            raise PermissionError("a password is already set: sign in instead")
        given = code.strip().upper().replace(" ", "")
        if len(given) == 8:
            given = f"{given[:4]}-{given[4:]}"
        if not hmac.compare_digest(given, expected):
            raise PermissionError("that pairing code is not right: it is printed by ./setup.sh and in the log")
        self._save(password)
        (self.state_dir / PAIRING_FILE).unlink(missing_ok=True)
        log.info("owner password set; the pairing code is used up")

    def reset(self) -> str:
        """Forget the password (for someone with a shell on the box who forgot it); returns a new pairing code."""
        # Keep counting versions, so that sessions signed in before the reset stay signed out.
        self.store.set(OWNER_KEY, {"hash": None, "version": self.version + 1})
        self.store.sessions_end()
        (self.state_dir / PAIRING_FILE).unlink(missing_ok=True)
        code = self.pairing_code()
        assert code is not None
        log.warning("the page's password was reset from the command line; new pairing code issued")
        return code

    def new_version(self) -> None:
        """Count one more version without changing the password: every session's live stream ends."""
        self.store.set(OWNER_KEY, {**(self.store.get(OWNER_KEY) or {}), "version": self.version + 1})

    def change_password(self, old: str, new: str) -> None:
        if not self.check(old):
            raise PermissionError("the current password is not right")
        self._save(new)

    def _save(self, password: str) -> None:
        if not isinstance(password, str) or len(password) < MIN_PASSWORD or len(password) > 256:
            raise ValueError(f"choose a password of {MIN_PASSWORD} to 256 characters")
        self.store.set(
            OWNER_KEY, {"hash": generate_password_hash(password, method="scrypt"), "version": self.version + 1}
        )

    def check(self, password: str) -> bool:
        stored = (self.store.get(OWNER_KEY) or {}).get("hash")
        return bool(stored) and isinstance(password, str) and check_password_hash(stored, password)


def _hashed(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    """Server-side sessions: the database keeps a hash of each id, so a copy of it signs nobody in."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def start(self) -> str:
        now = time.time()
        self.store.sessions_end(idle_before=now - SESSION_IDLE_SECONDS)  # tidy up the ones nobody ended
        token = secrets.token_urlsafe(32)
        self.store.session_start(_hashed(token), now)
        return token

    def alive(self, token: object) -> bool:
        if not isinstance(token, str) or not token:
            return False
        times = self.store.session_times(_hashed(token))
        if times is None:
            return False
        created, seen = times
        now = time.time()
        if now - seen > SESSION_IDLE_SECONDS or now - created > SESSION_LONGEST_SECONDS:
            self._best_effort(self.store.sessions_end, sid=_hashed(token))
            return False
        if now - seen > SEEN_EVERY_SECONDS:
            self._best_effort(self.store.session_seen, _hashed(token), now)
        return True

    def end(self, token: object) -> None:
        if isinstance(token, str) and token:
            self.store.sessions_end(sid=_hashed(token))

    def end_all(self) -> int:
        return self.store.sessions_end()

    def limit_key(self, token: str) -> str:
        """The name the current-password limit counts this session's tries under."""
        return "session:" + _hashed(token)[:32]

    @staticmethod
    def _best_effort(write, *args, **kwargs) -> None:
        """Bookkeeping that may fail on a full or read-only disk without signing anyone out."""
        try:
            write(*args, **kwargs)
        except (sqlite3.Error, StoreError, OSError) as exc:
            log.debug("session bookkeeping not saved: %s", exc)


class KnownBrowsers:
    """Signed, year-long ids for the browsers that have signed in; their tries are not limited by address."""

    def __init__(self, secret: bytes) -> None:
        self._signer = URLSafeTimedSerializer(secret, salt="moodbox-known-browser")

    def token(self, browser: str | None = None) -> str:
        return self._signer.dumps(browser or secrets.token_urlsafe(16))

    def browser(self, token: str | None) -> str | None:
        """The browser's id when its cookie is genuine and less than a year old, else None."""
        if not token:
            return None
        try:
            value = self._signer.loads(token, max_age=BROWSER_SECONDS)
        except BadSignature:
            return None
        return value if isinstance(value, str) and value else None


def new_csrf() -> str:
    return secrets.token_urlsafe(24)


def csrf_ok(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))
