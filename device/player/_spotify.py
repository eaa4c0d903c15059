"""Spotify Connect playback through the Web API (spotipy), designed for 2026's Development Mode.

Every play looks the speaker up by name in /me/player/devices (case-insensitive, skipping restricted ones),
transfers playback to it when it is idle, sets its volume where it allows that, and starts a list of track URIs.
Failures become PlayerError with a state the page shows and, where it helps, the time to try again; nothing here
ever sleeps on a Retry-After. The household's likes go to private playlists of its own ("Moodbox · Happy"):
Development Mode still lets an app make one (POST /me/playlists) and fill it (POST /playlists/{id}/items).
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from typing import Any

import requests
import spotipy
from spotipy.exceptions import SpotifyException

from device.player import PlayerError, Playing, VolumeRule
from device.player._spotify_auth import LIKES_SCOPE, NotConnected, SpotifyAuth
from device.player.music import MusicSource, Taste, pick

log = logging.getLogger(__name__)
SEARCH_PAGE = 10  # Development Mode refuses limit > 10 on /search
SEARCH_PAGES = 3
TRACK_CACHE_SECONDS = 6 * 3600
QUOTA_BACKOFF = 3600.0
COVER_HOST = "https://i.scdn.co/"


def _track_name(track: dict) -> str:
    artists = ", ".join(a.get("name", "?") for a in track.get("artists") or [])
    return f"{artists} - {track.get('name', '?')}"


def _cover(track: dict) -> str:
    """The album cover closest to 300 px, only from Spotify's image host (the page's CSP allows no other)."""
    images = [i for i in (track.get("album") or {}).get("images") or [] if isinstance(i, dict)]
    images = [i for i in images if str(i.get("url", "")).startswith(COVER_HOST)]
    if not images:
        return ""
    return min(images, key=lambda i: abs((i.get("width") or 300) - 300))["url"]


def _about(track: dict) -> dict[str, Any]:
    """What Moodbox keeps of a track: its address, names, cover and length."""
    return {
        "uri": track.get("uri", ""),
        "track": track.get("name", ""),
        "artist": ", ".join(a.get("name", "") for a in track.get("artists") or []),
        "cover": _cover(track),
        "duration": (track.get("duration_ms") or 0) / 1000,
    }


class SpotifyPlayer:
    name = "spotify"

    def __init__(self, auth: SpotifyAuth, speaker: str = "", api_url: str = "https://api.spotify.com/v1/") -> None:
        self.auth = auth
        self.speaker = speaker
        self.api_url = api_url
        self.state = "idle"
        self.message = ""
        self.last_devices: list[dict[str, Any]] = []
        self.started_uris: set[str] = set()
        self._recent: deque[str] = deque(maxlen=200)
        self._tracks: dict[MusicSource, tuple[float, list[dict]]] = {}
        self._no_volume: set[str] = set()  # speakers that answered VOLUME_CONTROL_DISALLOW: never asked again
        self._me: str | None = None
        self._sp: spotipy.Spotify | None = None
        self._sp_token = ""

    # -- low level -------------------------------------------------------------------------------------------
    def _client(self, token: str) -> spotipy.Spotify:
        """One client per access token: spotipy closes its session when a client is collected, so a client per
        call would open a new connection (a TLS handshake with api.spotify.com) for every call."""
        if self._sp is not None and self._sp_token == token:
            return self._sp
        sp = spotipy.Spotify(
            auth=token,
            requests_session=self.auth.session,
            requests_timeout=self.auth.timeout,
            retries=0,
            status_retries=0,
        )
        sp.prefix = self.api_url
        self._sp, self._sp_token, self._me = sp, token, None  # a new token may be another account's
        return sp

    def _call(self, fn: str, *args: Any, **kwargs: Any) -> Any:
        """One Web API call with the failures translated; a 401 is answered by one refresh and one retry."""
        try:
            token = self.auth.access_token()
            try:
                return getattr(self._client(token), fn)(*args, **kwargs)
            except SpotifyException as exc:
                if exc.http_status != 401:
                    raise
                log.info("Spotify said 401 (token expired or revoked): refreshing and retrying once")
                return getattr(self._client(self.auth.force_refresh()), fn)(*args, **kwargs)
        except NotConnected as exc:
            raise PlayerError(exc.state, str(exc)) from None
        except SpotifyException as exc:
            raise self._translate(exc) from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise PlayerError(
                "offline",
                f"cannot reach Spotify ({type(exc).__name__}): is the internet down? Moodbox will try again",
                retry_after=30 + random.uniform(0, 15),
            ) from None

    @staticmethod
    def _translate(exc: SpotifyException) -> PlayerError:
        status, reason = exc.http_status, exc.reason or ""
        if status == 429:
            try:
                after = float(exc.headers.get("Retry-After", 30))
            except (TypeError, ValueError):
                after = 30.0
            if reason == "QUOTA_EXCEEDED":
                return PlayerError(
                    "quota-exceeded",
                    "the Spotify app's quota is used up; Moodbox pauses Spotify calls and tries again later",
                    retry_after=max(after, QUOTA_BACKOFF),
                )
            return PlayerError(
                "rate-limited", f"Spotify asked Moodbox to slow down; next try in {after:.0f} s", retry_after=after
            )
        if status == 403 and reason == "VOLUME_CONTROL_DISALLOW":
            return PlayerError("no-volume-control", "the speaker does not let apps change its volume")
        if status == 403 and reason == "PREMIUM_REQUIRED":
            return PlayerError(
                "premium-required",
                "Spotify playback control needs a Premium account: sign in with a Premium account in Settings",
            )
        if status == 403:
            return PlayerError(
                "forbidden",
                "Spotify refused the request (is this account on the app's "
                "allow-list in the Spotify developer dashboard?)",
            )
        if status == 404 and reason == "NO_ACTIVE_DEVICE":
            return PlayerError(
                "no-active-device", "no active Spotify device: Moodbox will wake the speaker", retry_after=5
            )
        if status == 404:
            return PlayerError("not-found", f"Spotify could not find that ({exc.msg.splitlines()[-1].strip()})")
        if status == 401:
            return PlayerError("reconnect", "Spotify did not accept Moodbox's access: reconnect Spotify in Settings")
        if status >= 500:
            return PlayerError(
                "spotify-unavailable",
                f"Spotify is having trouble ({status}); trying again soon",
                retry_after=20 + random.uniform(0, 20),
            )
        return PlayerError("spotify-error", f"Spotify answered {status}: {exc.msg.splitlines()[-1].strip()}")

    # -- the speaker -------------------------------------------------------------------------------------------
    def devices(self) -> list[dict[str, Any]]:
        found = self._call("devices").get("devices", [])
        self.last_devices = [
            {
                "id": d.get("id"),
                "name": d.get("name", ""),
                "type": d.get("type", ""),
                "is_active": bool(d.get("is_active")),
                "is_restricted": bool(d.get("is_restricted")),
                "volume": d.get("volume_percent"),
                "supports_volume": d.get("supports_volume") is not False,
            }
            for d in found
        ]
        return self.last_devices

    def find_speaker(self) -> dict[str, Any]:
        if not self.speaker:
            raise PlayerError("no-speaker", "no speaker chosen: pick one in Settings")
        wanted = self.speaker.casefold()
        for d in self.devices():
            if d["name"].casefold() == wanted and not d["is_restricted"] and d["id"]:
                return d
        names = ", ".join(d["name"] for d in self.last_devices) or "none"
        raise PlayerError(
            "speaker-not-found",
            f"speaker '{self.speaker}' not found (Spotify sees: {names}); is it on? Moodbox will look again",
            retry_after=60 + random.uniform(0, 30),
        )

    # -- music -------------------------------------------------------------------------------------------------
    def _fetch_tracks(self, source: MusicSource) -> list[dict]:
        tracks: list[dict] = []
        if source.kind == "search":
            for offset in range(0, SEARCH_PAGE * SEARCH_PAGES, SEARCH_PAGE):
                page = self._call("search", q=source.value, type="track", limit=SEARCH_PAGE, offset=offset)
                items = (page.get("tracks") or {}).get("items") or []
                tracks += [t for t in items if t]
                if len(items) < SEARCH_PAGE:
                    break
        elif source.kind == "playlist":
            playlist_id = source.value.rsplit(":", 1)[-1].rsplit("/", 1)[-1].split("?")[0]
            page = self._call("playlist_items", playlist_id, limit=100, additional_types=("track",))
            tracks = [i.get("item") or i.get("track") for i in page.get("items") or []]
            tracks = [t for t in tracks if t and t.get("type", "track") == "track"]
        elif source.kind == "top_tracks":
            tracks = [t for t in self._call("current_user_top_tracks", limit=50).get("items") or [] if t]
        else:
            tracks = [i.get("track") for i in self._call("current_user_saved_tracks", limit=50).get("items") or []]
            tracks = [t for t in tracks if t]
        return [t for t in tracks if t.get("uri") and t.get("is_playable", True) is not False]

    def tracks_for(self, source: MusicSource) -> list[dict]:
        cached = self._tracks.get(source)
        if cached and time.monotonic() - cached[0] < TRACK_CACHE_SECONDS:
            return cached[1]
        tracks = self._fetch_tracks(source)
        if not tracks:
            raise PlayerError(
                "nothing-to-play",
                f"{source.describe()} found no playable tracks: choose another source for this mood in Settings",
            )
        self._tracks[source] = (time.monotonic(), tracks)
        return tracks

    # -- volume --------------------------------------------------------------------------------------------------
    def volume_control(self, speaker: dict[str, Any]) -> bool:
        return speaker.get("supports_volume", True) and speaker.get("id") not in self._no_volume

    def _no_volume_control(self, speaker: dict[str, Any]) -> PlayerError:
        self._no_volume.add(speaker["id"])
        return PlayerError(
            "no-volume-control",
            f"{speaker['name']} does not let apps change its volume: use its own buttons or the Spotify app",
        )

    def _start_volume(self, speaker: dict[str, Any], rule: VolumeRule | None) -> int | None:
        """Set the volume a list starts at, where the speaker allows it; a refusal is remembered, not retried."""
        current = speaker.get("volume")
        target = rule.target(current) if rule and self.volume_control(speaker) else None
        if target is None:
            return current
        try:
            self._call("volume", target, device_id=speaker["id"])
        except PlayerError as exc:
            if exc.state == "no-volume-control":
                log.info("%s", self._no_volume_control(speaker))
            else:  # the music matters more than its volume: play on, and say why in the log
                log.warning("could not set the volume of %s to %d%%: %s", speaker["name"], target, exc)
            return current
        log.info("volume of %s: %s%% -> %d%%", speaker["name"], current, target)
        return target

    def set_volume(self, percent: int) -> int:
        """The page's slider. PlayerError 'no-volume-control' for a speaker that refuses (said once, never retried)."""
        speaker = self.find_speaker()
        if not self.volume_control(speaker):
            raise self._no_volume_control(speaker)
        try:
            self._call("volume", percent, device_id=speaker["id"])
        except PlayerError as exc:
            raise self._no_volume_control(speaker) if exc.state == "no-volume-control" else exc from None
        return percent

    # -- Player interface --------------------------------------------------------------------------------------
    def _playback(self) -> tuple[dict[str, Any] | None, bool]:
        """The account's playback, playing or paused (None: none, or Moodbox never started anything), and whether
        its track is one of those Moodbox started last."""
        if not self.started_uris:
            return None, False
        current = self._call("current_playback")
        if not current:
            return None, False
        return current, (current.get("item") or {}).get("uri") in self.started_uris

    def _playing_now(self) -> tuple[dict[str, Any] | None, bool]:
        """What the account plays now (None: nothing), and whether it is one of the tracks Moodbox started last."""
        current, ours = self._playback()
        return (current, ours) if current is not None and current.get("is_playing") else (None, False)

    def someone_else_is_playing(self) -> bool:
        """True when the speaker plays something Moodbox did not start since its last start."""
        current, ours = self._playing_now()
        return current is not None and not ours

    def playback(self) -> dict[str, Any] | None:
        """What the account's speaker plays now, or None; with the device's volume and whether it can be changed."""
        current = self._call("current_playback")
        if not current or not current.get("item"):
            return None
        device = current.get("device") or {}
        return {
            **_about(current["item"]),
            "progress": (current.get("progress_ms") or 0) / 1000,
            "playing": bool(current.get("is_playing")),
            "device": {
                "id": device.get("id"),
                "name": device.get("name", ""),
                "volume": device.get("volume_percent"),
                "volume_control": self.volume_control(
                    {"id": device.get("id"), "supports_volume": device.get("supports_volume") is not False}
                ),
            },
        }

    def play(
        self, mood: str, source: MusicSource, taste: Taste | None = None, volume: VolumeRule | None = None
    ) -> Playing:
        try:
            speaker = self.find_speaker()
            chosen = pick(self.tracks_for(source), self._recent, taste)
            uris = [t["uri"] for t in chosen]
            if not speaker["is_active"]:
                self._call("transfer_playback", speaker["id"], force_play=False)
            level = self._start_volume(speaker, volume)
            try:
                self._call("start_playback", device_id=speaker["id"], uris=uris)
            except PlayerError as exc:
                if exc.state != "no-active-device":
                    raise
                self._call("transfer_playback", speaker["id"], force_play=False)
                self._call("start_playback", device_id=speaker["id"], uris=uris)
        except PlayerError as exc:
            self.state, self.message = exc.state, str(exc)
            raise
        self._recent.extend(uris)
        self.started_uris = set(uris)
        self.state, self.message = "playing", ""
        log.info("playing %s for %s on %s (%d tracks)", source.describe(), mood, speaker["name"], len(uris))
        queue = [_about(t) for t in chosen]
        first = queue[0] if queue else {}
        return Playing(
            mood=mood,
            source=source,
            tracks=[_track_name(t) for t in chosen[:5]],
            speaker=speaker["name"],
            started_at=time.time(),
            track=first.get("track", ""),
            artist=first.get("artist", ""),
            cover=first.get("cover", ""),
            uri=first.get("uri", ""),
            queue=queue,
            volume=level,
            volume_control=self.volume_control(speaker),
        )

    def skip(self) -> None:
        speaker = self.find_speaker()
        self._call("next_track", device_id=speaker["id"])

    def pause(self) -> bool:
        """Pause the speaker when it plays a track Moodbox started (Spotify refuses to pause what is not playing)."""
        current, ours = self._playing_now()
        if current is None or not ours:  # nothing plays, or someone else's music: theirs to stop
            return False
        try:
            self._call("pause_playback", device_id=(current.get("device") or {}).get("id"))
        except PlayerError as exc:
            self.state, self.message = exc.state, str(exc)
            raise
        self.state, self.message = "paused", ""
        log.info("paused the music on %s", (current.get("device") or {}).get("name", "the speaker"))
        return True

    def resume(self) -> bool:
        """Play on where the music paused (no list sent: Spotify resumes the paused track at its position) when the
        chosen speaker still holds one of the tracks Moodbox started; True too when that plays again already."""
        current, ours = self._playback()
        device = (current or {}).get("device") or {}
        if current is None or not ours or device.get("name", "").casefold() != self.speaker.casefold():
            return False  # Spotify forgot the paused session, someone played their own music, or moved it
        if not current.get("is_playing"):  # Spotify refuses to resume what already plays
            try:
                self._call("start_playback", device_id=device.get("id"))
            except PlayerError as exc:
                self.state, self.message = exc.state, str(exc)
                raise
            log.info("played on from where the music paused on %s", device.get("name"))
        self.state, self.message = "playing", ""
        return True

    # -- the household's likes, in playlists of its own ----------------------------------------------------------
    def likes_state(self) -> str:
        """Where likes go: "saving" when the connection may make and fill the user's private playlists,
        "reconnect" when it was made before Moodbox asked for that (connecting again grants it), "off" without
        Spotify."""
        if self.auth.state != "connected":
            return "off"
        return "saving" if self.auth.granted(LIKES_SCOPE) else "reconnect"

    def likes_playlist(self, name: str) -> str:
        """The id of the user's own playlist called `name`, made (private) if there is none."""
        if self._me is None:
            self._me = self._call("me").get("id", "")
        for p in self._call("current_user_playlists", limit=50).get("items") or []:
            if p and p.get("name") == name and (p.get("owner") or {}).get("id") == self._me and p.get("id"):
                return p["id"]
        made = self._call(
            "current_user_playlist_create", name, public=False, description="Liked on Moodbox, for this mood."
        )
        log.info("made the playlist %r", name)
        return made["id"]

    def add_to_playlist(self, playlist_id: str, uri: str) -> None:
        self._call("playlist_add_items", playlist_id, [uri])

    def remove_from_playlist(self, playlist_id: str, uri: str) -> None:
        self._call("playlist_remove_all_occurrences_of_items", playlist_id, [uri])

    def playlists(self, query: str = "") -> list[dict[str, str]]:
        """The user's own playlists (Development Mode reads items only from owned or collaborative ones)."""
        items = self._call("current_user_playlists", limit=50).get("items") or []
        q = query.casefold()
        return [
            {
                "uri": p["uri"],
                "name": p.get("name", ""),
                "tracks": (p.get("tracks") or p.get("items") or {}).get("total"),
            }
            for p in items
            if p and p.get("uri") and q in p.get("name", "").casefold()
        ]

    def status(self) -> dict[str, Any]:
        auth_state = self.auth.state
        state = self.state if auth_state == "connected" else auth_state
        return {
            "player": "spotify",
            "connected": auth_state == "connected",
            "auth": auth_state,
            "speaker": self.speaker,
            "state": state,
            "message": self.message,
        }
