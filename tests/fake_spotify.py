"""A loopback stand-in for Spotify's accounts service and the part of the Web API that Moodbox uses.

It speaks HTTP with the real paths, response shapes and error bodies (including 2026 Development Mode rules:
search limit <= 10, /playlists/{id}/items with `item`, items only for the user's own playlists), checks PKCE
for real (S256 of the verifier), expires and revokes tokens, and can be told to fail the next calls in the ways
Spotify does: 401, 403 PREMIUM_REQUIRED, 404 NO_ACTIVE_DEVICE, 429 with Retry-After or QUOTA_EXCEEDED, 5xx,
slow answers. Every request is recorded with its arrival time.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse


@dataclass
class Failure:
    status: int
    reason: str | None = None
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    body: Any = None


@dataclass
class Request:
    at: float
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any


def track(i: int, tag: str) -> dict:
    tid = hashlib.sha1(f"{tag}{i}".encode()).hexdigest()[:22]
    return {
        "id": tid,
        "uri": f"spotify:track:{tid}",
        "name": f"{tag.title()} song {i}",
        "type": "track",
        "artists": [{"name": f"Artist {i % 7}", "id": f"a{i % 7}", "type": "artist"}],
        "album": {
            "name": f"Album {i % 5}",
            "images": [  # Spotify's shape: 640, 300 and 64 px on its image host
                {"url": f"https://i.scdn.co/image/{size}{tid}", "width": size, "height": size}
                for size in (640, 300, 64)
            ],
        },
        "duration_ms": 180000 + i,
        "is_playable": True,
        "explicit": False,
        "popularity": 50,
    }


class FakeSpotify:
    def __init__(self, premium: bool = True) -> None:
        self.premium = premium
        self.client_id = "moodbox-test-client"
        self.devices = [
            {
                "id": "dev-kitchen",
                "is_active": False,
                "is_private_session": False,
                "is_restricted": False,
                "name": "Kitchen",
                "supports_volume": True,
                "type": "Speaker",
                "volume_percent": 40,
            },
            {
                "id": "dev-living",
                "is_active": False,
                "is_private_session": False,
                "is_restricted": False,
                "name": "Living Room",
                "supports_volume": True,
                "type": "Speaker",
                "volume_percent": 35,
            },
            {
                "id": "dev-tv",
                "is_active": False,
                "is_private_session": False,
                "is_restricted": True,
                "name": "Living Room TV",
                "supports_volume": False,
                "type": "TV",
                "volume_percent": None,
            },
        ]
        self.playlists = {
            "plMine0000000000000001": {
                "name": "Sunday Morning",
                "owner": "household",
                "tracks": [track(i, "sunday") for i in range(12)],
            },
            "plOther000000000000002": {
                "name": "Editorial Hits",
                "owner": "spotify",
                "tracks": [track(i, "hits") for i in range(8)],
            },
        }
        self.saved = [track(i, "saved") for i in range(15)]
        self.top = [track(i, "top") for i in range(30)]
        self.playback: dict[str, Any] | None = None
        self.requests: list[Request] = []
        self._failures: dict[tuple[str, str], deque[Failure]] = {}
        self._codes: dict[str, dict] = {}
        self.access_tokens: dict[str, float] = {}
        self.refresh_tokens: set[str] = set()
        self.omit_refresh_token = False
        self.token_lifetime = 3600
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.api_url = self.url + "/v1/"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)  # a quick shutdown

    def __enter__(self) -> FakeSpotify:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- test controls ----------------------------------------------------------------------------------------
    def fail(
        self,
        method: str,
        path: str,
        status: int,
        reason: str | None = None,
        message: str = "",
        headers: dict[str, str] | None = None,
        times: int = 1,
        delay: float = 0.0,
        body: Any = None,
    ) -> None:
        with self.lock:
            q = self._failures.setdefault((method, path), deque())
            for _ in range(times):
                q.append(Failure(status, reason, message, headers or {}, delay, body))

    def revoke_all_tokens(self) -> None:
        with self.lock:
            self.refresh_tokens.clear()
            self.access_tokens.clear()

    def expire_access_tokens(self) -> None:
        with self.lock:
            for t in self.access_tokens:
                self.access_tokens[t] = 0

    def user_plays(self, uri: str) -> None:
        """Someone in the household starts something else from their own phone."""
        with self.lock:
            device = self.playback["device"] if self.playback else self.devices[0]
            self.playback = {
                "device": device,
                "uris": [uri],
                "is_playing": True,
                "item": track(999, "phone") | {"uri": uri},
            }

    def calls(self, method: str, path: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path == path]

    # -- protocol ---------------------------------------------------------------------------------------------
    def _issue(self, refresh: str | None = None) -> dict:
        access = "at-" + secrets.token_urlsafe(12)
        self.access_tokens[access] = time.time() + self.token_lifetime
        body = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "scope": "user-read-playback-state user-modify-playback-state playlist-read-private "
            "playlist-read-collaborative user-library-read user-top-read",
        }
        if refresh is None or not self.omit_refresh_token:
            new_refresh = refresh or "rt-" + secrets.token_urlsafe(12)
            self.refresh_tokens.add(new_refresh)
            body["refresh_token"] = new_refresh
        return body

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                if body is not None:
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _api_error(self, status: int, message: str, reason: str | None = None, headers=None) -> None:
                err: dict[str, Any] = {"status": status, "message": message}
                if reason:
                    err["reason"] = reason
                self._send(status, {"error": err}, headers)

            def _handle(self, method: str) -> None:
                url = urlparse(self.path)
                query = parse_qs(url.query)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                ctype = self.headers.get("Content-Type", "")
                if "x-www-form-urlencoded" in ctype:
                    body: Any = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                else:
                    try:
                        body = json.loads(raw) if raw else None
                    except ValueError:
                        body = raw.decode(errors="replace")
                with fake.lock:
                    fake.requests.append(Request(time.time(), method, url.path, query, body))
                    q = fake._failures.get((method, url.path))
                    failure = q.popleft() if q else None
                if failure:
                    if failure.delay:
                        time.sleep(failure.delay)
                    if failure.status == 0:  # only the delay
                        failure = None
                if failure:
                    if failure.body is not None:
                        return self._send(failure.status, failure.body, failure.headers)
                    return self._api_error(
                        failure.status,
                        failure.message or self.responses.get(failure.status, ("",))[0],
                        failure.reason,
                        failure.headers,
                    )
                if url.path == "/authorize":
                    return self._authorize(query)
                if url.path == "/api/token":
                    return self._token(body or {})
                if not url.path.startswith("/v1/"):
                    return self._api_error(404, "Service not found")
                auth = self.headers.get("Authorization", "")
                token = auth.removeprefix("Bearer ")
                with fake.lock:
                    expires = fake.access_tokens.get(token)
                if expires is None:
                    return self._api_error(401, "Invalid access token")
                if expires < time.time():
                    return self._api_error(401, "The access token expired")
                return self._api(method, url.path[3:], query, body)

            do_GET = lambda self: self._handle("GET")  # noqa: E731
            do_POST = lambda self: self._handle("POST")  # noqa: E731
            do_PUT = lambda self: self._handle("PUT")  # noqa: E731

            # accounts.spotify.com
            def _authorize(self, q: dict) -> None:
                need = ("client_id", "response_type", "redirect_uri", "code_challenge", "code_challenge_method")
                if any(k not in q for k in need) or q["code_challenge_method"][0] != "S256":
                    return self._send(400, {"error": "invalid_request"})
                if q["client_id"][0] != fake.client_id:
                    return self._send(400, {"error": "invalid_client", "error_description": "Invalid client"})
                code = "code-" + secrets.token_urlsafe(10)
                with fake.lock:
                    fake._codes[code] = {"challenge": q["code_challenge"][0], "redirect_uri": q["redirect_uri"][0]}
                target = (
                    q["redirect_uri"][0]
                    + "?"
                    + urlencode({"code": code, **({"state": q["state"][0]} if "state" in q else {})})
                )
                self.send_response(302)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _token(self, form: dict) -> None:
                grant = form.get("grant_type")
                if form.get("client_id") != fake.client_id:
                    return self._send(400, {"error": "invalid_client", "error_description": "Invalid client"})
                with fake.lock:
                    if grant == "authorization_code":
                        info = fake._codes.pop(form.get("code", ""), None)
                        verifier = form.get("code_verifier", "")
                        digest = (
                            base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
                        )
                        if info is None:
                            return self._send(
                                400, {"error": "invalid_grant", "error_description": "Invalid authorization code"}
                            )
                        if info["redirect_uri"] != form.get("redirect_uri"):
                            return self._send(
                                400, {"error": "invalid_grant", "error_description": "Invalid redirect URI"}
                            )
                        if digest != info["challenge"]:
                            return self._send(
                                400, {"error": "invalid_grant", "error_description": "code_verifier was incorrect"}
                            )
                        return self._send(200, fake._issue())
                    if grant == "refresh_token":
                        rt = form.get("refresh_token")
                        if rt not in fake.refresh_tokens:
                            return self._send(
                                400, {"error": "invalid_grant", "error_description": "Refresh token revoked"}
                            )
                        return self._send(200, fake._issue(refresh=rt))
                return self._send(400, {"error": "unsupported_grant_type"})

            # api.spotify.com/v1
            def _api(self, method: str, path: str, q: dict, body: Any) -> None:
                one = {k: v[0] for k, v in q.items()}
                if method == "GET" and path == "/me":
                    return self._send(
                        200,
                        {
                            "id": "household",
                            "display_name": "Household",
                            "product": "premium" if fake.premium else "free",
                        },
                    )
                if method == "GET" and path == "/me/player/devices":
                    with fake.lock:
                        return self._send(200, {"devices": [dict(d) for d in fake.devices]})
                if method == "GET" and path == "/me/player":
                    with fake.lock:
                        pb = fake.playback
                        if not pb:
                            return self._send(204)
                        return self._send(
                            200,
                            {
                                "device": pb["device"],
                                "is_playing": pb["is_playing"],
                                "item": pb["item"],
                                "progress_ms": 1000,
                                "timestamp": int(time.time() * 1000),
                                "context": None,
                                "currently_playing_type": "track",
                                "shuffle_state": False,
                                "repeat_state": "off",
                            },
                        )
                if path.startswith("/me/player") and method in ("PUT", "POST") and not fake.premium:
                    return self._api_error(403, "Player command failed: Premium required", "PREMIUM_REQUIRED")
                if method == "PUT" and path == "/me/player":
                    ids = (body or {}).get("device_ids") or []
                    with fake.lock:
                        dev = next((d for d in fake.devices if d["id"] in ids), None)
                        if not dev:
                            return self._api_error(404, "Device not found")
                        for d in fake.devices:
                            d["is_active"] = d is dev
                        if fake.playback:
                            fake.playback["device"] = dict(dev)
                            fake.playback["is_playing"] = bool((body or {}).get("play"))
                    return self._send(204)
                if method == "PUT" and path == "/me/player/play":
                    with fake.lock:
                        device_id = one.get("device_id")
                        if device_id:
                            dev = next((d for d in fake.devices if d["id"] == device_id), None)
                            if not dev:
                                return self._api_error(404, "Device not found")
                        else:
                            dev = next((d for d in fake.devices if d["is_active"]), None)
                            if not dev:
                                return self._api_error(
                                    404, "Player command failed: No active device found", "NO_ACTIVE_DEVICE"
                                )
                        if dev["is_restricted"]:
                            return self._api_error(403, "Player command failed: Restriction violated", "UNKNOWN")
                        uris = (body or {}).get("uris") or []
                        if not uris and not (body or {}).get("context_uri"):  # no list: resume what is paused
                            if not fake.playback:
                                return self._api_error(
                                    404, "Player command failed: No active device found", "NO_ACTIVE_DEVICE"
                                )
                            if fake.playback["is_playing"]:  # Spotify refuses to resume what plays
                                return self._api_error(403, "Player command failed: Restriction violated", "UNKNOWN")
                            for d in fake.devices:
                                d["is_active"] = d is dev
                            fake.playback["device"], fake.playback["is_playing"] = dict(dev), True
                            return self._send(204)
                        for d in fake.devices:
                            d["is_active"] = d is dev
                        fake.playback = {
                            "device": dict(dev),
                            "uris": uris,
                            "is_playing": True,
                            "item": {"uri": uris[0], "name": "?", "type": "track"} if uris else None,
                        }
                    return self._send(204)
                if method == "POST" and path == "/me/player/next":
                    with fake.lock:
                        if not fake.playback:
                            return self._api_error(
                                404, "Player command failed: No active device found", "NO_ACTIVE_DEVICE"
                            )
                        uris = fake.playback["uris"]
                        cur = fake.playback["item"]["uri"] if fake.playback.get("item") else None
                        nxt = uris[(uris.index(cur) + 1) % len(uris)] if cur in uris else cur
                        fake.playback["item"] = {"uri": nxt, "name": "?", "type": "track"}
                    return self._send(204)
                if method == "PUT" and path == "/me/player/pause":
                    with fake.lock:
                        if not fake.playback:
                            return self._api_error(
                                404, "Player command failed: No active device found", "NO_ACTIVE_DEVICE"
                            )
                        if not fake.playback["is_playing"]:  # Spotify refuses to pause what is paused
                            return self._api_error(403, "Player command failed: Restriction violated", "UNKNOWN")
                        fake.playback["is_playing"] = False
                    return self._send(204)
                if method == "GET" and path == "/search":
                    limit = int(one.get("limit", 20))
                    if limit > 10 or limit < 0:
                        return self._api_error(400, "Invalid limit")
                    offset = int(one.get("offset", 0))
                    tag = one.get("q", "").replace(" ", "-")
                    catalogue = [track(i, tag) for i in range(25)]
                    items: list[Any] = catalogue[offset : offset + limit]
                    return self._send(
                        200,
                        {
                            "tracks": {
                                "href": "x",
                                "items": items,
                                "limit": limit,
                                "offset": offset,
                                "next": None,
                                "previous": None,
                                "total": len(catalogue),
                            }
                        },
                    )
                if method == "GET" and path == "/me/playlists":
                    items = [
                        {
                            "id": pid,
                            "uri": f"spotify:playlist:{pid}",
                            "name": p["name"],
                            "type": "playlist",
                            "owner": {"id": p["owner"]},
                            "collaborative": False,
                            "public": False,
                            "items": {"total": len(p["tracks"])},
                        }
                        for pid, p in fake.playlists.items()
                    ]
                    items.insert(1, None)  # Spotify's lists can hold nulls
                    return self._send(
                        200, {"items": items, "limit": 50, "offset": 0, "total": len(items), "next": None}
                    )
                if method == "GET" and path.startswith("/playlists/") and path.endswith("/items"):
                    pid = path.split("/")[2]
                    p = fake.playlists.get(pid)
                    if not p:
                        return self._api_error(404, "Resource not found")
                    if p["owner"] != "household":
                        return self._api_error(403, "Forbidden")
                    return self._send(
                        200,
                        {
                            "items": [{"added_at": "2026-01-01T00:00:00Z", "item": t} for t in p["tracks"]],
                            "limit": 100,
                            "offset": 0,
                            "total": len(p["tracks"]),
                            "next": None,
                        },
                    )
                if method == "GET" and path == "/me/top/tracks":
                    return self._send(200, {"items": fake.top[: int(one.get("limit", 20))], "total": len(fake.top)})
                if method == "GET" and path == "/me/tracks":
                    return self._send(
                        200,
                        {
                            "items": [
                                {"added_at": "2026-01-01T00:00:00Z", "track": t}
                                for t in fake.saved[: int(one.get("limit", 20))]
                            ],
                            "total": len(fake.saved),
                        },
                    )
                if path in ("/recommendations", "/audio-features") or path.startswith("/browse"):
                    return self._api_error(404, "Not found")  # closed to Development Mode apps
                return self._api_error(404, "Service not found")

        return Handler


def connect(fake: FakeSpotify, auth) -> None:
    """Run the paste-back flow the way a phone would: open the authorise link, take the address it lands on."""
    import urllib.request

    url = auth.authorize_url()

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(url, timeout=5)
    except urllib.error.HTTPError as e:  # the 302 surfaces here
        landed = e.headers["Location"]
    auth.finish(landed)
