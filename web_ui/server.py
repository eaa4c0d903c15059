"""The page's HTTP/1.1 server: one asyncio loop for every socket, a small thread pool for the Flask app.

Why not waitress: it gives each live stream one of its worker threads until the stream ends, and past its
`connection_limit` it stops accepting, so a few forgotten phone tabs, or about a hundred idle sockets from anyone
on the network, stopped the page for everyone (measured; see the README). Here an idle socket or an open stream
costs a file descriptor and a few kilobytes, never a thread:

- a request's head and body must arrive within `request_seconds` of its first byte, and an idle keep-alive
  connection closes after `idle_seconds`, so slow senders cannot linger;
- at `max_connections` (from the open-file limit) a new connection closes the one that has waited longest
  for a request, so idle sockets can never lock the door;
- a client that stops reading is dropped after `write_seconds`;
- a response body with `__aiter__` (the live stream, web_ui/live.py) is sent from the loop, not a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import json
import logging
import re
import resource
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

log = logging.getLogger(__name__)
TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
REASONS = {400: "Bad Request", 408: "Request Timeout", 411: "Length Required", 413: "Content Too Large"}
REASONS |= {431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented"}
REASONS |= {505: "HTTP Version Not Supported"}
FDS_KEPT_BACK = 96  # for the camera, the model, SQLite, logs and the Spotify and YouTube clients
ACCEPT_BATCH = 128  # sockets accepted per wake-up (and the listen backlog)


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


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k == name]
        return ",".join(values) if values else None


class Connection:
    """One client socket; `waiting` while it has no request being answered (and so may be closed first)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.writer: asyncio.StreamWriter | None = None
        self.waiting = True
        self.since = time.monotonic()
        self.closed = False
        self.task: asyncio.Future | None = None

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
        await self._stopped.wait()
        self._pause_accepting()
        for conn in list(self.connections):
            conn.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

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
            conn = Connection(sock)
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
            reader, writer = await asyncio.open_connection(sock=conn.sock, limit=self.limits.max_head)
        except OSError:
            self._forget(conn)
            return
        conn.writer = writer
        if conn.closed:  # closed to make room before it started
            writer.transport.abort()
            return
        try:
            while await self._one_request(conn, reader, writer):
                conn.wait(True)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError, OSError):
            pass
        except Exception:
            log.exception("the page's connection failed")
        finally:
            self._forget(conn)
            if writer.transport.get_write_buffer_size():
                writer.transport.abort()  # a client that does not read is not waited for
            else:
                writer.close()

    def _forget(self, conn: Connection) -> None:
        self.connections.discard(conn)
        self._accept_again()

    async def _one_request(self, conn: Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Read, answer; True to keep the connection for another request."""
        limits = self.limits
        async with asyncio.timeout(limits.idle_seconds):
            first = await reader.read(1)
            while first in (b"\r", b"\n"):  # blank lines before a request are allowed (RFC 9112 2.2)
                first = await reader.read(1)
        if not first:
            return False
        try:
            async with asyncio.timeout(limits.request_seconds):
                if first == b"\x16":  # a TLS handshake record: say so now, not after the 10 s deadline
                    raise BadRequest(400, "this port speaks plain HTTP, not HTTPS: open http://, not https://")
                head = first + await read_head(reader, limits.max_head)
                request = parse_head(head)
                length = body_length(request, limits.max_body)
                if length and (request.header("expect") or "").lower() == "100-continue":
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                body = await reader.readexactly(length) if length else b""
        except TimeoutError:
            await self._refuse(reader, writer, 408, f"the request did not arrive within {limits.request_seconds:g} s")
            return False
        except BadRequest as exc:
            await self._refuse(reader, writer, exc.status, str(exc))
            return False
        conn.wait(False)
        environ = self._environ(request, body, writer)
        status, headers, result = await asyncio.get_running_loop().run_in_executor(self._pool, self._call, environ)
        keep = request.version == "HTTP/1.1" and "close" not in (request.header("connection") or "").lower()
        keep = keep and not any(k.lower() == "connection" and "close" in v.lower() for k, v in headers)
        if hasattr(result, "__aiter__"):
            await self._stream(reader, writer, status, headers, result)
            return False
        code = int(status[:3])
        if not any(k.lower() == "content-length" for k, _ in headers) and not (
            request.method == "HEAD" or code in (204, 304) or code < 200
        ):
            headers.append(("Content-Length", str(len(result))))
        if not keep:
            headers.append(("Connection", "close"))
        await self._send(writer, head_bytes(status, headers) + result)
        return keep

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        async with asyncio.timeout(self.limits.write_seconds):
            await writer.drain()

    async def _refuse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, status: int, message: str):
        """Answer a request that never reached the app, then close, reading for a moment what the client still
        sends (closing with unread input would reset the connection and lose the answer)."""
        body = json.dumps({"error": message}).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))), ("Connection", "close")]
        with contextlib.suppress(ConnectionError, TimeoutError, OSError):
            await self._send(writer, head_bytes(f"{status} {REASONS.get(status, '')}", headers) + body)
            writer.write_eof()
            async with asyncio.timeout(1.0):
                for _ in range(64):
                    if not await reader.read(65536):
                        break

    async def _stream(self, reader, writer, status: str, headers: list[tuple[str, str]], body: Any) -> None:
        """An endless body (server-sent events): sent from the loop until it ends or the client goes."""

        async def pump() -> None:
            await self._send(writer, head_bytes(status, [*headers, ("Connection", "close")]))
            async for chunk in body:
                await self._send(writer, chunk)

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

    # -- WSGI --------------------------------------------------------------------------------------------------
    def _environ(self, request: Request, body: bytes, writer: asyncio.StreamWriter) -> dict[str, Any]:
        target, authority = request.target, ""
        if target.startswith(("http://", "https://")):  # absolute form (RFC 9112 3.2.2)
            parts = urlsplit(target)
            target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
            authority = parts.netloc  # parse_head refused one without a host, with a user name or unparseable
        path, _, query = target.partition("?")
        local = writer.get_extra_info("sockname") or ("", self.port)
        peer = writer.get_extra_info("peername") or ("", 0)
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query,
            "SERVER_NAME": unmapped(local[0]),
            "SERVER_PORT": str(local[1]),
            "SERVER_PROTOCOL": request.version,
            "REMOTE_ADDR": unmapped(peer[0]),
            "REMOTE_PORT": str(peer[1]),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.input_terminated": True,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "moodbox.local_addr": unmapped(local[0]),
        }
        for name, value in request.headers:
            if "_" in name:  # X_Forwarded_For and X-Forwarded-For would meet in the same key
                continue
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                environ[key] = value
                continue
            key = "HTTP_" + key
            before = environ.get(key)
            environ[key] = value if before is None else before + ("; " if key == "HTTP_COOKIE" else ",") + value
        if authority:  # the target's host is the request's host, whatever the Host header says (RFC 9112 3.2.2)
            environ["HTTP_HOST"] = authority
        return environ

    def _call(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], Any]:
        """Run the app in a pool thread; the whole body, or the stream itself when it has `__aiter__`."""
        answer: list[Any] = []
        chunks: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None):
            if exc_info and answer:
                raise exc_info[1].with_traceback(exc_info[2])
            answer[:] = [status, list(headers)]
            return chunks.append

        try:
            result: Iterable[bytes] = self.app(environ, start_response)
            if hasattr(result, "__aiter__"):
                return answer[0], answer[1], result
            try:
                chunks.extend(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
            return answer[0], answer[1], b"".join(chunks)
        except Exception:
            log.exception("the page failed on %s %s", environ["REQUEST_METHOD"], environ["PATH_INFO"])
            body = b"internal error: see the log\n"
            headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
            return "500 Internal Server Error", headers, body


async def read_head(reader: asyncio.StreamReader, max_head: int) -> bytes:
    """The rest of a request's head, up to and including its blank line, read one line at a time so that a line
    ended by a bare LF is refused at once instead of waiting out the deadline for a CRLF CRLF that never comes."""
    head = b""
    while True:
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.LimitOverrunError:
            raise BadRequest(431, f"the request head is over {max_head} bytes") from None
        if not line.endswith(b"\r\n"):
            raise BadRequest(400, "every line of the request head must end with CRLF (\\r\\n), not a bare LF")
        head += line
        if len(head) > max_head:
            raise BadRequest(431, f"the request head is over {max_head} bytes")
        if head.endswith(b"\r\n\r\n"):
            return head


def parse_head(head: bytes) -> Request:
    lines = head[:-4].split(b"\r\n")
    try:
        method, target, version = lines[0].split(b" ")
    except ValueError:
        raise BadRequest(400, "the request line must be METHOD TARGET HTTP/1.1") from None
    if not TOKEN.match(method):
        raise BadRequest(400, "the request method is not a token")
    if method != method.upper():  # methods are case-sensitive (RFC 9110 9.1); Werkzeug would upper-case "post"
        raise BadRequest(501, f"no method {method.decode()!r} here: methods are upper case, such as GET and POST")
    if version not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise BadRequest(505 if version.startswith(b"HTTP/") else 400, "only HTTP/1.1 and HTTP/1.0 are spoken here")
    well_formed = target.startswith((b"/", b"http://", b"https://")) or target == b"*"
    if not well_formed or any(b <= 32 or b >= 127 for b in target):
        raise BadRequest(400, "the request target must be a path such as /healthz, in ASCII (%-encode the rest)")
    if target.startswith(b"http") and not absolute_authority(target.decode("ascii")):
        raise BadRequest(400, "an absolute request target needs a host and no user name, as in http://moodbox.local/")
    if len(lines) > 101:
        raise BadRequest(431, "more than 100 header lines")
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not TOKEN.match(name):  # also refuses obsolete line folding (a line starting with a space)
            raise BadRequest(400, f"a malformed header line: {line[:40]!r}")
        value = value.strip(b" \t")
        if any((b < 32 and b != 9) or b == 127 for b in value):
            raise BadRequest(400, f"a control character in header {name.decode()}")
        headers.append((name.decode("ascii").lower(), value.decode("latin-1")))
    return Request(method.decode("ascii"), target.decode("ascii"), version.decode("ascii"), headers)


def absolute_authority(target: str) -> str:
    """The host[:port] of an absolute-form target (http://host:port/path), or "" when it has none or has a
    user name, which an http URI must not carry (RFC 9110 4.2.4)."""
    try:
        netloc = urlsplit(target).netloc
    except ValueError:  # a bracket left open: http://[::1/
        return ""
    return "" if "@" in netloc else netloc


def body_length(request: Request, max_body: int) -> int:
    if request.header("transfer-encoding") is not None:
        raise BadRequest(411, "chunked request bodies are not accepted: send Content-Length")
    length = request.header("content-length")
    if length is None:
        return 0
    values = {v.strip() for v in length.split(",")}
    if len(values) != 1 or not (value := values.pop()).isdigit() or len(value) > 12:
        raise BadRequest(400, "Content-Length must be one whole number")
    if int(value) > max_body:
        raise BadRequest(413, f"the request body is over {max_body} bytes")
    return int(value)


def head_bytes(status: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def unmapped(address: str) -> str:
    """127.0.0.1 for ::ffff:127.0.0.1 (an IPv4 client of a dual-stack socket)."""
    return address[7:] if address.startswith("::ffff:") and "." in address else address
