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
    """`beat()` is called from the frame loop (and from the camera's retry waits).

    Before READY=1, a beat extends systemd's start timeout (EXTEND_TIMEOUT_USEC): the daemon is alive and waiting
    for its camera. After READY=1 it sends WATCHDOG=1, at most three times per watchdog period. Either way, a hung
    frame loop stops the messages and systemd steps in.
    """

    EXTEND_SECONDS = 30.0

    def __init__(self, period: float | None = None) -> None:
        self.period = period if period is not None else watchdog_seconds()
        self.ready = False
        self._last = 0.0
        self._lock = threading.Lock()
        self.beats = 0

    def beat(self) -> None:
        now = time.monotonic()
        interval = self.EXTEND_SECONDS / 3 if not self.ready else (self.period or 0) / 3
        if self.ready and not self.period:
            return
        with self._lock:
            if now - self._last < interval:
                return
            self._last = now
        message = "WATCHDOG=1" if self.ready else f"EXTEND_TIMEOUT_USEC={int(self.EXTEND_SECONDS * 1e6)}"
        if notify(message):
            self.beats += 1

    def mark_ready(self) -> None:
        with self._lock:
            self.ready, self._last = True, 0.0
        notify("READY=1")


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
