"""The page's HTTP/1.1 server: one asyncio loop for every socket, a small thread pool for the Flask app.

h11 reads every request and writes every response head (one `h11.Connection` per socket); this module holds the
connection policy around it. Why not waitress: it gives each live stream one of its worker threads until the
stream ends, and past its `connection_limit` it stops accepting, so a few forgotten phone tabs, or about a hundred
idle sockets from anyone on the network, stopped the page for everyone (measured; see the README). Here an idle
socket or an open stream costs a file descriptor and a few kilobytes, never a thread:

- a request's head and body must arrive within `request_seconds` of its first byte, and an idle keep-alive
  connection closes after `idle_seconds`, so slow senders cannot linger; blank lines before a request are
  skipped (RFC 9112 2.2) but do not count as its start;
- at `max_connections` (from the open-file limit) a new connection closes the one that has waited longest
  for a request, so idle sockets can never lock the door;
- a client that stops reading is dropped after `write_seconds`;
- a head over `max_head` bytes is refused (414 when the request line alone is that long, else 431), and so is a
  body over `max_body` (413), chunked or not;
- methods are case-sensitive, only HTTP/1.0 and 1.1 are spoken, a target is a path or an absolute http URL, a
  header value holds no control character, and a request with both Content-Length and Transfer-Encoding is
  refused (RFC 9112 6.1);
- a response body with `__aiter__` (the live stream, web_ui/live.py) is sent from the loop, not a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import re
import resource
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import h11

from web_ui import wsgi
from web_ui.hosts import split_absolute_target
from web_ui.network_log import network_log, request_id

log = logging.getLogger(__name__)
FDS_KEPT_BACK = 96  # for the camera, the model, SQLite, logs and the Spotify and YouTube clients
ACCEPT_BATCH = 128  # sockets accepted per wake-up (and the listen backlog)
READ_SIZE = 65536
REPORT_SECONDS = 60.0  # how often the count of log lines left out (web_ui/network_log.py) is written
HTTPS_HANDSHAKE = 0x16  # the first byte of a TLS record carrying a ClientHello
CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # in a header value; a tab is allowed


def connection_limit(open_files: int | None = None) -> int:
    """How many page connections fit in an open-file limit (by default this process's: systemd's LimitNOFILE)."""
    if open_files is None:
        open_files = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if open_files == resource.RLIM_INFINITY:
            open_files = 65536
    return max(32, open_files - FDS_KEPT_BACK)


@dataclass(frozen=True)
class Limits:
    max_connections: int
    workers: int = 8  # threads running Flask requests (never streams)
    idle_seconds: float = 30.0  # a keep-alive connection waits this long for its next request
    request_seconds: float = 10.0  # a request's head and body must arrive within this, from its first byte
    write_seconds: float = 15.0  # a client must take what is sent within this
    max_head: int = 16 * 1024
    max_body: int = 64 * 1024


class Refused(Exception):
    """A request answered by the server itself, never reaching the app; the connection closes after it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Request:
    """What the app gets of a request h11 has read: the event, its path (and query), the authority of an
    absolute-form target ("" for the usual path form) and the whole body."""

    event: h11.Request
    target: str
    authority: str
    body: bytes


class Connection:
    """One client socket; `waiting` while it has no request being answered (and so may be closed first)."""

    def __init__(self, sock: socket.socket, max_head: int) -> None:
        self.sock = sock
        self.writer: asyncio.StreamWriter | None = None
        self.waiting = True
        self.since = time.monotonic()
        self.closed = False
        self.task: asyncio.Future | None = None
        self.http = new_parser(max_head)  # h11's state: one per socket

    def wait(self, waiting: bool) -> None:
        self.waiting, self.since = waiting, time.monotonic()

    def close(self) -> None:
        self.closed = True
        if self.writer is not None:
            self.writer.transport.abort()
        else:
            self.sock.close()


