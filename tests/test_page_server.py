"""The page's HTTP server (web_ui/server.py) in this process, on loopback, with a small WSGI app and its limits
shortened (a 0.4 s idle timeout instead of 30 s), so that every deadline is tested through real sockets in well
under a second. The daemon's own server is attacked in tests/test_attack_network.py."""

from __future__ import annotations

import json
import re
import socket
import sys
import time

import pytest

from web_ui.server import Limits, PageServer

REASONS = {400: "Bad Request", 408: "Request Timeout", 413: "Request Entity Too Large", 414: "Request-URI Too Long"}
REASONS |= {431: "Request Header Fields Too Large", 501: "Not Implemented", 505: "HTTP Version Not Supported"}

WSGI = ("wsgi.version", "wsgi.url_scheme", "wsgi.input_terminated", "wsgi.multithread", "wsgi.multiprocess")
WSGI += ("wsgi.run_once",)
SHORT = Limits(max_connections=8, workers=2, idle_seconds=0.4, request_seconds=0.4, write_seconds=0.4)
BIG = 32 * 1024 * 1024  # more than loopback's socket buffers hold: a client that does not read blocks the send


class Stream:
    """A live stream body (like web_ui/live.py's): chunks sent from the server's loop until the client leaves."""

    def __init__(self) -> None:
        self.closed = False

    def __aiter__(self):
        return self._chunks()

    async def _chunks(self):
        for i in range(3):
            yield f"data: {i}\n\n".encode()

    async def aclose(self) -> None:  # the loop's way to end it, awaited
        self.closed = True


streams: list[Stream] = []


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/big":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [b"x" * BIG]
    if path == "/fail":
        raise RuntimeError("a bug in a route")
    if path == "/close":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Connection", "close")])
        return [b"bye"]
    if path == "/events":
        streams.append(Stream())
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        return streams[-1]
    if path == "/empty":
        start_response("204 No Content", [])
        return [b""]
    if path == "/not-modified":
        start_response("304 Not Modified", [("ETag", '"1"')])
        return [b""]
    if path == "/own-length":
        start_response("200 OK", [("content-length", "3")])
        return [b"abc"]
    if path == "/broken":  # an answer HTTP cannot carry: a line break in a header
        start_response("200 OK", [("X-Note", "one\r\nSet-Cookie: evil=1")])
        return [b"never sent"]
    body = environ["wsgi.input"].read()
    seen = {k: v for k, v in environ.items() if k.startswith("HTTP_") or k in ("CONTENT_LENGTH", "CONTENT_TYPE")}
    seen |= {
        "method": environ["REQUEST_METHOD"],
        "path": path,
        "query": environ["QUERY_STRING"],
        "body": body.decode("latin-1"),
        "protocol": environ["SERVER_PROTOCOL"],
        "remote": environ["REMOTE_ADDR"],
        "local": environ["moodbox.local_addr"],
        "port": environ["SERVER_PORT"],
        "wsgi": {k: environ[k] for k in WSGI},
        "server_name": environ["SERVER_NAME"],
        "script_name": environ["SCRIPT_NAME"],
        "remote_port": environ["REMOTE_PORT"],
        "errors": environ["wsgi.errors"] is sys.stderr,
    }
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(seen).encode()]


@pytest.fixture
def server():
    s = PageServer(app, "127.0.0.1", 0, SHORT)
    s.start()
    yield s
    s.close()


def connect(server: PageServer, **options) -> socket.socket:
    s = socket.socket()
    for option, value in options.items():
        s.setsockopt(socket.SOL_SOCKET, getattr(socket, option), value)
    s.settimeout(5)
    s.connect(("127.0.0.1", server.port))
    return s


