"""The page's live stream (/api/events): the room's state as server-sent events, bounded in number and time.

One thread watches the room view and encodes each change once; every open stream sends the latest one. A slow
phone skips states instead of queueing them. A stream ends after `lifetime` seconds (the browser's EventSource
reconnects by itself, 2 s later) or when its sign-in ends. Streams are capped per sign-in and in total; over a cap
the page falls back to polling /api/state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

MAX_STREAMS = 64  # in all
MAX_STREAMS_PER_SIGNIN = 4  # one phone with a few tabs
LIFETIME_SECONDS = 300.0
KEEPALIVE_SECONDS = 15.0
SIGNIN_CHECK_SECONDS = 5.0
RETRY_AFTER_SECONDS = 30
HELLO = b"retry: 2000\n\n"
KEEPALIVE = b": keepalive\n\n"


class LiveFeed:
    """The open streams and the one thread that feeds them."""

    def __init__(
        self,
        view: Any,
        max_streams: int = MAX_STREAMS,
        per_signin: int = MAX_STREAMS_PER_SIGNIN,
        lifetime: float = LIFETIME_SECONDS,
    ) -> None:
        self.view = view
        self.max_streams, self.per_signin, self.lifetime = max_streams, per_signin, lifetime
        self._lock = threading.Lock()
        self._streams: set[LiveStream] = set()
        self._latest: tuple[int, bytes] = (-1, b"")
        self._thread: threading.Thread | None = None

    def open(self, signin: str, still_signed_in: Callable[[], bool]) -> LiveStream | None:
        """A new stream for this sign-in, or None when a cap is reached."""
        with self._lock:
            if len(self._streams) >= self.max_streams:
                return None
            if sum(s.signin == signin for s in self._streams) >= self.per_signin:
                return None
            stream = LiveStream(self, signin, still_signed_in)
            self._streams.add(stream)
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="live", daemon=True)
                self._thread.start()
        return stream

    def refusal(self, signin: str) -> str:
        with self._lock:
            mine = sum(s.signin == signin for s in self._streams)
        if mine >= self.per_signin:
            return f"this sign-in already has {mine} live streams open (at most {self.per_signin}): close other tabs"
        return f"{self.max_streams} live streams are open, the most the box serves"

    @property
    def open_count(self) -> int:
        return len(self._streams)

    def latest(self) -> tuple[int, bytes]:
        version, payload = self._latest
        if version != self.view.version:
            version, payload = self._encode()
        return version, payload

    def _encode(self) -> tuple[int, bytes]:
        snap = self.view.snapshot()
        payload = f"event: state\ndata: {json.dumps(snap, separators=(',', ':'))}\n\n".encode()
        self._latest = (snap["version"], payload)
        return self._latest

    def _close(self, stream: LiveStream) -> None:
        with self._lock:
            self._streams.discard(stream)

    def _watch(self) -> None:
        version = -1
        while True:
            if self.view.wait_for_change(version, 1.0):
                version = self.view.version
                with self._lock:
                    streams = list(self._streams)
                if streams:
                    version = self._encode()[0]
                for stream in streams:
                    stream.wake()


class LiveStream:
    """One open stream. Iterate it (a thread) or async-iterate it (web_ui/server.py's loop): bytes to send."""

    def __init__(self, feed: LiveFeed, signin: str, still_signed_in: Callable[[], bool]) -> None:
        self.feed, self.signin, self.still_signed_in = feed, signin, still_signed_in
        self.ends = time.monotonic() + feed.lifetime
        self._sent = -1
        self._last_sent = time.monotonic()
        self._checked = time.monotonic()
        self._woken = threading.Event()
        self._on_wake: Callable[[], None] = self._woken.set
        self._closed = False

    def wake(self) -> None:
        self._on_wake()

    def _next(self) -> bytes | None:
        """What to send now: a new state or a keepalive, b"" to keep waiting, None when the stream is over."""
        now = time.monotonic()
        if self._closed or now >= self.ends:
            return None
        if now - self._checked >= SIGNIN_CHECK_SECONDS:
            self._checked = now
            if not self.still_signed_in():  # logged out, signed out everywhere, or a new password
                return None
        version, payload = self.feed.latest()
        if version == self._sent:
            payload = KEEPALIVE if now - self._last_sent >= KEEPALIVE_SECONDS else b""
        self._sent = version
        if payload:
            self._last_sent = now
        return payload

    def _wait_seconds(self) -> float:
        """How long to sleep before looking again, if nothing changes."""
        now = time.monotonic()
        keepalive = self._last_sent + KEEPALIVE_SECONDS - now
        return max(0.0, min(keepalive, self._checked + SIGNIN_CHECK_SECONDS - now, self.ends - now)) + 0.01

    def __iter__(self) -> Iterator[bytes]:
        yield HELLO
        try:
            while (chunk := self._next()) is not None:
                if chunk:
                    yield chunk
                    continue
                self._woken.clear()
                if self.feed.latest()[0] == self._sent:
                    self._woken.wait(self._wait_seconds())
        finally:
            self.close()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._async_chunks()

    async def _async_chunks(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        woken = asyncio.Event()
        self._on_wake = lambda: loop.call_soon_threadsafe(woken.set)
        yield HELLO
        try:
            while True:
                # the sign-in check reads the database: off the loop
                checking = time.monotonic() - self._checked >= SIGNIN_CHECK_SECONDS
                chunk = await asyncio.to_thread(self._next) if checking else self._next()
                if chunk is None:
                    break
                if chunk:
                    yield chunk
                    continue
                woken.clear()
                if self.feed.latest()[0] == self._sent:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(woken.wait(), self._wait_seconds())
        finally:
            self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.feed._close(self)