class PageServer:
    """Serves a WSGI app on host:port from a background thread; `start()`, then `close()`."""

    def __init__(self, app: Callable, host: str, port: int, limits: Limits | None = None) -> None:
        self.app = app
        self.limits = limits or Limits(max_connections=connection_limit())
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.create_server((host, port), family=family, backlog=ACCEPT_BATCH)  # OSError if taken
        self.socket.setblocking(False)
        self.port = self.socket.getsockname()[1]
        self.connections: set[Connection] = set()
        self.evicted = 0
        self._pool = ThreadPoolExecutor(self.limits.workers, thread_name_prefix="page")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._accepting = False
        self._last_warning = 0.0

    # -- life ----------------------------------------------------------------------------------------------
    def start(self) -> None:
        ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve(ready)), name="web", daemon=True)
        self._thread.start()
        ready.wait(10)

    async def _serve(self, ready: threading.Event) -> None:
        self._loop, self._stopped = asyncio.get_running_loop(), asyncio.Event()
        self._accept_again()
        ready.set()
        reporting = asyncio.ensure_future(self._report_left_out_lines())
        await self._stopped.wait()
        reporting.cancel()
        self._pause_accepting()
        for conn in list(self.connections):
            conn.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _report_left_out_lines(self) -> None:
        while True:
            await asyncio.sleep(REPORT_SECONDS)
            network_log.report()

    def close(self) -> None:
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(5)
        self.socket.close()

    # -- accepting: every socket is counted the moment it is accepted ---------------------------------------------
    def _accept_again(self) -> None:
        if not self._accepting and self._loop is not None and not self._stopped.is_set():
            self._loop.add_reader(self.socket.fileno(), self._accept)
            self._accepting = True

    def _pause_accepting(self, seconds: float | None = None) -> None:
        if self._accepting and self._loop is not None:
            self._loop.remove_reader(self.socket.fileno())
            self._accepting = False
            if seconds is not None:
                self._loop.call_later(seconds, self._accept_again)

    def _accept(self) -> None:
        for _ in range(ACCEPT_BATCH):
            full = len(self.connections) >= self.limits.max_connections
            if full and not any(c.waiting for c in self.connections):
                self._pause_accepting()  # every connection is busy with a request: go on when one ends
                self._warn("the page has %d connections, all busy: new ones wait", self.limits.max_connections)
                return
            try:
                sock, _ = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of files (another part of the process used more) or a client gone
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self._warn("the page cannot accept a connection (%s): trying again in 1 s", exc.strerror)
                    self._pause_accepting(1.0)
                    return
                continue
            if full:
                self._make_room()
            sock.setblocking(False)
            conn = Connection(sock, self.limits.max_head)
            self.connections.add(conn)
            conn.task = asyncio.ensure_future(self._connection(conn))

    def _make_room(self) -> None:
        """Close the connection that has waited longest for a request (the caller saw that one waits)."""
        oldest = min((c for c in self.connections if c.waiting), key=lambda c: c.since)
        oldest.close()
        self.connections.discard(oldest)
        self.evicted += 1
        self._warn("the page has %d connections, its limit: closing the longest idle ones", len(self.connections))

    def _warn(self, message: str, *args: Any) -> None:
        if time.monotonic() - self._last_warning > 60:
            self._last_warning = time.monotonic()
            log.warning(message, *args)

    # -- one connection ----------------------------------------------------------------------------------------
    async def _connection(self, conn: Connection) -> None:
        try:
            reader, writer = await asyncio.open_connection(sock=conn.sock, limit=READ_SIZE)
        except OSError:
            self._forget(conn)
            return
        conn.writer = writer
        if conn.closed:  # closed to make room before it started
            writer.transport.abort()
            return
        try:
            while await self._exchange(conn, reader, writer):
                conn.http.start_next_cycle()
                conn.wait(True)
        except (ConnectionError, TimeoutError, OSError):
            pass
        except Exception:
            network_log.exception(_peer(writer)[0], "the page's connection failed")
        finally:
            self._forget(conn)
            if writer.transport.get_write_buffer_size():
                writer.transport.abort()  # a client that does not read is not waited for
            else:
                writer.close()

    def _forget(self, conn: Connection) -> None:
        self.connections.discard(conn)
        self._accept_again()

    async def _exchange(self, conn: Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Read one request and answer it; True to keep the connection for another."""
        start = await self._request_start(conn, reader)
        if start is None:
            return False
        http = conn.http
        try:
            async with asyncio.timeout(self.limits.request_seconds):
                request = await self._read_request(http, reader, writer, start)
        except TimeoutError:
            refused = Refused(408, f"the request did not arrive within {self.limits.request_seconds:g} s")
        except h11.RemoteProtocolError as exc:
            refused = self._malformed(exc, http)
        except Refused as exc:
            refused = exc
        else:
            refused = None
        if refused is not None:
            await self._refuse(http, reader, writer, refused, head_only=start.startswith(b"HEAD "))
            return False
        conn.wait(False)
        environ = wsgi.environ(request.event, request.target, request.authority, request.body, *_ends(writer))
        loop = asyncio.get_running_loop()
        status, headers, body = await loop.run_in_executor(self._pool, wsgi.call, self.app, environ)
        if hasattr(body, "__aiter__"):
            await self._stream(http, reader, writer, status, headers, body)
            return False
        return await self._answer(http, reader, writer, request.event, (status, headers, body))

    async def _request_start(self, conn: Connection, reader: asyncio.StreamReader) -> bytes | None:
        """The first bytes of the next request, once there are some; None when the client closes or stays silent
        for `idle_seconds`. Blank lines before a request are skipped (RFC 9112 2.2) and do not start the request
        deadline; they are dropped a read at a time, so a flood of them costs little."""
        pending, closed = conn.http.trailing_data  # a pipelined request that came with the last one
        if pending[:1] in (b"\r", b"\n"):  # h11 would refuse them: a new parser gets what follows them
            conn.http, pending = new_parser(self.limits.max_head), pending.lstrip(b"\r\n")
            conn.http.receive_data(pending)
            if closed:
                conn.http.receive_data(b"")
        if pending:
            return pending[:8]
        if closed:
            return None
        http = conn.http
        try:
            async with asyncio.timeout(self.limits.idle_seconds):
                data = b""
                while not data:
                    chunk = await reader.read(READ_SIZE)
                    if not chunk:
                        return None
                    data = chunk.lstrip(b"\r\n")
        except TimeoutError:
            return None
        http.receive_data(data)
        return data[:8]

    async def _next_event(self, http: h11.Connection, reader: asyncio.StreamReader) -> Any:
        while (event := http.next_event()) is h11.NEED_DATA:
            http.receive_data(await reader.read(READ_SIZE))  # b"" at the end of input: h11 then says what it means
        return event

    async def _read_request(
        self, http: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, start: bytes
    ) -> Request:
        limits = self.limits
        if start[0] == HTTPS_HANDSHAKE:  # say so now, not after the deadline
            raise Refused(400, "this port speaks plain HTTP, not HTTPS: open http://, not https://")
        event = await self._next_event(http, reader)
        if type(event) is not h11.Request:
            raise Refused(400, "the connection closed before the request was complete")
        target, authority = self._check(event)
        length = _content_length(event)
        if length is not None and length > limits.max_body:
            raise Refused(413, f"the request body is over {limits.max_body} bytes")
        if http.they_are_waiting_for_100_continue:  # h11 ignores the expectation from HTTP/1.0 (RFC 9110 10.1.1)
            writer.write(http.send(h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")))
        body = bytearray()
        try:
            while type(part := await self._next_event(http, reader)) is h11.Data:
                body += part.data
                if len(body) > limits.max_body:
                    raise Refused(413, f"the request body is over {limits.max_body} bytes")
        except h11.RemoteProtocolError as exc:
            raise Refused(400, "a malformed request body: " + _plain(exc)) from None
        if type(part) is not h11.EndOfMessage:
            raise Refused(400, "the connection closed before the request was complete")
        return Request(event, target, authority, bytes(body))

    def _check(self, event: h11.Request) -> tuple[str, str]:
        """The request's path and the authority of an absolute-form target, after the policy h11 leaves to us."""
        method, target = event.method, event.target.decode("ascii")  # h11 allows only visible ASCII in targets
        if method != method.upper():  # methods are case-sensitive (RFC 9110 9.1); Werkzeug would upper-case "post"
            raise Refused(501, f"no method {method.decode()!r} here: methods are upper case, such as GET and POST")
        if event.http_version not in (b"1.1", b"1.0"):
            raise Refused(505, "only HTTP/1.1 and HTTP/1.0 are spoken here")
        line = len(method) + len(target) + 12
        if line > self.limits.max_head:  # h11 bounds an unfinished head; a whole one can arrive in one read
            raise Refused(414, f"the request line is over {self.limits.max_head} bytes: use a shorter address")
        if line + sum(len(k) + len(v) + 4 for k, v in event.headers.raw_items()) > self.limits.max_head:
            raise Refused(431, f"the request head is over {self.limits.max_head} bytes")
        for name, value in event.headers.raw_items():  # h11 lets control characters through; RFC 9110 5.5 does not
            if CONTROL.search(value):
                raise Refused(400, f"the {name.decode()} header holds a control character: send printable text only")
        if target.startswith("/") or target == "*":
            return target, ""
        absolute = split_absolute_target(target)
        if absolute is None and target.lower().startswith(("http://", "https://")):
            raise Refused(400, "an absolute request target needs a host and no user name, as in http://moodbox.local/")
        if absolute is None:
            raise Refused(400, "the request target must be a path such as /healthz (CONNECT is not served here)")
        return absolute[1], absolute[0]

    def _malformed(self, exc: h11.RemoteProtocolError, http: h11.Connection) -> Refused:
        """The answer to what h11 could not read, with a message that names the cause."""
        message, status = str(exc), exc.error_status_hint
        if status == 431:  # h11 holds the unfinished head
            if not 0 <= http.trailing_data[0].find(b"\n") < self.limits.max_head:
                return Refused(414, f"the request line is over {self.limits.max_head} bytes: use a shorter address")
            return Refused(431, f"the request head is over {self.limits.max_head} bytes")
        if message == "Missing mandatory Host: header":
            return Refused(400, "an HTTP/1.1 request needs a Host header (RFC 9112 3.2), such as Host: moodbox.local")
        if message == "peer unexpectedly closed connection":
            return Refused(400, "the connection closed before the request was complete")
        if status == 501:
            return Refused(501, "only Transfer-Encoding: chunked is read here: send chunked or Content-Length")
        return Refused(status, "a malformed request: " + _plain(exc))

    # -- answers ---------------------------------------------------------------------------------------------------
    async def _answer(
        self,
        http: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        event: h11.Request,
        answer: wsgi.Answer,
    ) -> bool:
        """Send the app's answer (no body to HEAD); True when the connection stays open."""
        status, headers, body = answer
        code = int(status[:3])
        if event.method == b"HEAD":
            body = b""  # Werkzeug sends none; the server's own 500 would
        elif code not in (204, 304) and not any(k.lower() == "content-length" for k, _ in headers):
            headers = [*headers, ("Content-Length", str(len(body)))]
        try:
            data = http.send(_response(status, headers))
            if body:
                data += http.send(h11.Data(data=body))
            data += http.send(h11.EndOfMessage())
        except h11.LocalProtocolError as exc:  # the app's answer breaks HTTP: a header with a line break, say
            rid = request_id()
            network_log.warning(_peer(writer)[0], "request %s: the page's answer %r is not HTTP: %s", rid, status, exc)
            error = Refused(500, f"internal error (request {rid}): see the log")
            await self._refuse(new_parser(self.limits.max_head), reader, writer, error, event.method == b"HEAD")
            return False
        await self._send(writer, data)
        return http.our_state is h11.DONE and http.their_state is h11.DONE

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        async with asyncio.timeout(self.limits.write_seconds):
            await writer.drain()

    async def _refuse(
        self,
        http: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        refused: Refused,
        head_only: bool,
    ) -> None:
        """Answer a request that never reached the app (its head alone to HEAD), then close, reading for a moment
        what the client still sends (closing with unread input would reset the connection and lose the answer)."""
        network_log.info(_peer(writer)[0], "refused a request: %d, %s", refused.status, refused)
        body = json.dumps({"error": str(refused)}).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))), ("Connection", "close")]
        try:
            data = http.send(_response(f"{refused.status} ", headers))
            if not head_only:
                data += http.send(h11.Data(data=body)) + http.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            return  # our side has already answered (a 100 Continue does not count)
        with contextlib.suppress(ConnectionError, TimeoutError, OSError):
            await self._send(writer, data)
            writer.write_eof()
            async with asyncio.timeout(1.0):
                for _ in range(64):
                    if not await reader.read(READ_SIZE):
                        break

    async def _stream(self, http, reader, writer, status: str, headers: list[tuple[str, str]], body: Any) -> None:
        """An endless body (server-sent events), chunked by h11: sent from the loop until it ends or the client
        goes."""

        async def pump() -> None:
            await self._send(writer, http.send(_response(status, [*headers, ("Connection", "close")])))
            async for chunk in body:
                await self._send(writer, http.send(h11.Data(data=chunk)))
            await self._send(writer, http.send(h11.EndOfMessage()))

        async def gone() -> None:  # a client sends nothing more on a stream: end of input means it left
            while await reader.read(1024):
                pass

        sending, hangup = asyncio.ensure_future(pump()), asyncio.ensure_future(gone())
        try:
            await asyncio.wait((sending, hangup), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sending, hangup):
                task.cancel()
            await asyncio.gather(sending, hangup, return_exceptions=True)
            closing = getattr(body, "aclose", None) or getattr(body, "close", None)
            if closing is not None:
                result = closing()
                if asyncio.iscoroutine(result):
                    await result


