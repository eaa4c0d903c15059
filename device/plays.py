"""What Moodbox played, why, and how each track ended, followed from the speaker's playback state.

Moodbox starts a list of tracks; the speaker plays them one after another, and the household may skip one on the
page, in the Spotify app or on the speaker, pause, or put on music of its own. Each track Moodbox started is one
play in the store: its name, artist, cover address and times, what started it, and how it ended. Nothing else.
A skip within 30 s, wherever it was made, teaches the mood's taste (device/taste.py).

When a track ended is worked out from the playback state, not from when it was looked at: a new track that is 4 s
in started 4 s ago, so a skip made in the Spotify app is timed to the second, however seldom Moodbox asks.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from device.events import mood_word
from device.player import Playing
from device.store import Store

log = logging.getLogger(__name__)
ENDINGS = {
    "played": "played through",
    "skipped-page": "skipped on the page",
    "skipped-app": "skipped in the Spotify app or on the speaker",
    "paused": "paused",
    "taken-over": "someone else put on their music",
    "replaced": "Moodbox moved on to other music",
    "stopped": "the speaker stopped",
}
END_MARGIN_S = 5.0  # a track that changes this close to its end played through
GIVE_UP_PAUSED_S = 30 * 60  # paused this long (not by Moodbox), a play has ended


class Taste(Protocol):
    def early_skip(self, mood: str, track: dict[str, Any], listened: float) -> None: ...


def why_line(playing: Playing, liked: bool) -> str:
    """One line saying why this song plays, with "{ago}" where the time goes: the page writes "2 min ago" there,
    Home Assistant "at 21:04" (why_for_home_assistant)."""
    feels = mood_word(playing.mood)  # the page's word: "surprised", as in the mood picker and Settings
    reason = {
        "hold": f"Because you chose {feels} {{ago}}",
        "try": f"Because you tapped Try it for {feels} {{ago}}",
        "list-end": f"Because the room still feels {feels}",
    }.get(playing.why, f"Because the room turned {feels} {{ago}}")
    parts = [reason, f"from {playing.source.short()}"]
    if playing.after_skip:
        parts.append("after a skip")
    if liked:
        parts.append("you liked this")
    return " · ".join(parts)


def why_for_home_assistant(shown: dict[str, Any]) -> str:
    at = dt.datetime.fromtimestamp(shown.get("why_at") or time.time()).strftime("%H:%M")
    return str(shown.get("why_line") or "").replace("{ago}", f"at {at}")


class PlayLog:
    """The plays of the list Moodbox started last. Its methods are called by auto-play (starts, playback states,
    its own pauses) and by the page (a skip); each takes the wall-clock time."""

    def __init__(self, store: Store, taste: Taste | None = None, wall: Callable[[], float] = time.time) -> None:
        self.store, self.taste, self._wall = store, taste, wall
        self._lock = threading.RLock()
        self.playing: Playing | None = None
        self._open: dict[str, Any] | None = None  # the play now: id, index in the list, progress seen and when

    # -- Moodbox's own actions -----------------------------------------------------------------------------------
    def started(self, playing: Playing) -> None:
        """Moodbox started a list (or, without Spotify, would have): the track playing before it is over."""
        with self._lock:
            now = self._wall()
            self._end(now, "paused" if self._open and self._open["paused_since"] else "replaced")
            self.playing = playing
            if playing.preview:  # no track: the play says what would have played, and from where
                self.store.add_play(self._row(playing, {}, playing.why, now, preview=True))
                return
            if playing.queue:
                self._begin(0, playing.why, now)

    def skipped_on_page(self) -> bool:
        """The page's Skip (already sent to Spotify): the next track of the list starts. False when the list ran
        out (the caller starts more)."""
        with self._lock:
            o, now = self._open, self._wall()
            if o is None or self.playing is None:
                return True
            self._end(now, "skipped-page")
            if o["index"] + 1 >= len(self.playing.queue):
                return False
            self._begin(o["index"] + 1, "skip", now)
            return True

    def paused(self) -> None:
        """Moodbox paused its music (an empty room); the play ends as paused unless it plays on."""
        with self._lock:
            o = self._open
            if o is not None and o["paused_since"] is None:
                now = self._wall()
                o["progress"], o["seen"], o["paused_since"] = self._position(o, now), now, now

    def resumed(self) -> None:
        with self._lock:
            o = self._open
            if o is not None:
                o["seen"], o["paused_since"] = self._wall(), None

    def forget(self) -> None:
        """The history was deleted: the open play is gone with it, and the speaker is still followed."""
        with self._lock:
            if self._open is not None:
                self._open["id"] = None

    # -- what the speaker says -----------------------------------------------------------------------------------
    def observe(self, playback: dict[str, Any] | None) -> str | None:
        """One playback state (device/player: uri, progress and duration in seconds, playing). Returns what
        changed: "track" (another of the list's tracks plays), "list-ended" (its last track played through),
        "taken-over" (someone else's music), "stopped" (nothing plays, or paused for long), or None."""
        with self._lock:
            o, playing, now = self._open, self.playing, self._wall()
            if o is None or playing is None:
                return None
            queue = [t["uri"] for t in playing.queue]
            last = o["index"] == len(queue) - 1
            through = o["duration"] > 0 and self._position(o, now) >= o["duration"] - END_MARGIN_S
            if playback is None or playback["uri"] not in queue:
                if last and through:  # the list ran out (and Spotify may have gone on with music of its own)
                    self._end(now, "played")
                    return "list-ended"
                if playback is None:
                    self._end(now, "paused" if o["paused_since"] else "stopped")
                    return "stopped"
                self._end(self._changed_at(o, playback, now), "taken-over")
                return "taken-over"
            if playback["uri"] == o["uri"]:
                return self._same_track(o, playback, now, last and through)
            changed = self._changed_at(o, playback, now)
            heard = self._position(o, changed)
            ending = "played" if o["duration"] > 0 and heard >= o["duration"] - END_MARGIN_S else "skipped-app"
            self._end(changed, ending)
            after = [i for i, u in enumerate(queue) if u == playback["uri"] and i > o["index"]]
            index = after[0] if after else queue.index(playback["uri"])
            self._begin(index, "next" if ending == "played" else "skip", changed)
            self._seen(self._open, playback, now)
            return "track"

    def _same_track(self, o: dict[str, Any], playback: dict[str, Any], now: float, ran_out: bool) -> str | None:
        if playback["playing"]:
            self._seen(o, playback, now)
            return None
        at_an_end = playback["progress"] < 1.0 or playback["progress"] >= o["duration"] - END_MARGIN_S
        if ran_out and at_an_end:  # stopped after the list: Spotify shows its last track at the start (or the end)
            self._end(now, "played")
            return "list-ended"
        self._seen(o, playback, now)
        if now - o["paused_since"] >= GIVE_UP_PAUSED_S:
            self._end(now, "paused")
            return "stopped"
        return None

    # -- the bookkeeping -----------------------------------------------------------------------------------------
    @staticmethod
    def _position(o: dict[str, Any], at: float) -> float:
        """How far into the track the speaker is at `at`, from the last state seen."""
        return o["progress"] + (0.0 if o["paused_since"] is not None else max(0.0, at - o["seen"]))

    @staticmethod
    def _changed_at(o: dict[str, Any], playback: dict[str, Any], now: float) -> float:
        """When the track changed: the new one is `progress` seconds in (never before the last state seen)."""
        return max(o["seen"], now - playback["progress"]) if playback["playing"] else now

    @staticmethod
    def _seen(o: dict[str, Any], playback: dict[str, Any], now: float) -> None:
        o["progress"], o["seen"] = playback["progress"], now
        o["paused_since"] = None if playback["playing"] else o["paused_since"] or now

    def _row(self, playing: Playing, track: dict[str, Any], why: str, at: float, preview: bool = False) -> dict:
        return {
            "started": at,
            "mood": playing.mood,
            "uri": track.get("uri", ""),
            "track": track.get("track", ""),
            "artist": track.get("artist", ""),
            "cover": track.get("cover", ""),
            "source": playing.source.describe(),
            "source_key": playing.source.key,
            "why": why,
            "preview": int(preview),
        }

    def _begin(self, index: int, why: str, at: float) -> None:
        playing = self.playing
        assert playing is not None
        track = playing.queue[index]
        play_id = self.store.add_play(self._row(playing, track, why, at))
        self._open = {
            "id": play_id,
            "index": index,
            "uri": track["uri"],
            "track": track,
            "duration": float(track.get("duration") or 0),
            "progress": 0.0,
            "seen": at,
            "paused_since": None,
        }
        playing.track, playing.artist, playing.cover, playing.uri = (
            track.get("track", ""),
            track.get("artist", ""),
            track.get("cover", ""),
            track["uri"],
        )
        playing.after_skip = why == "skip"

    def _end(self, at: float, ending: str) -> None:
        o, playing = self._open, self.playing
        if o is None or playing is None:
            return
        self._open = None
        if ending == "played" and o["duration"] > 0 and o["paused_since"] is None:  # when it ran out, not now
            at = max(o["seen"], min(at, o["seen"] + o["duration"] - o["progress"]))
        heard = self._position(o, at)
        if o["duration"] > 0:
            heard = min(heard, o["duration"])
        if o["id"] is not None:
            self.store.end_play(o["id"], at, ending, round(heard, 1))
        log.info("%s (%s): %s after %.0f s", o["track"].get("track"), playing.mood, ENDINGS[ending], heard)
        if ending in ("skipped-page", "skipped-app") and self.taste is not None:
            self.taste.early_skip(playing.mood, o["track"], heard)
