"""Raw HTTP/1.1 against the real daemon: each request of a table gets the status RFC 9112 and 9110 ask for, and the
connection stays open or closes as it should; HEAD is GET without a body everywhere; no client can flood the log;
and hypothesis throws raw bytes at the server (no 5xx but 501 and 505, an answer to every request, no traceback,
no growth)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import h11
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device.roomview import RoomView
from device.store import Store
from tests.conftest import DaemonProcess, isolated_env
from web_ui.network_log import NetworkLog
from web_ui.openapi import OPENAPI

H = b"Host: 127.0.0.1\r\n"
CLOSE = b"Connection: close\r\n"
PROBE = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("http")
    d = DaemonProcess(tmp, env=isolated_env(tmp))
    d.wait_healthy()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def owner(box):
    """A signed-in session (which also sets the password): (cookie header, CSRF token)."""
    http = box.login()
    return "; ".join(f"{c.name}={c.value}" for c in http.cookies), http.headers["X-CSRF-Token"]


def source(i: int) -> str:
    return f"127.0.0.{2 + i % 200}"


def talk(port: int, raw: bytes, i: int = 0, half_close: bool = False, timeout: float = 5.0) -> bytes:
    """Send raw bytes on a new connection and read until the box closes it (or `timeout` passes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source(i), 0)) as s:
        s.sendall(raw)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        answer = b""
        try:
            while chunk := s.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    return answer


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def answers(data: bytes, methods: list[bytes]) -> tuple[list[int], list[Answer]]:
    """The interim (1xx) statuses and the responses in `data`, read by h11 as a client that sent `methods`."""
    client = h11.Connection(h11.CLIENT)
    client.receive_data(data)
    client.receive_data(b"")
    interim: list[int] = []
    out: list[Answer] = []
    for method in methods:
        client.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
        client.send(h11.EndOfMessage())
        body = b""
        while True:
            event = client.next_event()
            if type(event) is h11.InformationalResponse:
                interim.append(event.status_code)
            elif type(event) is h11.Response:
                head = event
            elif type(event) is h11.Data:
                body += event.data
            elif type(event) is h11.EndOfMessage:
                out.append(Answer(head.status_code, {k.decode(): v.decode("latin-1") for k, v in head.headers}, body))
                break
            else:  # the box closed before another answer
                return interim, out
        if client.our_state is not h11.DONE or client.their_state is not h11.DONE:
            break
        client.start_next_cycle()
    return interim, out


# -- the table ----------------------------------------------------------------------------------------------------
# (what, raw request(s); {cookie} and {csrf} are filled in, expected statuses in order, whether the connection stays
# open for a following request, and text the last answer's body must hold). After each raw request the test sends
# PROBE: a connection that stays open answers it with a 200 as well; one that closes does not.
def chunked(data: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(data[i : i + 7]), data[i : i + 7]) for i in range(0, len(data), 7)) + (
        b"0\r\n\r\n"
    )


