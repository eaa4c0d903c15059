"""systemd integration: sd_notify (READY, WATCHDOG, STATUS, STOPPING) and journal logging.

systemd-python is used when it is installed (the Pi gets it from apt as python3-systemd); otherwise the
notify datagram is sent directly, and logs go to stderr. On a laptop, with no NOTIFY_SOCKET, both are no-ops.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time


def notify(message: str) -> bool:
    """Send one sd_notify message; False when not running under systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    try:
        from systemd import daemon  # type: ignore[import-not-found]

        return bool(daemon.notify(message))
    except ImportError:
        pass
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
        return True
    except OSError:
        return False


def watchdog_seconds() -> float | None:
    """The watchdog period systemd asked for (WatchdogSec=), or None."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 1e6
    except ValueError:
        return None


class Watchdog:
    """`beat()` is called from the frame loop; it sends WATCHDOG=1 at most three times per period."""

    def __init__(self, period: float | None = None) -> None:
        self.period = period if period is not None else watchdog_seconds()
        self._last = 0.0
        self._lock = threading.Lock()
        self.beats = 0

    def beat(self) -> None:
        if not self.period:
            return
        now = time.monotonic()
        with self._lock:
            if now - self._last < self.period / 3:
                return
            self._last = now
        if notify("WATCHDOG=1"):
            self.beats += 1


def setup_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    root.setLevel(level)
    for h in list(root.handlers):
        root.removeHandler(h)
    handler: logging.Handler | None = None
    if os.environ.get("JOURNAL_STREAM") or os.environ.get("INVOCATION_ID"):
        try:
            from systemd.journal import JournalHandler  # type: ignore[import-not-found]

            handler = JournalHandler(SYSLOG_IDENTIFIER="moodbox")
            handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        except ImportError:
            handler = None
    if handler is None:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root.addHandler(handler)
