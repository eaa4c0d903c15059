"""From a request h11 has read to the Flask app and back: the WSGI environ (PEP 3333), and the app's answer."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote_to_bytes

import h11

from web_ui.network_log import network_log, request_id

Answer = tuple[str, list[tuple[str, str]], Any]  # status line, headers, body bytes or an async stream


def environ(
    request: h11.Request, target: str, authority: str, body: bytes, local: tuple, peer: tuple
) -> dict[str, Any]:
    """`target` is the path and query (from an absolute-form target too, whose `authority` is then the host)."""
    path, _, query = target.partition("?")
    result: dict[str, Any] = {
        "REQUEST_METHOD": request.method.decode("ascii"),
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
        "QUERY_STRING": query,
        "SERVER_NAME": unmapped(local[0]),
        "SERVER_PORT": str(local[1]),
        "SERVER_PROTOCOL": "HTTP/" + request.http_version.decode("ascii"),
        "REMOTE_ADDR": unmapped(peer[0]),
        "REMOTE_PORT": str(peer[1]),
        "CONTENT_LENGTH": str(len(body)),  # the body as read, chunked or not
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
    for raw_name, value in request.headers:
        name = raw_name.decode("ascii")
        if "_" in name or name in ("content-length", "transfer-encoding"):
            continue  # X_Forwarded_For and X-Forwarded-For would meet in the same key; the body is already read
        key = name.upper().replace("-", "_")
        text = value.decode("latin-1")
        if key == "CONTENT_TYPE":
            result[key] = text
            continue
        key = "HTTP_" + key
        before = result.get(key)
        result[key] = text if before is None else before + ("; " if key == "HTTP_COOKIE" else ",") + text
    if authority:  # the target's host is the request's host, whatever the Host header says (RFC 9112 3.2.2)
        result["HTTP_HOST"] = authority
    return result


def call(app: Callable, environ: dict[str, Any]) -> Answer:
    """Run the app (in a pool thread): the whole body, or the stream itself when it has `__aiter__`."""
    answer: list[Any] = []
    chunks: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None):
        if exc_info and answer:
            raise exc_info[1].with_traceback(exc_info[2])
        answer[:] = [status, list(headers)]
        return chunks.append

    try:
        result: Iterable[bytes] = app(environ, start_response)
        if hasattr(result, "__aiter__"):
            return answer[0], answer[1], result
        try:
            chunks.extend(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        return answer[0], answer[1], b"".join(chunks)
    except Exception:
        rid = request_id()
        method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"][:200]
        network_log.exception(environ["REMOTE_ADDR"], "request %s: %s %r failed in the page", rid, method, path)
        body = f"internal error (request {rid}): see the log\n".encode()
        return "500 Internal Server Error", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))], body


def unmapped(address: str) -> str:
    """127.0.0.1 for ::ffff:127.0.0.1 (an IPv4 client of a dual-stack socket)."""
    return address[7:] if address.startswith("::ffff:") and "." in address else address
