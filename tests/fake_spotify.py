"""A loopback stand-in for Spotify's accounts service and the part of the Web API that Moodbox uses.

It speaks HTTP with the real paths, response shapes and error bodies (including 2026 Development Mode rules:
search limit <= 10, /playlists/{id}/items with `item`, items only for the user's own playlists, POST /me/playlists
to make one), checks PKCE for real (S256 of the verifier), grants the scopes asked for, expires and revokes tokens,
and can be told to fail the next calls in the ways Spotify does: 401, 403 PREMIUM_REQUIRED, 404 NO_ACTIVE_DEVICE,
429 with Retry-After or QUOTA_EXCEEDED, 5xx, slow answers. Every request is recorded with its arrival time.

The speaker's playback moves on its own clock (`clock`, the real time unless a test gives it a fake one): a track
plays for its duration and the next one starts, and the list stops after its last track. The household can skip
or pause in "the Spotify app" (`skip_in_app`, `pause_in_app`) and put on its own music (`user_plays`). Volume
follows each device's `supports_volume`; a device in `refuse_volume` answers 403 VOLUME_CONTROL_DISALLOW anyway.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
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
    def __init__(self, premium: bool = True, clock: Callable[[], float] = time.time) -> None:
        self.premium = premium
        self.clock = clock
        self.client_id = "5eb1ab5eb1ab5eb1ab5eb1ab5eb1ab00"  # a Client ID's form: 32 hex digits
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
        self.catalogue: dict[str, dict] = {}  # every track handed out, by URI: what the player reports
        self.playback: dict[str, Any] | None = None
        self.refuse_volume: set[str] = set()  # device ids that claim volume control and refuse it
        self.granted_scope: str | None = None  # set: tokens get these scopes, whatever was asked (an old connection)
        self.token_scopes: dict[str, str] = {}
        self.requests: list[Request] = []
        self._failures: dict[tuple[str, str], deque[Failure]] = {}
        self._codes: dict[str, dict] = {}
        self.access_tokens: dict[str, float] = {}
        self.refresh_tokens: dict[str, str] = {}  # refresh token -> the scopes it grants
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
            self.catalogue[uri] = track(999, "phone") | {"uri": uri}
            self.playback = self._start(device, [uri])

    def skip_in_app(self) -> None:
        """Someone presses "next" in the Spotify app or on the speaker."""
        with self.lock:
            self._next()

    def pause_in_app(self) -> None:
        with self.lock:
            self._settle()
            pb = self.playback
            if pb and pb["is_playing"]:
                pb["position_ms"], pb["anchor"], pb["is_playing"] = self._progress(pb), self.clock(), False

    def now_playing(self) -> dict[str, Any] | None:
        """What the household hears now, by the fake's clock: the track, how far in (s), its length, playing."""
        with self.lock:
            self._settle()
            pb = self.playback
            if not pb or not pb.get("item"):
                return None
            item = pb["item"]
            return {
                "uri": item["uri"],
                "progress": self._progress(pb) / 1000,
                "duration": (item.get("duration_ms") or 180000) / 1000,
                "playing": pb["is_playing"],
            }

    # -- the playback's own time ------------------------------------------------------------------------------
    def _track(self, uri: str) -> dict:
        known = self.catalogue.get(uri)
        if known is None:
            for t in [*self.saved, *self.top, *(x for p in self.playlists.values() for x in p["tracks"])]:
                self.catalogue.setdefault(t["uri"], t)
            known = self.catalogue.get(uri) or {"uri": uri, "name": "?", "type": "track", "duration_ms": 180000}
        return dict(known)

    def _start(self, device: dict, uris: list[str]) -> dict:
        return {
            "device": dict(device),
            "uris": uris,
            "index": 0,
            "is_playing": True,
            "item": self._track(uris[0]) if uris else None,
            "position_ms": 0,
            "anchor": self.clock(),
        }

    def _progress(self, pb: dict) -> int:
        elapsed = (self.clock() - pb.get("anchor", self.clock())) * 1000 if pb["is_playing"] else 0
        return int(pb.get("position_ms", 0) + max(0, elapsed))

    def _index(self, pb: dict) -> int:
        uri = (pb.get("item") or {}).get("uri")
        index = pb.get("index", 0)
        if 0 <= index < len(pb["uris"]) and pb["uris"][index] == uri:
            return index
        return pb["uris"].index(uri) if uri in pb["uris"] else -1  # a test moved the item by hand

    def _settle(self) -> None:
        """Play on to now: a track that has run its length is followed by the next; after the last, it stops."""
        pb = self.playback
        while pb and pb["is_playing"] and pb.get("item"):
            duration = pb["item"].get("duration_ms") or 180000
            if self._progress(pb) < duration:
                return
            ended = pb.get("anchor", self.clock()) + (duration - pb.get("position_ms", 0)) / 1000
            index = self._index(pb)
            if 0 <= index < len(pb["uris"]) - 1:
                pb["index"], pb["item"] = index + 1, self._track(pb["uris"][index + 1])
                pb["position_ms"], pb["anchor"] = 0, ended
            else:  # Spotify stops after the list, back at the start of its last track
                pb["is_playing"], pb["position_ms"], pb["anchor"] = False, 0, ended

    def _next(self) -> None:
        self._settle()
        pb = self.playback
        if not pb:
            return
        index = self._index(pb)
        if 0 <= index < len(pb["uris"]) - 1:
            pb["index"], pb["item"] = index + 1, self._track(pb["uris"][index + 1])
            pb["position_ms"], pb["anchor"], pb["is_playing"] = 0, self.clock(), True
        else:
            pb["position_ms"], pb["anchor"], pb["is_playing"] = 0, self.clock(), False

    def calls(self, method: str, path: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path == path]

    # -- protocol ---------------------------------------------------------------------------------------------
    def _issue(self, scope: str, refresh: str | None = None) -> dict:
        access = "at-" + secrets.token_urlsafe(12)
        self.access_tokens[access] = time.time() + self.token_lifetime
        scope = self.granted_scope if self.granted_scope is not None else scope
        self.token_scopes[access] = scope
        body = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "scope": scope,
        }
        if refresh is None or not self.omit_refresh_token:
            new_refresh = refresh or "rt-" + secrets.token_urlsafe(12)
            self.refresh_tokens[new_refresh] = scope
            body["refresh_token"] = new_refresh
        return body

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # a kept-alive connection must not wait 40 ms for a delayed ACK

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
                return self._api(method, url.path[3:], query, body, fake.token_scopes.get(token, ""))

            do_GET = lambda self: self._handle("GET")  # noqa: E731
            do_POST = lambda self: self._handle("POST")  # noqa: E731
            do_PUT = lambda self: self._handle("PUT")  # noqa: E731
            do_DELETE = lambda self: self._handle("DELETE")  # noqa: E731

            # accounts.spotify.com
            def _authorize(self, q: dict) -> None:
                need = ("client_id", "response_type", "redirect_uri", "code_challenge", "code_challenge_method")
                if any(k not in q for k in need) or q["code_challenge_method"][0] != "S256":
                    return self._send(400, {"error": "invalid_request"})
                if q["client_id"][0] != fake.client_id:
                    return self._send(400, {"error": "invalid_client", "error_description": "Invalid client"})
                code = "code-" + secrets.token_urlsafe(10)
                with fake.lock:
                    fake._codes[code] = {
                        "challenge": q["code_challenge"][0],
                        "redirect_uri": q["redirect_uri"][0],
                        "scope": q.get("scope", [""])[0],  # Spotify grants what the app asked for
                    }
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
                        return self._send(200, fake._issue(info["scope"]))
                    if grant == "refresh_token":
                        rt = form.get("refresh_token")
                        if rt not in fake.refresh_tokens:
                            return self._send(
                                400, {"error": "invalid_grant", "error_description": "Refresh token revoked"}
                            )
                        return self._send(200, fake._issue(fake.refresh_tokens[rt], refresh=rt))
                return self._send(400, {"error": "unsupported_grant_type"})

            # api.spotify.com/v1
            def _api(self, method: str, path: str, q: dict, body: Any, scope: str) -> None:
                one = {k: v[0] for k, v in q.items()}
                with fake.lock:
                    fake._settle()  # the speaker played on since the last request
                if method == "GET" and path in ("/me", "/me/"):  # spotipy asks for "me/"
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
                        device = next((d for d in fake.devices if d["id"] == pb["device"]["id"]), pb["device"])
                        return self._send(
                            200,
                            {
                                "device": dict(device),
                                "is_playing": pb["is_playing"],
                                "item": pb["item"],
                                "progress_ms": fake._progress(pb) if pb.get("item") else 0,
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
                            pb = fake.playback
                            pb["position_ms"], pb["anchor"] = fake._progress(pb), fake.clock()
                            pb["device"], pb["is_playing"] = dict(dev), bool((body or {}).get("play"))
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
                            fake.playback["anchor"] = fake.clock()
                            return self._send(204)
                        for d in fake.devices:
                            d["is_active"] = d is dev
                        fake.playback = fake._start(dev, uris)
                    return self._send(204)
                if method == "POST" and path == "/me/player/next":
                    with fake.lock:
                        if not fake.playback:
                            return self._api_error(
                                404, "Player command failed: No active device found", "NO_ACTIVE_DEVICE"
                            )
                        fake._next()
                    return self._send(204)
                if method == "PUT" and path == "/me/player/pause":
                    with fake.lock:
                        if not fake.playback:
                            return self._api_error(
                                404, "Player command failed: No active device found", "NO_ACTIVE_DEVICE"
                            )
                        if not fake.playback["is_playing"]:  # Spotify refuses to pause what is paused
                            return self._api_error(403, "Player command failed: Restriction violated", "UNKNOWN")
                        pb = fake.playback
                        pb["position_ms"], pb["anchor"], pb["is_playing"] = fake._progress(pb), fake.clock(), False
                    return self._send(204)
                if method == "PUT" and path == "/me/player/volume":
                    return self._volume(one)
                if method == "GET" and path == "/search":
                    limit = int(one.get("limit", 20))
                    if limit > 10 or limit < 0:
                        return self._api_error(400, "Invalid limit")
                    offset = int(one.get("offset", 0))
                    tag = one.get("q", "").replace(" ", "-")
                    catalogue = [track(i, tag) for i in range(25)]
                    items: list[Any] = catalogue[offset : offset + limit]
                    with fake.lock:
                        fake.catalogue.update((t["uri"], t) for t in items)
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
                if method == "POST" and path == "/me/playlists":
                    return self._create_playlist(body, scope)
                if method in ("POST", "DELETE") and path.startswith("/playlists/") and path.endswith("/items"):
                    return self._change_playlist(method, path.split("/")[2], body, scope)
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
                if path.startswith("/users/"):
                    return self._api_error(404, "Service not found")  # POST /users/{id}/playlists is gone (2026)
                return self._api_error(404, "Service not found")

            def _volume(self, one: dict) -> None:
                try:
                    percent = int(one.get("volume_percent", ""))
                except ValueError:
                    percent = -1
                if not 0 <= percent <= 100:
                    return self._api_error(400, "Invalid volume_percent")
                with fake.lock:
                    wanted = one.get("device_id")
                    dev = next((d for d in fake.devices if (d["id"] == wanted if wanted else d["is_active"])), None)
                    if dev is None:
                        if wanted:
                            return self._api_error(404, "Device not found")
                        return self._api_error(404, "Player command failed: No active device found", "NO_ACTIVE_DEVICE")
                    if not dev["supports_volume"] or dev["id"] in fake.refuse_volume:
                        return self._api_error(
                            403, "Player command failed: Cannot control device volume", "VOLUME_CONTROL_DISALLOW"
                        )
                    dev["volume_percent"] = percent
                    if fake.playback and fake.playback["device"]["id"] == dev["id"]:
                        fake.playback["device"]["volume_percent"] = percent
                return self._send(204)

            def _create_playlist(self, body: Any, scope: str) -> None:
                body = body if isinstance(body, dict) else {}
                if "playlist-modify-private" not in scope.split() and "playlist-modify-public" not in scope.split():
                    return self._api_error(403, "Insufficient client scope")
                if body.get("public", True) and "playlist-modify-public" not in scope.split():
                    return self._api_error(403, "Insufficient client scope")
                if not body.get("name"):
                    return self._api_error(400, "Missing required field: name")
                pid = "plMade" + secrets.token_hex(8)
                with fake.lock:
                    fake.playlists[pid] = {
                        "name": body["name"],
                        "owner": "household",
                        "tracks": [],
                        "public": bool(body.get("public", True)),
                        "description": body.get("description", ""),
                    }
                return self._send(
                    201,
                    {
                        "id": pid,
                        "uri": f"spotify:playlist:{pid}",
                        "name": body["name"],
                        "type": "playlist",
                        "owner": {"id": "household", "type": "user"},
                        "public": bool(body.get("public", True)),
                        "collaborative": False,
                        "description": body.get("description") or None,
                        "items": {"total": 0},
                        "snapshot_id": secrets.token_hex(6),
                    },
                )

            def _change_playlist(self, method: str, pid: str, body: Any, scope: str) -> None:
                with fake.lock:
                    p = fake.playlists.get(pid)
                    if p is None:
                        return self._api_error(404, "Resource not found")
                    need = "playlist-modify-public" if p.get("public") else "playlist-modify-private"
                    if p["owner"] != "household":
                        return self._api_error(403, "Forbidden")
                    if need not in scope.split():
                        return self._api_error(403, "Insufficient client scope")
                    if method == "POST":  # {"uris": [...]} as documented, or the bare list spotipy sends
                        uris = body.get("uris") if isinstance(body, dict) else body
                        if not isinstance(uris, list) or not uris or len(uris) > 100:
                            return self._api_error(400, "Invalid track uri")
                        p["tracks"] += [fake._track(u) for u in uris]
                        return self._send(201, {"snapshot_id": secrets.token_hex(6)})
                    gone = {i.get("uri") for i in (body or {}).get("items") or [] if isinstance(i, dict)}
                    p["tracks"] = [t for t in p["tracks"] if t["uri"] not in gone]
                    return self._send(200, {"snapshot_id": secrets.token_hex(6)})

        return Handler


def landing(url: str) -> str:
    """Open an authorise link the way a phone would and return the callback address it lands on (what the owner
    pastes back), without following it."""
    import urllib.error
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None

    try:
        urllib.request.build_opener(NoRedirect).open(url, timeout=5)
    except urllib.error.HTTPError as e:  # the 302 surfaces here
        return e.headers["Location"]
    raise AssertionError(f"{url} did not redirect")


def connect(fake: FakeSpotify, auth) -> None:
    """Run the paste-back flow the way a phone would: open the authorise link, take the address it lands on."""
    auth.finish(landing(auth.authorize_url()))
