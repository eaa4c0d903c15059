"""Sign-in limits that slow a guesser down but cannot be turned against the owner.

Tries are counted per *key*: an address (IPv4, or an IPv6 /64, since one device gets a whole /64), a known
browser (its signed cookie, web_ui/auth.py), or a signed-in session (the current-password check). Each key has
FREE_TRIES failures; from then on every failure makes it wait twice as long as the last one (FIRST_WAIT, then
doubling, at most LONGEST_WAIT), and a key with no failure for FORGET_AFTER starts afresh. The counts live in
the settings database, so a restart does not reset them.

There is no global lockout. When many failures come from anywhere (ATTACK_FAILURES in ATTACK_WINDOW), an
address that has not failed before still gets its first try at once, right password or not, and only its
second wrong one waits: the attack is slowed, the owner is not. Known browsers and sessions are never slowed
by that.

A try is counted before the password is checked and cleared when it was right, so parallel requests from
one key cannot get more tries than the schedule allows.
"""

from __future__ import annotations

import ipaddress
import os
import threading
import time

from device.store import Store

FREE_TRIES = 5
FREE_TRIES_UNDER_ATTACK = 1
FIRST_WAIT = 2.0
LONGEST_WAIT = 3600.0
FORGET_AFTER = 86400.0
ATTACK_FAILURES = 30
ATTACK_WINDOW = 300.0
# For testing only: the first wait in seconds instead of FIRST_WAIT, so that a test on a busy machine knows that an
# address is still waiting however slowly its requests go (tests/test_attack_signin.py).
TEST_FIRST_WAIT_ENV = "MOODBOX_TEST_FIRST_WAIT_S"


def first_wait() -> float:
    """FIRST_WAIT, or $MOODBOX_TEST_FIRST_WAIT_S when set."""
    raw = os.environ.get(TEST_FIRST_WAIT_ENV, "").strip()
    if not raw:
        return FIRST_WAIT
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= LONGEST_WAIT:
        raise ValueError(f"{TEST_FIRST_WAIT_ENV}={raw!r} is not a wait between 0 and {LONGEST_WAIT:g} s: unset it")
    return seconds


def address_key(remote_addr: str | None) -> str:
    """The key an unknown browser's tries count under: its IPv4 address, or its IPv6 /64."""
    try:
        ip = ipaddress.ip_address((remote_addr or "").split("%")[0])
    except ValueError:
        return "address:unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return f"address:{ip.ipv4_mapped}"
        return f"address:{ipaddress.ip_network(f'{ip}/64', strict=False)}"
    return f"address:{ip}"


def wait_after(failures: int, free: int) -> float:
    """Seconds a key waits after its `failures`-th failure in a row."""
    if failures < free:
        return 0.0
    return min(LONGEST_WAIT, first_wait() * 2.0 ** min(failures - free, 32))


class SigninLimits:
    def __init__(self, store: Store) -> None:
        first_wait()  # a bad test setting stops the start, not a sign-in
        self.store = store
        self._lock = threading.Lock()

    def under_attack(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return self.store.signin_failures_since(now - ATTACK_WINDOW) >= ATTACK_FAILURES

    def wait(self, key: str) -> float:
        """Seconds until `key` may try again (0: now)."""
        now = time.time()
        row = self.store.signin_limit(key)
        if row is None or now - row[1] > FORGET_AFTER:
            return 0.0
        return max(0.0, row[2] - now)

    def try_now(self, key: str, anonymous: bool) -> float:
        """0 when `key` may try now: the try counts as failed (and sets the next wait) until succeeded() says
        otherwise. Otherwise the seconds it must wait, and nothing is counted. `anonymous`: an address, which
        gets fewer free tries while failures pour in from everywhere."""
        with self._lock:
            now = time.time()
            row = self.store.signin_limit(key)
            failures, locked_until = (0, 0.0) if row is None or now - row[1] > FORGET_AFTER else (row[0], row[2])
            if locked_until > now:
                return locked_until - now
            free = FREE_TRIES_UNDER_ATTACK if anonymous and self.under_attack(now) else FREE_TRIES
            failures += 1
            self.store.set_signin_limit(key, failures, now, now + wait_after(failures, free), now - FORGET_AFTER)
            return 0.0

    def failed(self, key: str, anonymous: bool) -> float:
        """Record a wrong password or code; returns the wait now in force for `key`, counted from now rather
        than from when the check began."""
        now = time.time()
        with self._lock:
            row = self.store.signin_limit(key)
            if row is not None and row[2] > row[1]:
                self.store.set_signin_limit(key, row[0], now, now + row[2] - row[1], now - FORGET_AFTER)
        if anonymous:
            self.store.signin_failed(key, now, now - ATTACK_WINDOW)
        return self.wait(key)

    def succeeded(self, key: str) -> None:
        self.store.clear_signin_limit(key)
