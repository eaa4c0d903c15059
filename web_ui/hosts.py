"""The box's own names and addresses: the page answers only to them (a defence against DNS rebinding).

A web page on evil.example can point its own name at the box's address and then script requests to it; the browser
sends `Host: evil.example`. So a request is answered only when its Host is moodbox.local, the box's hostname (with
or without .local), localhost, a loopback address, or an address of the box; and a change (POST, PATCH, PUT,
DELETE) that carries an Origin must come from a page served by the box itself, on the same port.
"""

from __future__ import annotations

import ipaddress
import socket
from functools import cached_property
from urllib.parse import urlsplit

CHANGES = {"POST", "PATCH", "PUT", "DELETE"}


def split_host(value: str) -> tuple[str, int | None] | None:
    """("name", port) from a Host header or an origin's authority; None if malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        name, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port = rest[1:] or None
    else:
        name, _, port = value.partition(":")
        port = port or None
    if port is not None and (not port.isdigit() or not 0 < int(port) < 65536):
        return None
    name = name.rstrip(".")
    return (name, int(port) if port else None) if name else None


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
            return None  # HTTP/1.0 tools; browsers always send Host
        parsed = split_host(host)
        if parsed is None or not self.is_own(parsed[0], local_addr):
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
        parts = urlsplit(origin)
        if parts.scheme != "http" or parts.path or parts.query:
            return False  # includes "null", sent by sandboxed frames and some redirects
        authority = split_host(parts.netloc)
        if authority is None:
            return False
        name, origin_port = authority
        return self.is_own(name, local_addr) and (origin_port or 80) == port and name == host
