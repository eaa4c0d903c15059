"""Events between the pipeline stages. Each subscriber gets its own queue and thread, so a slow one (a player
waiting on Spotify) never holds up the frame loop or the other subscribers."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)
_STOP = object()


class _Subscriber:
    def __init__(
        self,
        name: str,
        callback: Callable[[Any], None],
        types: tuple[type, ...],
        size: int,
        only: Callable[[Any], bool] | None = None,
    ) -> None:
        self.name, self.callback, self.types, self.only = name, callback, types, only
        self.queue: queue.Queue = queue.Queue(size)
        self.dropped = 0
        self.thread = threading.Thread(target=self._run, name=f"bus-{name}", daemon=True)

    def offer(self, event: Any) -> None:
        if self.types and not isinstance(event, self.types):
            return
        if self.only is not None and not self.only(event):
            return  # filtered on the publisher's thread: no queueing, no wake-up
        try:
            self.queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1
            if self.dropped in (1, 100, 10000):
                log.warning("%s is falling behind: %d events dropped", self.name, self.dropped)

    def _run(self) -> None:
        while True:
            event = self.queue.get()
            if event is _STOP:
                return
            try:
                self.callback(event)
            except Exception:
                log.exception("%s failed on %s", self.name, type(event).__name__)


class Bus:
    def __init__(self) -> None:
        self._subscribers: list[_Subscriber] = []

    def subscribe(
        self,
        name: str,
        callback: Callable[[Any], None],
        *types: type,
        size: int = 256,
        only: Callable[[Any], bool] | None = None,
    ) -> None:
        """Call `callback(event)` on a thread of its own for each published event of the given types (all if none)
        for which `only(event)`, if given, is true; `only` runs on the publisher's thread, so it must be cheap."""
        sub = _Subscriber(name, callback, types, size, only)
        self._subscribers.append(sub)
        sub.thread.start()

    def publish(self, event: Any) -> None:
        """Never blocks: a subscriber whose queue is full loses the event (and the log says so)."""
        for sub in self._subscribers:
            sub.offer(event)

    def close(self, timeout: float = 2.0) -> None:
        for sub in self._subscribers:
            sub.queue.put(_STOP)
        for sub in self._subscribers:
            sub.thread.join(timeout)
        self._subscribers.clear()