SECRET_COOKIE = b"Cookie: moodbox_session=do-not-echo-me\r\n"
ME = b"Cookie: {cookie}\r\nX-CSRF-Token: {csrf}\r\nContent-Type: application/json\r\n"
# fmt: off
CASES = [
    # issue 33, 1: superscript digits are not digits
    ("Content-Length ²", b"GET /healthz HTTP/1.1\r\n" + H + b"Content-Length: \xb2\r\n\r\n", [400], False,
     "Content-Length"),
    ("Host port ²", b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:\xb2\r\n\r\n", [400], True, "not a host name"),
    ("Origin port ¹", b"POST /login HTTP/1.1\r\n" + H + b"Origin: http://127.0.0.1:\xb9\r\nContent-Length: 0\r\n\r\n",
     [403], True, "another site"),
    # 2: only ASCII whitespace is whitespace; a request hidden behind a body is not served
    ("Content-Length NBSP", b"POST /login HTTP/1.1\r\n" + H + b"Content-Length: 5\xa0\r\n\r\nabcdeGET /api/state "
     b"HTTP/1.1\r\n" + H + b"\r\n", [400], False, "Content-Length"),
    ("Content-Length NEL", b"POST /login HTTP/1.1\r\n" + H + b"Content-Length: 5\x85\r\n\r\nabcde", [400], False, ""),
    # 3: HTTP/1.1 needs Host, on open and on signed-in routes alike; HTTP/1.0 does not
    ("1.1 without Host", b"GET /healthz HTTP/1.1\r\n\r\n", [400], False, "needs a Host header"),
    ("1.1 without Host, signed in", b"GET /api/state HTTP/1.1\r\nCookie: {cookie}\r\n\r\n", [400], False, "Host"),
    ("1.0 without Host", b"GET /healthz HTTP/1.0\r\n\r\n", [200], False, ""),
    # 4: no 100 Continue to HTTP/1.0 (the test checks the interim answers), 100 Continue to HTTP/1.1
    ("100-continue 1.0", b"POST /api/not-my-mood HTTP/1.0\r\n" + H + ME + b"Expect: 100-continue\r\n"
     b"Content-Length: 14\r\n\r\n{\"mood\": null}", [200], False, "override"),
    ("100-continue 1.1", b"POST /api/not-my-mood HTTP/1.1\r\n" + H + ME + b"Expect: 100-continue\r\n"
     b"Content-Length: 14\r\n\r\n{\"mood\": null}", [200], True, "override"),
    ("100-continue, too big", b"POST /login HTTP/1.1\r\n" + H + b"Expect: 100-continue\r\n"
     b"Content-Length: 99999999\r\n\r\n", [413], False, "over 65536 bytes"),
    # 5: chunked bodies are read, within the same 64 KB
    ("chunked", b"POST /api/not-my-mood HTTP/1.1\r\n" + H + ME + b"Transfer-Encoding: chunked\r\n\r\n"
     + chunked(b'{"mood": "elated"}'), [400], True, "mood must be one of"),
    ("chunked, trailer", b"POST /api/not-my-mood HTTP/1.1\r\n" + H + ME + b"Transfer-Encoding: chunked\r\n\r\n"
     + chunked(b'{"mood": null}')[:-2] + b"X-Trailer: 1\r\n\r\n", [200], True, "override"),
    ("chunked, too big", b"POST /api/not-my-mood HTTP/1.1\r\n" + H + ME + b"Transfer-Encoding: chunked\r\n\r\n"
     + b"10000\r\n" + b"x" * 65536 + b"\r\n1\r\nx\r\n0\r\n\r\n", [413], False, "over 65536 bytes"),
    ("chunked, no CRLF after the data", b"POST /login HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
     b"3\r\nabcXX0\r\n\r\n", [400], False, "malformed request body"),  # CVE-2025-43859, fixed in h11 0.16
    ("chunked, bad size", b"POST /login HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", [400], False,
     "malformed request body"),
    ("gzip", b"POST /login HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n", [501], False, "chunked"),
    # 6: HEAD is GET without a body, the server's own errors included; an over-long request line is a 414
    ("HEAD /login", b"HEAD /login HTTP/1.1\r\n" + H + b"\r\n", [200], True, ""),
    ("HEAD, no Host", b"HEAD /healthz HTTP/1.1\r\n\r\n", [400], False, ""),
    ("HEAD, too big", b"HEAD /healthz HTTP/1.1\r\n" + H + b"X: " + b"a" * 20000 + b"\r\n\r\n", [431], False, ""),
    ("long request line", b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n" + H + b"\r\n", [414], False, "request line"),
    ("long header", b"GET /healthz HTTP/1.1\r\n" + H + b"X: " + b"a" * 20000 + b"\r\n\r\n", [431], False, "16384"),
    ("many headers", b"GET /healthz HTTP/1.1\r\n" + H + b"X: a\r\n" * 3000 + b"\r\n", [431], False, "16384"),
    ("blank lines first", b"\r\n\r\n\n" + b"GET /healthz HTTP/1.1\r\n" + H + b"\r\n", [200], True, ""),
    ("blank lines between", b"GET /healthz HTTP/1.1\r\n" + H + b"\r\n\r\n\r\nGET /healthz HTTP/1.1\r\n" + H + b"\r\n",
     [200, 200], True, ""),
    # what held before h11 and must still hold
    ("CL + TE", b"POST /login HTTP/1.1\r\n" + H + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"0\r\n\r\n", [400], False, "not both"),
    ("TE + CL", b"POST /login HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"
     b"0\r\n\r\n", [400], False, "not both"),
    ("conflicting lengths", b"POST /login HTTP/1.1\r\n" + H + b"Content-Length: 1, 2\r\n\r\nab", [400], False, ""),
    ("two lengths", b"POST /login HTTP/1.1\r\n" + H + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab", [400],
     False, ""),
    ("negative length", b"POST /login HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n", [400], False, ""),
    ("huge length", b"POST /login HTTP/1.1\r\n" + H + b"Content-Length: 99999999\r\n\r\n", [413], False, "65536"),
    # obs-fold is replaced by a space (RFC 9112 5.2), so a folded Host is no host; a fold with nothing to fold is a 400
    ("obs-fold", b"GET /healthz HTTP/1.1\r\n" + H + b"X-A: 1\r\n 2\r\n\r\n", [200], True, ""),
    ("obs-fold into Host", b"GET /healthz HTTP/1.1\r\n" + H + b" folded\r\n\r\n", [400], True, "not a host name"),
    ("obs-fold first", b"GET /healthz HTTP/1.1\r\n X: 1\r\n" + H + b"\r\n", [400], False, ""),
    # a bare LF ends a line, as RFC 9112 2.2 allows; a bare CR is refused
    ("bare LF", b"GET /healthz HTTP/1.1\nHost: 127.0.0.1\n\n", [200], True, ""),
    ("bare LF at the end", b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\n\n", [200], True, ""),
    ("bare CR", b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\rX-A: 1\r\n\r\n", [400], False, ""),
    ("NUL in a header", b"GET /healthz HTTP/1.1\r\n" + H + b"X-A: 1\x002\r\n\r\n", [400], False, ""),
    ("NUL in the target", b"GET /healthz\x00 HTTP/1.1\r\n" + H + b"\r\n", [400], False, ""),
    ("space before colon", b"GET /healthz HTTP/1.1\r\n" + H + b"X-A : 1\r\n\r\n", [400], False, ""),
    ("no colon", b"GET /healthz HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n", [400], False, ""),
    ("two Hosts", b"GET /healthz HTTP/1.1\r\n" + H + b"Host: evil.example\r\n\r\n", [400], False, ""),
    ("pipelined", b"GET /healthz HTTP/1.1\r\n" + H + b"\r\nHEAD /healthz HTTP/1.1\r\n" + H + b"\r\n"
     b"GET /api/state HTTP/1.1\r\n" + H + b"\r\n", [200, 200, 401], True, "sign in"),
    ("pipelined, then bad", b"GET /healthz HTTP/1.1\r\n" + H + b"\r\nGET /healthz HTTP/1.1\r\n" + H
     + b"Content-Length: \xb2\r\n\r\n", [200, 400], False, ""),
    ("Connection: close", b"GET /healthz HTTP/1.1\r\n" + H + CLOSE + b"\r\n", [200], False, ""),
    ("absolute form, other host", b"GET http://evil.example/healthz HTTP/1.1\r\n" + H + b"\r\n", [421], True, ""),
    ("absolute form, own host", b"GET http://127.0.0.1/healthz HTTP/1.1\r\nHost: evil.example\r\n\r\n", [200], True,
     ""),
    ("absolute form, user name", b"GET http://evil.example:80@127.0.0.1/healthz HTTP/1.1\r\n" + H + b"\r\n", [400],
     False, "no user name"),
    ("absolute form, open bracket", b"GET http://[::1/healthz HTTP/1.1\r\n" + H + b"\r\n", [400], False, ""),
    ("absolute form, not ASCII", b"GET http://caf\xc3\xa9/healthz HTTP/1.1\r\n" + H + b"\r\n", [400], False, ""),
    ("CONNECT", b"CONNECT 127.0.0.1:443 HTTP/1.1\r\n" + H + b"\r\n", [400], False, "CONNECT"),
    ("TRACE", b"TRACE /healthz HTTP/1.1\r\n" + H + SECRET_COOKIE + b"\r\n", [405], True, ""),
    ("TRACE, signed-in route", b"TRACE /api/state HTTP/1.1\r\n" + H + SECRET_COOKIE + b"\r\n", [401], True, ""),
    ("traversal", b"GET /static/../device/config.py HTTP/1.1\r\n" + H + b"\r\n", [404], True, ""),
    ("traversal, encoded", b"GET /static/%2e%2e/device/config.py HTTP/1.1\r\n" + H + b"\r\n", [404], True, ""),
    ("traversal, encoded slash", b"GET /static/..%2f..%2fdevice%2fconfig.py HTTP/1.1\r\n" + H + b"\r\n", [404], True,
     ""),
    # Werkzeug merges the slashes: a redirect to /static/etc/passwd, which is a 404
    ("traversal, absolute", b"GET /static//etc/passwd HTTP/1.1\r\n" + H + b"\r\n", [308], True, ""),
    ("lower-case method", b"get /healthz HTTP/1.1\r\n" + H + b"\r\n", [501], False, "upper case"),
    ("HTTP/0.9", b"GET /healthz\r\n\r\n", [400], False, ""),
    ("HTTP/2.0", b"GET /healthz HTTP/2.0\r\n" + H + b"\r\n", [505], False, "HTTP/1.1"),
    ("relative target", b"GET healthz HTTP/1.1\r\n" + H + b"\r\n", [400], False, "path"),
    ("not ASCII target", b"GET /caf\xc3\xa9 HTTP/1.1\r\n" + H + b"\r\n", [400], False, ""),
    ("TLS", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", [400], False, "not HTTPS"),
    # answered at once, not after the 10 s deadline (the reads give up after 5 s): a ClientHello has no CRLF CRLF
    ("TLS, no blank line", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(14, 128)), [400], False, ""),
]
# fmt: on


@pytest.mark.parametrize(("raw", "statuses", "stays_open", "says"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_raw_requests_get_the_answer_the_rfc_asks_for(box, owner, raw, statuses, stays_open, says):
    cookie, csrf = owner
    raw = raw.replace(b"{cookie}", cookie.encode()).replace(b"{csrf}", csrf.encode())
    logged = len(box.log())
    found = [m.upper() for m in re.findall(rb"(?m)^(HEAD|GET|POST|TRACE|CONNECT|get) ", raw)]
    methods = [found[i] if i < len(found) else b"GET" for i in range(len(statuses))] + [b"GET"]  # and the probe
    # the end of input lets a refusing box close at once instead of reading on for a second; a TLS handshake must
    # be answered without it
    data = talk(box.port, raw + PROBE, half_close=not raw.startswith(b"\x16"))
    interim, got = answers(data, methods)
    assert [a.status for a in got[: len(statuses)]] == statuses, data[:600]
    last = got[len(statuses) - 1]
    assert says in last.body.decode("utf-8", "replace"), last.body[:300]
    assert (len(got) == len(statuses) + 1) is stays_open, f"stays open: {stays_open}, got {[a.status for a in got]}"
    if stays_open:
        assert got[-1].status == 200
    assert interim == (
        [100] if b"HTTP/1.1\r\n" in raw and b"Expect: 100-continue" in raw and 413 not in statuses else []
    )
    for answer, method in zip(got, methods, strict=False):
        if method == b"HEAD":
            assert answer.body == b"" and int(answer.headers.get("content-length", "1")) > 0
        assert b"do-not-echo-me" not in answer.body and b"pydantic" not in answer.body  # TRACE; /static traversal
        assert not re.search(rb"\w+(Error|Exception)\b", answer.body), answer.body[:300]  # no Python exception
    assert "Traceback" not in box.log()[logged:]


def test_a_head_that_ends_in_the_server_own_error_carries_no_body(box):
    for raw in (
        b"HEAD /healthz HTTP/1.1\r\n\r\n",
        b"HEAD /healthz HTTP/1.1\r\n" + H + b"Content-Length: 99999999\r\n\r\n",
    ):
        data = talk(box.port, raw)
        head, _, rest = data.partition(b"\r\n\r\n")
        assert re.match(rb"HTTP/1.1 4\d\d .*\r\nContent-Length: [1-9]", head, re.S) and rest == b"", data


def test_an_unfinished_over_long_request_line_is_a_414_at_once(box):
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", box.port), timeout=5) as s:
        s.sendall(b"GET /" + b"a" * 20000)
        assert s.recv(100).startswith(b"HTTP/1.1 414 ") and time.monotonic() - start < 2


# -- HEAD on every route -------------------------------------------------------------------------------------------
GET_PATHS = sorted(
    {p for p, ops in OPENAPI["paths"].items() if "get" in ops}
    | {"/", "/history", "/settings", "/system", "/videos", "/login", "/setup", "/favicon.ico", "/callback"}
    | {"/static/app.js", "/static/nope.js", "/nope", "/api/nope"}
)


@pytest.mark.parametrize("signed_in", [False, True])
def test_head_is_get_without_a_body_on_every_route(box, owner, signed_in):
    """Same status and type, no body (and nothing after the head: the next answer on the connection parses)."""
    cookie = b"Cookie: " + owner[0].encode() + b"\r\n" if signed_in else b""
    for path in GET_PATHS:
        one = b"%s " + path.encode() + b" HTTP/1.1\r\n" + H + cookie + b"\r\n"
        if signed_in and path == "/api/events":  # a GET would stream for minutes
            _, (head, probe) = answers(talk(box.port, one % b"HEAD" + PROBE), [b"HEAD", b"GET"])
            assert head.status == 200 and head.headers["content-type"] == "text/event-stream" and head.body == b""
            continue
        data = talk(box.port, one % b"HEAD" + one % b"GET" + PROBE)
        _, (head, get, probe) = answers(data, [b"HEAD", b"GET", b"GET"])
        assert head.status == get.status and probe.status == 200, (path, head.status, get.status)
        assert head.body == b"" and get.body, path
        assert head.headers["content-type"] == get.headers["content-type"], path
        if path in ("/static/app.js", "/favicon.ico", "/api/openapi.json", "/nope", "/api/nope", "/setup"):
            assert head.headers["content-length"] == get.headers["content-length"], path


# -- the log --------------------------------------------------------------------------------------------------------
def test_300_pipelined_bad_requests_add_little_to_the_log(box):
    bad = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:\xb2\r\n\r\n"  # answered 400 by the page, connection kept
    before = box.log_path.stat().st_size
    data = talk(box.port, bad * 299 + b"GET /healthz HTTP/1.1\r\n" + H + b"Content-Length: \xb2\r\n\r\n", i=50)
    assert data.count(b"HTTP/1.1 400 ") == 300
    grown = box.log_path.stat().st_size - before
    print(f"300 pipelined bad requests from one socket: the log grew {grown} bytes")
    assert grown < 20_000
    # the next line written from that address says how many were left out
    end = time.monotonic() + 10
    while "were not logged" not in box.log()[-2000:]:
        assert time.monotonic() < end, box.log()[-2000:]
        talk(box.port, bad + PROBE, i=50)
        time.sleep(0.5)
    line = next(x for x in box.log().splitlines()[::-1] if "were not logged" in x)
    assert "127.0.0.52" in line and re.search(r"\((\d+) more from this address", line), line


def test_bad_requests_from_many_addresses_stay_within_the_total_budget(box):
    bad = (
        b"GET /healthz HTTP/1.1\r\nHost: evil.example\r\n\r\n" * 20 + b"GET /healthz HTTP/1.1\r\n" + H + CLOSE + b"\r\n"
    )
    before = box.log_path.stat().st_size
    start = time.monotonic()
    threads = [threading.Thread(target=talk, args=(box.port, bad, 60 + i)) for i in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.monotonic() - start
    grown = box.log_path.stat().st_size - before
    print(f"2,000 refused requests from 100 addresses in {seconds:.1f} s: the log grew {grown} bytes")
    assert grown < 16384 + 2048 * (seconds + 1) + 4096


def test_the_network_log_keeps_to_its_budget_and_counts_what_it_leaves_out(caplog):
    now = [0.0]
    logger = logging.getLogger("test.network_log")
    net = NetworkLog(logger, per_address=1000, per_address_rate=100, total=3000, total_rate=300, clock=lambda: now[0])
    with caplog.at_level("INFO", logger="test.network_log"):
        written = [net.info("10.0.0.1", "refused %s", "x" * 100) for _ in range(20)]
        assert written.count(True) == 5  # 5 x (116 + 80) bytes fit in 1000
        now[0] += 2.0  # 200 bytes back: one more line, which says what was left out
        assert net.info("10.0.0.1", "refused again")
        assert "(15 more from this address and 15 in all were not logged: too many)" in caplog.records[-1].message
        for i in range(40):  # other addresses: the total bucket (3000, 600 refilled) runs out
            net.info(f"10.0.1.{i}", "refused %s", "y" * 100)
        written = sum("yyy" in r.message for r in caplog.records)
        assert 10 <= written <= 15, written
        assert net.report() == 40 - written and "were not written" in caplog.records[-1].message
        assert net.report() == 0
        now[0] += 10
        assert net.info("2001:db8::1", "a" * 400) and net.info("2001:db8::2", "b" * 400)  # one /64: one budget
        assert not net.info("2001:db8::3", "c" * 400) and net.info("2001:db8:0:1::1", "d" * 400)
        assert all(r.message.startswith(("10.0.", "2001:db8:")) for r in caplog.records if "were not" not in r.message)


def test_a_500_names_no_exception_and_its_id_is_in_the_log(tmp_path, caplog):
    """The page's handler of last resort, on the real app with a box whose health check breaks."""
    from web_ui import create_app

    def broken_health():
        raise ZeroDivisionError("the health check broke")

    box = SimpleNamespace(
        config=SimpleNamespace(web=SimpleNamespace(extra_names=[])),
        view=RoomView(),
        store=Store(tmp_path / "moodbox.db"),
        state_dir=tmp_path,
        health=broken_health,
    )
    client = create_app(box).test_client()
    with caplog.at_level("ERROR"):
        r = client.get("/healthz", headers={"Host": "localhost"})
        head = client.head("/healthz", headers={"Host": "localhost"})
    assert r.status_code == 500 and head.status_code == 500 and head.data == b""
    error = r.get_json()["error"]
    rid = re.fullmatch(r"internal error \(request ([0-9a-f]{8})\): see the log", error)[1]
    assert "ZeroDivision" not in r.get_data(as_text=True)
    line = next(rec for rec in caplog.records if rid in rec.getMessage())
    assert "ZeroDivisionError" in line.getMessage() and "/healthz" in line.getMessage()


def test_an_answer_that_breaks_http_is_a_500_with_a_request_id(caplog):
    """The server's own last resort, in front of a WSGI app whose header holds a line break."""
    from web_ui.server import PageServer

    def app(environ, start_response):
        start_response("200 OK", [("X-Bad", "a\r\nSet-Cookie: injected=1")])
        return [b"hello"]

    server = PageServer(app, "127.0.0.1", 0)
    server.start()
    try:
        with caplog.at_level("INFO"):
            data = talk(server.port, b"GET / HTTP/1.1\r\n" + H + b"\r\n", half_close=True)
    finally:
        server.close()
    _, (answer,) = answers(data, [b"GET"])
    rid = re.search(rb"internal error \(request ([0-9a-f]{8})\)", answer.body)[1].decode()
    assert answer.status == 500 and b"injected" not in data
    assert any(rid in r.getMessage() and "not HTTP" in r.getMessage() for r in caplog.records)


# -- a flood of blank lines ---------------------------------------------------------------------------------------
def test_a_flood_of_blank_lines_does_not_slow_the_page_for_others(box):
    def p95() -> float:
        times = []
        for i in range(40):
            start = time.monotonic()
            assert talk(box.port, PROBE, i=100 + i).startswith(b"HTTP/1.1 200 ")
            times.append(time.monotonic() - start)
        return statistics.quantiles(times, n=20)[18]

    quiet = p95()
    stop = threading.Event()
    sent = [0]

    def flood() -> None:
        with socket.create_connection(("127.0.0.1", box.port), source_address=(source(150), 0)) as s:
            chunk = b"\r\n" * 32768
            with contextlib.suppress(OSError):  # closed by the box after 30 s idle
                while not stop.is_set():
                    s.sendall(chunk)
                    sent[0] += len(chunk)

    flooding = threading.Thread(target=flood, daemon=True)
    flooding.start()
    try:
        loud = p95()
    finally:
        stop.set()
        flooding.join(5)
    print(
        f"/healthz p95 {quiet * 1000:.1f} ms quiet, {loud * 1000:.1f} ms beside {sent[0] / 1e6:.0f} MB of blank lines"
    )
    assert sent[0] > 1e6 and loud < 0.5


# -- fuzzing the raw bytes ------------------------------------------------------------------------------------------
def resources(pid: int) -> tuple[float, int]:
    """(RSS in MB, open files) of a process."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return rss / 1024, len(os.listdir(f"/proc/{pid}/fd"))


METHODS = [b"GET", b"HEAD", b"POST", b"PUT", b"PATCH", b"DELETE", b"OPTIONS", b"TRACE", b"CONNECT", b"get", b"G T"]
TARGETS = [
    b"/healthz",
    b"/",
    b"/login",
    b"/setup",
    b"/api/state",
    b"/api/events",
    b"/api/settings",
    b"/static/app.js",
    b"/static/../device/config.py",
    b"/static/%2e%2e/x",
    b"*",
    b"http://127.0.0.1/healthz",
    b"http://evil/",
    b"http://a@b/",
    b"127.0.0.1:443",
    b"/%00",
    b"/caf\xc3\xa9",
    b"/" + b"a" * 17000,
    b"",
]
VERSIONS = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.10", b"http/1.1", b"HTTP/1.1 x", b""]
HEADERS = [
    b"Host: 127.0.0.1",
    b"Host: 127.0.0.1:\xb2",
    b"Host: evil.example",
    b"Host: [::1",
    b"Host: ",
    b"Host: a b",
    b"Content-Length: 0",
    b"Content-Length: 5",
    b"Content-Length: \xb2",
    b"Content-Length: 5\xa0",
    b"Content-Length: -1",
    b"Content-Length: 1, 2",
    b"Content-Length: 99999999999999999999",
    b"Transfer-Encoding: chunked",
    b"Transfer-Encoding: gzip",
    b"Expect: 100-continue",
    b"Connection: close",
    b"Connection: keep-alive",
    b"Origin: http://127.0.0.1:\xb9",
    b"Origin: null",
    b"Content-Type: application/json",
    b"Content-Type: application/x-www-form-urlencoded",
    b"Cookie: moodbox_session=x",
    b"X-A: 1\r\n 2",
    b" X: 1",
    b"X-A: \x00",
    b"X-A: \xff\xfe",
    b"X_A: 1",
    b"X : 1",
    b"NoColon",
    b"X-Big: " + b"b" * 9000,
]
BODIES = [b"", b"abcde", b'{"mood": null}', b"3\r\nabc\r\n0\r\n\r\n", b"zz\r\n", b"password=x&csrf_token=y", b"\r\n"]


@st.composite
def raw_request(draw) -> bytes:
    eol = draw(st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r"]))
    line = b" ".join([draw(st.sampled_from(METHODS)), draw(st.sampled_from(TARGETS)), draw(st.sampled_from(VERSIONS))])
    headers = draw(st.lists(st.sampled_from(HEADERS), max_size=6))
    data = eol.join([line, *headers]) + eol + eol + draw(st.sampled_from(BODIES))
    data = draw(st.sampled_from([b"", b"\r\n", b"\r\n\r\n"])) + data
    for _ in range(draw(st.integers(0, 3))):  # a few bytes changed, inserted or cut anywhere
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=3)) + data[at + draw(st.integers(0, 3)) :]
    if draw(st.integers(0, 9)) == 0:
        data = draw(st.binary(min_size=1, max_size=300))
    return data * draw(st.sampled_from([1, 1, 1, 2]))  # sometimes pipelined


def test_fuzzed_raw_requests_get_answers_and_change_nothing(box):
    """Each example is sent on a new connection that then ends its input, so an unfinished request is answered at
    once (400) instead of at the 10 s deadline. No answer comes only for input that holds no request at all."""
    pid = box.proc.pid
    for i in range(30):  # warm up: the pool's threads and the page's caches
        talk(box.port, b"GET /login HTTP/1.1\r\n" + H + CLOSE + b"\r\n", i=i)
    rss_before, files_before = resources(pid)
    logged = len(box.log())
    examples = [0]

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(raw=raw_request())
    def one(raw: bytes) -> None:
        examples[0] += 1
        data = talk(box.port, raw, i=examples[0], half_close=True)
        if raw.strip(b"\r\n"):
            assert re.match(rb"HTTP/1\.1 [1-5]\d\d ", data), (raw[:300], data[:300])
        else:
            assert data == b"", (raw, data)
        statuses = [int(s) for s in re.findall(rb"HTTP/1\.1 (\d{3}) [A-Z][a-zA-Z ]*\r\n", data)]
        assert all(s < 500 or s in (501, 505) for s in statuses), (raw[:300], data[:500])

    one()
    end = time.monotonic() + 5  # closed connections leave the box's table within a moment
    while resources(pid)[1] > files_before + 2 and time.monotonic() < end:
        time.sleep(0.1)
    rss_after, files_after = resources(pid)
    print(
        f"{examples[0]} fuzzed requests: RSS {rss_before:.1f} -> {rss_after:.1f} MB, files {files_before} -> {files_after}"
    )
    assert "Traceback" not in box.log()[logged:]
    assert files_after <= files_before + 2 and rss_after < rss_before + 10