def response(s: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response: (status, headers, body), reading exactly its Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, f"closed before an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    length = int(headers.get("content-length", 0))
    while len(body) < length:
        chunk = s.recv(65536)
        assert chunk, "closed in the middle of a body"
        body += chunk
    return int(status_line.split()[1]), headers, body


def closed_within(s: socket.socket, seconds: float) -> float:
    """Seconds until the server closed the socket (EOF); fails after `seconds`."""
    start = time.monotonic()
    s.settimeout(seconds)
    try:
        while s.recv(65536):
            pass
    except TimeoutError:
        raise AssertionError(f"still open after {seconds} s") from None
    except ConnectionResetError:
        pass
    return time.monotonic() - start


def get(path: str, version: str = "HTTP/1.1", extra: str = "") -> bytes:
    return f"GET {path} {version}\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode()


def test_http_1_1_keeps_the_connection_for_the_next_request(server):
    with connect(server) as s:
        for i in range(3):
            s.sendall(get(f"/n{i}"))
            status, headers, body = response(s)
            assert status == 200 and json.loads(body)["path"] == f"/n{i}" and "connection" not in headers


@pytest.mark.parametrize(("request_line", "extra"), [("HTTP/1.0", ""), ("HTTP/1.1", "Connection: close\r\n")])
def test_http_1_0_and_connection_close_get_one_answer_and_a_close(server, request_line, extra):
    with connect(server) as s:
        s.sendall(get("/", request_line, extra))
        status, headers, body = response(s)
        assert status == 200 and headers["connection"] == "close"
        assert json.loads(body)["protocol"] == request_line
        assert closed_within(s, 1) < 0.3  # at once, not after the 0.4 s idle timeout


def test_an_app_that_says_close_closes(server):
    with connect(server) as s:
        s.sendall(get("/close"))
        status, headers, body = response(s)
        assert (status, body) == (200, b"bye") and headers["connection"] == "close"
        assert closed_within(s, 1) < 0.3  # at once, not after the 0.4 s idle timeout


def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout(server):
    with connect(server) as s:
        s.sendall(get("/"))
        assert response(s)[0] == 200
        waited = closed_within(s, 3)  # then silence
        assert 0.3 < waited < 1.5, waited
    with connect(server) as s:  # a socket that never sends anything, the same
        assert 0.3 < closed_within(s, 3) < 1.5


def test_blank_lines_before_a_request_are_allowed(server):
    with connect(server) as s:
        s.sendall(b"\r\n\r\n" + get("/after-blank-lines"))
        assert json.loads(response(s)[2])["path"] == "/after-blank-lines"


def test_a_head_that_does_not_arrive_in_time_gets_a_408(server):
    with connect(server) as s:
        started = time.monotonic()
        s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        for _ in range(3):  # a byte every 0.2 s keeps the connection busy, but not past the deadline
            time.sleep(0.2)
            try:
                s.sendall(b"a")
            except OSError:
                break
        status, headers, body = response(s)
        assert status == 408 and "0.4 s" in json.loads(body)["error"] and headers["connection"] == "close"
        assert headers["content-type"] == "application/json"
        assert 0.3 < time.monotonic() - started < 1.5


def test_a_body_that_does_not_arrive_in_time_gets_a_408(server):
    """The head arrives at once, the body never: the deadline covers both."""
    with connect(server) as s:
        started = time.monotonic()
        s.sendall(b"POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\nhalf")
        status, _, _ = response(s)
        assert status == 408 and 0.3 < time.monotonic() - started < 1.5


def test_a_body_is_read_whole_and_handed_to_the_app(server):
    with connect(server) as s:
        s.sendall(b"POST /x?a=1&b=%20 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 11\r\n")
        s.sendall(b"Content-Type: text/plain\r\n\r\nhello")
        s.sendall(b" world")
        seen = json.loads(response(s)[2])
        assert seen["body"] == "hello world" and seen["CONTENT_LENGTH"] == "11" and seen["CONTENT_TYPE"] == "text/plain"
        assert seen["method"] == "POST" and seen["query"] == "a=1&b=%20"


def test_expect_100_continue_is_answered_before_the_body(server):
    with connect(server) as s:
        s.sendall(b"POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        s.sendall(b"ok")
        assert json.loads(response(s)[2])["body"] == "ok"


def test_a_client_that_stops_reading_is_dropped_after_the_write_timeout(server):
    """A phone that stopped reading in the middle of an answer: its connection ends after write_seconds, and with
    it the one slot it held, so a page with every slot taken answers the next visitor."""
    server.limits = Limits(max_connections=1, workers=2, idle_seconds=5, request_seconds=5, write_seconds=0.4)
    with connect(server, SO_RCVBUF=4096) as stuck:
        stuck.sendall(get("/big"))
        assert stuck.recv(1, socket.MSG_PEEK) == b"H"  # the answer has begun: the only slot is busy sending
        with connect(server) as visitor:
            started = time.monotonic()
            visitor.sendall(get("/"))
            assert response(visitor)[0] == 200
            waited = time.monotonic() - started
        received = 0
        try:
            while chunk := stuck.recv(1 << 20):
                received += len(chunk)
        except ConnectionResetError:
            pass
        assert received < BIG, "the stuck client got the whole answer: nothing was dropped"
    assert 0.3 < waited < 2.5, waited


def test_pipelined_requests_with_blank_lines_between_are_all_answered_in_order(server):
    with connect(server) as s:
        s.sendall(get("/one") + b"\r\n\r\n" + get("/two") + b"\n" + get("/three"))
        data = b""
        while data.count(b'"path"') < 3:  # the three answers, however the reads split them
            chunk = s.recv(65536)
            assert chunk, data
            data += chunk
        assert re.findall(rb'"path": "(/\w+)"', data) == [b"/one", b"/two", b"/three"]
        s.sendall(get("/four") + b"\r\n")
        assert json.loads(response(s)[2])["path"] == "/four"
        s.shutdown(socket.SHUT_WR)  # the blank line was the last thing sent: a close, not a request
        assert closed_within(s, 0.3) < 0.3


def test_a_connection_that_finished_its_request_is_idle_again_and_can_make_room(server):
    server.limits = Limits(max_connections=2, workers=2, idle_seconds=5, request_seconds=5, write_seconds=5)
    used = connect(server)
    used.sendall(get("/"))
    assert response(used)[0] == 200  # now waiting for its next request: the longest idle
    time.sleep(0.05)
    other = connect(server)
    try:
        with connect(server) as s:
            s.sendall(get("/"))
            assert response(s)[0] == 200
        assert closed_within(used, 2) < 2
        other.sendall(get("/still-here"))
        assert response(other)[0] == 200
    finally:
        used.close()
        other.close()


def test_at_the_connection_limit_the_longest_idle_connection_makes_room(server):
    server.limits = Limits(max_connections=3, workers=2, idle_seconds=5, request_seconds=5, write_seconds=5)
    oldest = connect(server)
    time.sleep(0.05)
    others = [connect(server) for _ in range(2)]
    try:
        with connect(server) as s:  # the fourth: the oldest idle one is closed for it
            s.sendall(get("/"))
            assert response(s)[0] == 200
        assert closed_within(oldest, 2) < 2 and server.evicted == 1  # counted for System
        for o in others:
            o.sendall(get("/still-here"))
            assert response(o)[0] == 200
    finally:
        oldest.close()
        for o in others:
            o.close()


MAX_BODY = SHORT.max_body
CHUNKED = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
ABSOLUTE = "an absolute request target needs a host and no user name, as in http://moodbox.local/"
LINE = b"GET /" + b"a" * 17000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize(
    ("raw", "status", "says"),
    [
        (b"GET /\r\n\r\n", 400, "a malformed request: "),
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, "only HTTP/1.1 and HTTP/1.0 are spoken here"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 20000, 431, f"the request head is over {SHORT.max_head} bytes"),
        (b"GET / FTP/1.0\r\nHost: x\r\n\r\n", 400, "a malformed request: "),
        (LINE, 414, f"the request line is over {SHORT.max_head} bytes: use a shorter address"),  # whole, at once
        (LINE[:17000], 414, f"the request line is over {SHORT.max_head} bytes: use a shorter address"),  # unfinished
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 20000 + b"\r\n\r\n",
            431,
            f"the request head is over {SHORT.max_head} bytes",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-A: 1\r\n" * 3000 + b"\r\n",
            431,
            f"the request head is over {SHORT.max_head} bytes",
        ),
        (
            b"GET / HTTP/1.1\r\n" + b"X-A: 1\r\n" * 101 + b"\r\n",
            400,
            "an HTTP/1.1 request needs a Host header (RFC 9112 3.2), such as Host: moodbox.local",
        ),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 2\r\n\r\n", 400, "a malformed request: "),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1234567890123\r\n\r\n",
            413,
            f"the request body is over {MAX_BODY} bytes",
        ),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400, "a malformed request: "),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1),
            413,
            f"the request body is over {MAX_BODY} bytes",
        ),
        (CHUNKED + b"10001\r\n" + b"a" * 0x10001, 413, f"the request body is over {MAX_BODY} bytes"),
        (CHUNKED + b"zz\r\n", 400, "a malformed request body: "),
        (
            CHUNKED[:-2] + b"Content-Length: 4\r\n\r\n",
            400,
            "send Content-Length or Transfer-Encoding: chunked, not both (RFC 9112 6.1)",
        ),
        (
            CHUNKED.replace(b"chunked", b"gzip"),
            501,
            "only Transfer-Encoding: chunked is read here: send chunked or Content-Length",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n",
            400,
            "the X header holds a control character: send printable text only",
        ),
        (b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n", 400, "a malformed request: "),
        (
            b"get / HTTP/1.1\r\nHost: x\r\n\r\n",
            501,
            "no method 'get' here: methods are upper case, such as GET and POST",
        ),
        (b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "a malformed request: "),
        (b"GET / HTTP/1.1\r\nHost: x\rX: 1\r\n\r\n", 400, "a malformed request: "),  # a bare CR (a bare LF is allowed)
        (
            b"GET x HTTP/1.1\r\nHost: x\r\n\r\n",
            400,
            "the request target must be a path such as /healthz (CONNECT is not served here)",
        ),
        (b"GET http://a@b/ HTTP/1.1\r\nHost: x\r\n\r\n", 400, ABSOLUTE),
        (b"GET HTTPS://a@b/ HTTP/1.1\r\nHost: x\r\n\r\n", 400, ABSOLUTE),
        (
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
            400,
            "this port speaks plain HTTP, not HTTPS: open http://, not https://",
        ),
    ],
)
def test_a_malformed_request_gets_its_status_at_once_and_a_close(server, raw, status, says):
    with connect(server) as s:
        started = time.monotonic()
        s.sendall(raw)
        head, deadline = s.recv(64, socket.MSG_PEEK), time.monotonic() + 2
        while b"\r\n\r\n" not in head and time.monotonic() < deadline:  # fails, never hangs, on a cut-off head
            head = s.recv(65536, socket.MSG_PEEK)
        assert head.startswith(f"HTTP/1.1 {status} {REASONS[status]}\r\n".encode())
        assert b"\r\nContent-Type: application/json\r\n" in head  # spelt as HTTP writes it
        got, headers, body = response(s)
        assert got == status, body
        error = json.loads(body)["error"]
        assert error == says or (says.endswith(": ") and error.startswith(says)), error  # h11's words after
        assert headers["connection"] == "close"
        assert headers["content-type"] == "application/json" and int(headers["content-length"]) == len(body)
        assert time.monotonic() - started < 0.3  # not after the deadline
        assert closed_within(s, 0.3) < 0.3  # at once, not after the 0.4 s idle timeout


