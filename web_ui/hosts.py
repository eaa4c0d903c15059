"""The box's own names and addresses: the page answers only to them (a defence against DNS rebinding).

A web page on evil.example can point its own name at the box's address and then script requests to it; the browser
sends `Host: evil.example`. So a request is answered only when its Host is moodbox.local, the box's hostname (with
or without .local), localhost, a loopback address, or an address of the box; and a change (POST, PATCH, PUT,
DELETE) that carries an Origin must come from a page served by the box itself, on the same port.

Hosts, origins and ports are read here and nowhere else, in ASCII only: a byte such as 0xB2 (a superscript two in
latin-1) is not a digit, however `str.isdigit()` sees it. A Host that is not a host name or address is a 400
(RFC 9112 3.2); a well-formed one that is not the box's own is a 421.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from functools import cached_property

CHANGES = {"POST", "PATCH", "PUT", "DELETE"}
# host [":" port]: a name (letters, digits, "-", "_", "."), or an IPv6 address in brackets with an optional zone
AUTHORITY = re.compile(r"(?:\[([0-9a-f:.]+(?:%25[0-9a-z._~-]+|%[0-9a-z._~-]+)?)\]|([0-9a-z._-]*))(?::([0-9]{0,5}))?")
ORIGIN = re.compile(r"([a-z][a-z0-9+.-]*)://([^/?#@]*)")
ABSOLUTE_TARGET = re.compile(r"(?i:https?)://([^/?#@]*)([/?].*)?")


def split_host(value: str) -> tuple[str, int | None] | None:
    """("name", port) from a Host header or an origin's authority, the name in lower case and "" when empty (an
    empty Host is well-formed, and no name of the box's); None if malformed."""
    value = value.strip(" \t").lower()
    if not value.isascii() or (m := AUTHORITY.fullmatch(value)) is None:
        return None
    name, port = m[1].replace("%25", "%") if m[1] else (m[2] or "").rstrip("."), m[3]
    if port and not 0 < int(port) < 65536:
        return None
    return name, int(port) if port else None


def split_origin(value: str) -> tuple[str, str, int | None] | None:
    """(scheme, name, port) of an Origin header (scheme://host[:port], nothing after); None if malformed or
    "null" (sent by sandboxed frames and some redirects)."""
    if not value.isascii() or (m := ORIGIN.fullmatch(value.strip(" \t").lower())) is None:
        return None
    authority = split_host(m[2])
    return (m[1], *authority) if authority and authority[0] else None


def split_absolute_target(target: str) -> tuple[str, str] | None:
    """(authority, path and query) of an absolute-form request target (`http://host:port/path`, RFC 9112
    3.2.2); None when it has no host or has a user name, which an http URI must not carry (RFC 9110 4.2.4)."""
    m = ABSOLUTE_TARGET.fullmatch(target) if target.isascii() else None
    if m is None or not (split_host(m[1]) or ("",))[0]:
        return None
    rest = m[2] or "/"
    return m[1], rest if rest.startswith("/") else "/" + rest


class OwnNames:
    def __init__(self, hostname: str | None = None, extra: list[str] | tuple[str, ...] = ()) -> None:
        self.hostname = (hostname or socket.gethostname()).lower().rstrip(".")
        self.extra = {name.lower().rstrip(".") for name in extra}  # [web] extra_names, e.g. a router's moodbox.lan

    @cached_property
    def names(self) -> set[str]:
        short = self.hostname.split(".")[0]
        return {"localhost", "moodbox.local", self.hostname, short, short + ".local", *self.extra}

    @cached_property
    def addresses(self) -> set[str]:
        """The addresses the hostname resolves to here (best effort; the connection's own address counts too)."""
        try:
            infos = socket.getaddrinfo(self.hostname, None)
        except OSError:
            return set()
        return {str(ipaddress.ip_address(info[4][0].split("%", maxsplit=1)[0])) for info in infos}

    def is_own(self, name: str, local_addr: str | None = None) -> bool:
        if name in self.names:
            return True
        try:
            address = ipaddress.ip_address(name.split("%", maxsplit=1)[0])
        except ValueError:
            return False
        if address.is_loopback:
            return True
        if local_addr and address == ipaddress.ip_address(local_addr.split("%", maxsplit=1)[0]):
            return True  # the very address this request arrived on
        return str(address) in self.addresses

    def refusal(self, environ: dict) -> tuple[int, str] | None:
        """(status, message) for a request from outside the box's own names, or None to answer it."""
        host = environ.get("HTTP_HOST")
        local_addr = environ.get("moodbox.local_addr")
        if host is None:
            return None  # HTTP/1.0 tools (web_ui/server.py refuses HTTP/1.1 without Host); browsers always send it
        parsed = split_host(host)
        if parsed is None:
            return 400, f"the Host header {host[:80]!r} is not a host name or address, with a port from 1 to 65535"
        if not self.is_own(parsed[0], local_addr):
            return 421, (
                f"this Moodbox answers only to its own names ({', '.join(sorted(self.names))}) and addresses, "
                f"not {host[:80]!r}: open http://moodbox.local:{environ.get('SERVER_PORT', '8080')}/"
            )
        origin = environ.get("HTTP_ORIGIN")
        changes = str(environ.get("REQUEST_METHOD", "")).upper() in CHANGES  # Werkzeug routes "post" as POST
        if changes and origin is not None and not self._same_origin(origin, parsed[0], parsed[1] or 80, local_addr):
            return 403, f"a change from another site ({origin[:80]!r}) is refused: use the Moodbox page itself"
        return None

    def _same_origin(self, origin: str, host: str, port: int, local_addr: str | None) -> bool:
        parts = split_origin(origin)
        if parts is None:
            return False
        scheme, name, origin_port = parts
        return scheme == "http" and self.is_own(name, local_addr) and (origin_port or 80) == port and name == host
