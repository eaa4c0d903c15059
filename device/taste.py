"""The household's taste for each mood, learned from its own signals: skips and likes.

Spotify gives new apps no recommendations and no audio features, so Moodbox learns from what the box sees best:
- a track skipped within 30 s (on the page, in the Spotify app or on the speaker) is not picked for that mood
  again for 30 days;
- a liked track comes back more often in that mood (every other place in a list, device/player/music.py), never
  twice within 6 tracks; a like outweighs a skip;
- when one mood's music gets 3 or more early skips in a week, the page suggests changing it.
Likes are also saved to a private playlist of the household's own, "Moodbox · Happy", made on the first like and
remembered, where the Spotify connection allows it; otherwise they stay on the box. All of it is in the store,
shown on the Settings page, and undone by "Forget skips", by unliking, or by "Delete my history".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from device.events import EMOTIONS
from device.player import PlayerError
from device.player.music import MusicSource, Taste
from device.store import Store

log = logging.getLogger(__name__)
EARLY_SKIP_S = 30.0
SKIP_DAYS = 30
SUGGEST_SKIPS = 3  # early skips of one mood's music within a week
HEARD = 50  # how far back the picking looks for liked tracks heard lately


def playlist_name(mood: str) -> str:
    return f"Moodbox · {mood.capitalize()}"


class Playlists(Protocol):
    """The Spotify player's part for likes (device/player/_spotify.py)."""

    def likes_state(self) -> str: ...
    def likes_playlist(self, name: str) -> str: ...
    def add_to_playlist(self, playlist_id: str, uri: str) -> None: ...
    def remove_from_playlist(self, playlist_id: str, uri: str) -> None: ...


class TasteBook:
    def __init__(self, store: Store, playlists: Playlists | None = None, wall: Callable[[], float] = time.time):
        self.store, self.playlists, self._wall = store, playlists, wall
        self._saving = threading.Lock()  # one playlist per mood, even when two likes arrive at once

    # -- for the picking -----------------------------------------------------------------------------------------
    def for_mood(self, mood: str) -> Taste:
        since = self._wall() - SKIP_DAYS * 86400
        rows = self.store.taste(mood)
        return Taste(
            liked=frozenset(r["uri"] for r in rows if r["liked"]),
            banned=frozenset(r["uri"] for r in rows if r["skipped"] and r["skipped"] >= since and not r["liked"]),
            heard=tuple(self.store.heard(HEARD)),
        )

    def is_liked(self, mood: str, uri: str) -> bool:
        return any(r["uri"] == uri and r["liked"] for r in self.store.taste(mood))

    # -- signals -------------------------------------------------------------------------------------------------
    def early_skip(self, mood: str, track: dict[str, Any], listened: float) -> None:
        """A skip (PlayLog calls this for each one): within 30 s it bans the track from the mood for 30 days."""
        if listened >= EARLY_SKIP_S or self.is_liked(mood, track["uri"]):
            return
        self.store.set_taste(mood, track, "skipped", self._wall())
        log.info("%s skipped after %.0f s: not for %s for %d days", track.get("track"), listened, mood, SKIP_DAYS)

    def like(self, mood: str, track: dict[str, Any], liked: bool = True) -> str:
        """Like (or unlike) a track for a mood; returns what became of the mood's Spotify playlist, for the page."""
        self.store.set_taste(mood, track, "liked", self._wall() if liked else None)
        if liked:
            self.store.set_taste(mood, track, "skipped", None)
        log.info("%s %s for %s", track.get("track"), "liked" if liked else "unliked", mood)
        return self._save(mood, track["uri"], liked)

    def forget_skips(self, mood: str) -> int:
        n = self.store.forget_skips(mood, self._wall())
        log.info("forgot %d skipped tracks for %s", n, mood)
        return n

    # -- the playlists -------------------------------------------------------------------------------------------
    def playlists_state(self) -> str:
        """Where likes go besides the box: "saving" (playlists too), "reconnect" (the connection predates that), or
        "off" (no Spotify)."""
        return self.playlists.likes_state() if self.playlists is not None else "off"

    def _save(self, mood: str, uri: str, liked: bool) -> str:
        name = playlist_name(mood)
        state = self.playlists_state()
        if state == "reconnect":
            return "kept on Moodbox: reconnect Spotify in Settings to save likes to a playlist too"
        if state == "off" or self.playlists is None:
            return "kept on Moodbox"
        with self._saving:
            known = self.store.mood_music(mood).get("playlist")
            if known is None and not liked:
                return "kept on Moodbox"
            for attempt in (1, 2):
                try:
                    if known is None:
                        known = self.playlists.likes_playlist(name)
                        self.store.set_mood_playlist(mood, known)
                    if liked:
                        self.playlists.add_to_playlist(known, uri)
                    else:
                        self.playlists.remove_from_playlist(known, uri)
                    return f"{'saved to' if liked else 'taken out of'} “{name}” in Spotify"
                except PlayerError as exc:
                    if exc.state == "not-found" and attempt == 1:  # the playlist is gone: find or make it again
                        self.store.set_mood_playlist(mood, None)
                        known = None
                        continue
                    log.warning("could not update the playlist %r: %s", name, exc)
                    return f"kept on Moodbox; “{name}” in Spotify was not updated ({exc})"
        return "kept on Moodbox"

    # -- what the page shows -------------------------------------------------------------------------------------
    def suggestion(self, mood: str, source: MusicSource | None) -> str | None:
        """Advice to change a mood's music after 3 or more early skips of it within a week (since "Forget skips")."""
        if source is None:
            return None
        forgotten = self.store.mood_music(mood).get("skips_forgotten") or 0.0
        since = max(self._wall() - 7 * 86400, forgotten)
        n = self.store.early_skips(mood, source.key, since, EARLY_SKIP_S)
        if n < SUGGEST_SKIPS:
            return None
        return f"{n} songs from {source.short()} were skipped early this week: try other music for {mood} in Settings"

    def summary(self, music_for: Callable[[str], MusicSource | None]) -> dict[str, Any]:
        """Per mood: its music, likes, skipped tracks now kept out, the suggestion and its playlist."""
        since = self._wall() - SKIP_DAYS * 86400
        rows = self.store.taste()
        moods = {}
        for mood in EMOTIONS:
            source = music_for(mood)
            mine = [r for r in rows if r["mood"] == mood]
            moods[mood] = {
                "music": source.describe() if source else "",
                "likes": sum(1 for r in mine if r["liked"]),
                "skipped": sum(1 for r in mine if r["skipped"] and r["skipped"] >= since and not r["liked"]),
                "suggest": self.suggestion(mood, source),
                "playlist": playlist_name(mood) if self.store.mood_music(mood).get("playlist") else None,
            }
        return {"moods": moods, "playlists": self.playlists_state()}
