"""Who may use the page: one owner password (scrypt), set on first run with a one-time pairing code.

- Every page and API needs a signed-in session, except /healthz.
- Sessions are Flask's signed cookies (HttpOnly, SameSite=Strict) carrying a CSRF token; every state-changing
  request must send that token back (X-CSRF-Token header or csrf_token form field).
- Failed logins are rate-limited per client and in total.
- Changing the password signs every other session out.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import threading
import time
from collections import defaultdict, deque
from pathlib import Path

from werkzeug.security import check_password_hash, generate_password_hash

from device.store import Store

log = logging.getLogger(__name__)
OWNER_KEY = "_owner"  # {"hash": ..., "version": n}
PAIRING_FILE = "pairing-code"
MIN_PASSWORD = 8
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


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
        (self.state_dir / PAIRING_FILE).unlink(missing_ok=True)
        code = self.pairing_code()
        assert code is not None
        log.warning("the page's password was reset from the command line; new pairing code issued")
        return code

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


class LoginLimiter:
    """At most `per_client` failures per client and `total` overall in `window` seconds."""

    def __init__(self, per_client: int = 5, total: int = 30, window: float = 300.0) -> None:
        self.per_client, self.total, self.window = per_client, total, window
        self._by_client: dict[str, deque[float]] = defaultdict(deque)
        self._all: deque[float] = deque()
        self._lock = threading.Lock()

    def _trim(self, q: deque[float], now: float) -> None:
        while q and q[0] <= now - self.window:
            q.popleft()

    def retry_after(self, client: str) -> float:
        """Seconds this client must wait before trying again (0 = may try now)."""
        now = time.monotonic()
        with self._lock:
            q = self._by_client[client]
            self._trim(q, now)
            self._trim(self._all, now)
            waits = []
            if len(q) >= self.per_client:
                waits.append(q[0] + self.window - now)
            if len(self._all) >= self.total:
                waits.append(self._all[0] + self.window - now)
            return max(waits, default=0.0)

    def failed(self, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._by_client[client].append(now)
            self._all.append(now)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._by_client.pop(client, None)


def new_csrf() -> str:
    return secrets.token_urlsafe(24)


def csrf_ok(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))
