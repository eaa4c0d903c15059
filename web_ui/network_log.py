"""Log lines that anyone on the network can cause, within a byte budget per source address and in all.

Malformed requests, refused hosts and origins, failed sign-ins and internal errors are worth a line in the log, but
a client that sends them as fast as it can must not write the SD card full or push real messages out of journald.
Each address (an IPv4 address, or an IPv6 /64, like the sign-in limits) may write PER_ADDRESS bytes at once and
then PER_ADDRESS_RATE a second; all addresses together TOTAL bytes at once and then TOTAL_RATE a second. Each line
starts with the address it came from. A line over budget is counted, not written; the next line that is written
says how many were left out, and so does `report()`, which the page's server calls once a minute.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable

from web_ui.signin_limits import address_key

PER_ADDRESS = 4096
PER_ADDRESS_RATE = 200.0
TOTAL = 16384
TOTAL_RATE = 2048.0
ADDRESSES = 4096  # addresses remembered; the one heard from least recently is forgotten first
LINE_OVERHEAD = 80  # what the journal or the console adds to each line: time, level, logger name
LONGEST_TRACEBACK = 3000


def request_id() -> str:
    """A short random id that a 500's answer and its log line share."""
    return secrets.token_hex(4)


class Bucket:
    def __init__(self, size: float, rate: float, now: float) -> None:
        self.size, self.rate, self.level, self.at = size, rate, size, now
        self.left_out = 0

    def refill(self, now: float) -> None:
        self.level = min(self.size, self.level + (now - self.at) * self.rate)
        self.at = now


class NetworkLog:
    def __init__(
        self,
        logger: logging.Logger,
        per_address: float = PER_ADDRESS,
        per_address_rate: float = PER_ADDRESS_RATE,
        total: float = TOTAL,
        total_rate: float = TOTAL_RATE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger, self.clock = logger, clock
        self.per_address, self.per_address_rate = per_address, per_address_rate
        self.total = Bucket(total, total_rate, clock())
        self._addresses: OrderedDict[str, Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def info(self, address: str | None, message: str, *args: object) -> bool:
        return self._log(logging.INFO, address, message, args)

    def warning(self, address: str | None, message: str, *args: object) -> bool:
        return self._log(logging.WARNING, address, message, args)

    def exception(self, address: str | None, message: str, *args: object) -> bool:
        """An error with the traceback being handled (cut to LONGEST_TRACEBACK characters)."""
        trace = traceback.format_exc()
        if len(trace) > LONGEST_TRACEBACK:
            trace = "...\n" + trace[-LONGEST_TRACEBACK:]
        return self._log(logging.ERROR, address, message + "\n%s", (*args, trace.rstrip()))

    def _log(self, level: int, address: str | None, message: str, args: tuple) -> bool:
        """True when the line was written, False when it was over budget (and counted)."""
        if not self.logger.isEnabledFor(level):
            return False
        text = f"{address or 'unknown address'}: " + (message % args if args else message)
        cost = len(text.encode("utf-8", "replace")) + LINE_OVERHEAD
        key = address_key(address)
        with self._lock:
            now = self.clock()
            mine = self._bucket(key, now)
            self.total.refill(now)
            mine.refill(now)
            if cost > mine.level or cost > self.total.level:
                mine.left_out += 1
                self.total.left_out += 1
                return False
            mine.level -= cost
            self.total.level -= cost
            skipped = (mine.left_out, self.total.left_out)
            mine.left_out = self.total.left_out = 0
        if any(skipped):
            text += f" ({skipped[0]} more from this address and {skipped[1]} in all were not logged: too many)"
        self.logger.log(level, "%s", text)
        return True

    def _bucket(self, key: str, now: float) -> Bucket:
        bucket = self._addresses.get(key)
        if bucket is None:
            if len(self._addresses) >= ADDRESSES:
                self._addresses.popitem(last=False)
            bucket = self._addresses[key] = Bucket(self.per_address, self.per_address_rate, now)
        else:
            self._addresses.move_to_end(key)
        return bucket

    def report(self) -> int:
        """Write how many lines were left out since the last line written (nothing when none were); returns that
        count. An address's own count still goes with its next line."""
        with self._lock:
            left_out, self.total.left_out = self.total.left_out, 0
        if left_out:
            self.logger.warning("%d log lines from the network were not written: too many, too fast", left_out)
        return left_out


network_log = NetworkLog(logging.getLogger("web_ui"))  # one budget for the whole page: the log is one per process