CUT = "a malformed request body: peer closed connection without sending complete message body"


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n", "the connection closed before the request was complete"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc", CUT + " (received 3 bytes, expected 10)"),
        (CHUNKED + b"3\r\nabc", CUT + " (incomplete chunked read)"),
    ],
)
def test_a_request_cut_short_by_the_client_gets_a_400_that_says_so(server, raw, says):
    with connect(server) as s:
        s.sendall(raw)
        s.shutdown(socket.SHUT_WR)  # the client is done sending, before the request is
        status, _, body = response(s)
        assert status == 400 and json.loads(body)["error"] == says


def test_a_body_exactly_at_the_limit_is_read_and_chunks_are_joined(server):
    with connect(server) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % MAX_BODY + b"b" * MAX_BODY)
        status, _, body = response(s)
        assert status == 200 and json.loads(body)["body"] == "b" * MAX_BODY
        s.sendall(
            CHUNKED + b"3\r\nabc\r\n2\r\nde\r\n" + b"%x\r\n" % (MAX_BODY - 5) + b"f" * (MAX_BODY - 5) + b"\r\n0\r\n\r\n"
        )
        status, _, body = response(s)
        assert status == 200 and json.loads(body)["body"] == "abcde" + "f" * (MAX_BODY - 5)


def test_a_head_request_that_is_refused_gets_the_head_only(server):
    with connect(server) as s:
        s.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n")
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n") and b"Content-Length: " in head and rest == b""