def new_parser(max_head: int) -> h11.Connection:
    """h11's reader and writer for a socket. It holds no more than `max_head` bytes of an unfinished head;
    `PageServer._check` bounds a whole one."""
    return h11.Connection(h11.SERVER, max_incomplete_event_size=max_head)


def _content_length(event: h11.Request) -> int | None:
    """The declared body length (h11 has checked it is one run of ASCII digits); None for a chunked body.
    Both at once are refused: a proxy in front could frame the body the other way (RFC 9112 6.1)."""
    lengths = [v for k, v in event.headers if k == b"content-length"]
    if any(k == b"transfer-encoding" for k, _ in event.headers):
        if lengths:
            raise Refused(400, "send Content-Length or Transfer-Encoding: chunked, not both (RFC 9112 6.1)")
        return None
    return int(lengths[0]) if lengths else 0


def _plain(exc: h11.ProtocolError) -> str:
    """h11's reason, with the bytes it quotes shown as bytes and cut short."""
    return re.sub(r"bytearray\((b.*)\)", r"\1", str(exc))[:160]


def _response(status: str, headers: list[tuple[str, str]]) -> h11.Response:
    code = int(status[:3])
    reason = status[4:].strip()
    if not reason:
        with contextlib.suppress(ValueError):
            reason = HTTPStatus(code).phrase
    return h11.Response(
        status_code=code,
        reason=reason.encode("latin-1"),
        headers=[(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
    )


def _peer(writer: asyncio.StreamWriter) -> tuple[str, int]:
    peer = writer.get_extra_info("peername") or ("", 0)
    return wsgi.unmapped(peer[0]), peer[1]


def _ends(writer: asyncio.StreamWriter) -> tuple[tuple, tuple]:
    """(local address, peer address) of a connection, IPv4 clients of a dual-stack socket as plain IPv4."""
    local = writer.get_extra_info("sockname") or ("", 0)
    return (wsgi.unmapped(local[0]), local[1]), _peer(writer)