def test_the_app_sees_the_request_as_wsgi_says(server):
    with connect(server) as s:
        s.sendall(
            b"GET /caf%C3%A9/x?q=1 HTTP/1.1\r\nHost: moodbox.local\r\nCookie: a=1\r\nCookie: b=2\r\n"
            b"X-Forwarded-For: 1.2.3.4\r\nX_Forwarded_For: 6.6.6.6\r\nAccept: a\r\nAccept: b\r\n\r\n"
        )
        seen = json.loads(response(s)[2])
        client_port = s.getsockname()[1]
    assert seen["path"] == "/caf\u00c3\u00a9/x" and seen["query"] == "q=1"  # WSGI's latin-1 of the UTF-8 bytes
    assert seen["HTTP_COOKIE"] == "a=1; b=2" and seen["HTTP_ACCEPT"] == "a,b" and seen["HTTP_HOST"] == "moodbox.local"
    assert seen["HTTP_X_FORWARDED_FOR"] == "1.2.3.4"  # the underscore spelling cannot pose as it
    assert seen["remote"] == "127.0.0.1" and seen["local"] == "127.0.0.1" and seen["port"] == str(server.port)
    assert seen["server_name"] == "127.0.0.1" and seen["script_name"] == "" and seen["errors"]
    assert seen["remote_port"] == str(client_port)
    assert seen["wsgi"] == {
        "wsgi.version": [1, 0],
        "wsgi.url_scheme": "http",
        "wsgi.input_terminated": True,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    with connect(server) as s:  # absolute form: the target's host is the host
        s.sendall(b"GET http://moodbox.local:8080/p?x=2 HTTP/1.1\r\nHost: evil.example\r\n\r\n")
        seen = json.loads(response(s)[2])
    assert seen["HTTP_HOST"] == "moodbox.local:8080" and seen["path"] == "/p" and seen["query"] == "x=2"
    with connect(server) as s:
        s.sendall(b"GET http://moodbox.local HTTP/1.1\r\nHost: x\r\n\r\n")
        assert json.loads(response(s)[2])["path"] == "/"


def test_a_route_that_fails_gets_a_500_and_the_connection_goes_on(server, caplog):
    with connect(server) as s:
        s.sendall(get("/fail"))
        status, _, body = response(s)
        assert status == 500 and b"see the log" in body
        s.sendall(get("/after"))
        assert response(s)[0] == 200
    assert "a bug in a route" in caplog.text and "GET '/fail'" in caplog.text


def test_head_and_204_have_no_length_added(server):
    with connect(server) as s:
        s.sendall(get("/empty"))
        status, headers, body = response(s)
        assert status == 204 and "content-length" not in headers and body == b""
        s.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _ = response(s)
        assert status == 200 and "content-length" not in headers


def test_a_length_is_added_once_and_never_to_a_304(server):
    with connect(server) as s:
        s.sendall(get("/n"))
        data = s.recv(65536)
        while b"\r\n\r\n" not in data:
            data += s.recv(65536)
        head = data.partition(b"\r\n\r\n")[0]
        assert b"\r\nContent-Length: " in head  # added by the server, spelt as HTTP writes it
        s.sendall(get("/own-length"))
        data = b""
        while not data.endswith(b"abc"):
            data += s.recv(65536)
        assert data.lower().count(b"content-length") == 1 and data.endswith(b"\r\n\r\nabc")
        s.sendall(get("/not-modified"))
        status, headers, body = response(s)
        assert status == 304 and "content-length" not in headers and headers["etag"] == '"1"' and body == b""


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_an_answer_http_cannot_carry_becomes_a_500_and_a_close(server, caplog, method):
    with connect(server) as s:
        s.sendall(f"{method} /broken HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 500 Internal Server Error\r\n") and b"Connection: close" in head
    assert b"evil" not in data and b"never sent" not in data
    if method == "HEAD":
        assert body == b""
    else:
        rid = re.fullmatch(r"internal error \(request (\w+)\): see the log", json.loads(body)["error"]).group(1)
        assert f"127.0.0.1: request {rid}: the page's answer '200 OK' is not HTTP" in caplog.text


def test_a_stream_is_sent_as_it_comes_then_closed(server):
    with connect(server) as s:
        s.sendall(get("/events"))
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"Transfer-Encoding: chunked" in head and b"Connection: close" in head
    chunks = []
    while True:  # one chunk per event, each sent as it came
        size, _, body = body.partition(b"\r\n")
        if not int(size, 16):
            break
        chunks.append(body[: int(size, 16)])
        body = body[int(size, 16) + 2 :]
    assert chunks == [b"data: 0\n\n", b"data: 1\n\n", b"data: 2\n\n"] and body == b"\r\n"
    deadline = time.monotonic() + 2
    while not streams[-1].closed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert streams[-1].closed  # the stream's own close ran, which frees its slot in web_ui/live.py


def test_the_server_stops_and_frees_its_port():
    s = PageServer(app, "127.0.0.1", 0, SHORT)
    s.start()
    port = s.port
    idle = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.close()
    assert closed_within(idle, 2) < 2
    idle.close()
    PageServer(app, "127.0.0.1", port, SHORT).socket.close()  # free again


def test_the_connection_limit_leaves_files_for_the_rest_of_the_daemon(monkeypatch):
    import resource

    from web_ui.server import FDS_KEPT_BACK, connection_limit

    assert FDS_KEPT_BACK == 96 and connection_limit(1024) == 1024 - 96 and connection_limit(100) == 32  # at least 32
    monkeypatch.setattr(resource, "getrlimit", lambda which: (4096, resource.RLIM_INFINITY))
    page = PageServer(app, "127.0.0.1", 0)  # the daemon's limits: from the open-file limit
    page.socket.close()
    assert connection_limit() == 4000 and page.limits.max_connections == 4000
    monkeypatch.setattr(resource, "getrlimit", lambda which: (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    assert connection_limit() == 65536 - 96


def test_options_asterisk_reaches_the_app_and_ipv6_is_served():
    s = PageServer(app, "::1", 0, SHORT)
    s.start()
    try:
        with socket.create_connection(("::1", s.port), timeout=5) as c:
            c.sendall(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
            seen = json.loads(response(c)[2])
        assert seen["method"] == "OPTIONS" and seen["path"] == "*" and seen["remote"] == "::1"
    finally:
        s.close()
