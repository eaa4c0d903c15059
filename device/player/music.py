"""Which music fits which mood, and which of its tracks play next. Defaults work in Spotify's Development Mode:
searches, no recommendations. The household's taste (device/taste.py) is what steers the picking."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

SourceKind = Literal["search", "playlist", "top_tracks", "saved_tracks"]
TRACKS_PER_PLAY = 12
LIKED_EVERY = 2  # every other place in a list goes to a liked track, when one is free...
LIKED_GAP = 6  # ...which it is once at least 6 other tracks have started since it last did


@dataclass(frozen=True)
class MusicSource:
    kind: SourceKind
    value: str = ""  # the search query, or the playlist URI
    label: str = ""  # what the page shows (the playlist's name)

    def describe(self) -> str:
        if self.kind == "search":
            return f'Spotify search "{self.value}"'
        if self.kind == "playlist":
            return f"playlist {self.label or self.value}"
        return "your top tracks" if self.kind == "top_tracks" else "your saved tracks"

    def short(self) -> str:
        """What the Now card's why line says: “feel good pop”, your playlist “Sunday Morning”, your top tracks."""
        if self.kind == "search":
            return f"“{self.value}”"
        if self.kind == "playlist":
            return f"your playlist “{self.label}”" if self.label else "your playlist"
        return self.describe()

    @property
    def key(self) -> str:
        """Which music this is, for counting its skips (the label is only its name on the page)."""
        return f"{self.kind}:{self.value}"


@dataclass(frozen=True)
class Taste:
    """What the household taught Moodbox for one mood."""

    liked: frozenset[str] = frozenset()  # track URIs
    banned: frozenset[str] = frozenset()  # skipped within 30 s in the last 30 days: not picked
    heard: tuple[str, ...] = ()  # the tracks started lately on the speaker, any mood, oldest first


def pick(
    tracks: Sequence[dict], recent: Sequence[str], taste: Taste | None = None, n: int = TRACKS_PER_PLAY, rng=random
) -> list[dict]:
    """A list of up to n tracks: shuffled, without those played recently (`recent`, oldest first), which only fill
    up a short list; no banned track; and every other place a liked track, if one has not started within the last
    LIKED_GAP tracks (this list's included). A liked track may come twice in a list, never closer than that."""
    taste = taste or Taste()
    unique: dict[str, dict] = {}
    for t in tracks:
        if t["uri"] not in taste.banned or t["uri"] in taste.liked:  # a like outweighs a skip
            unique.setdefault(t["uri"], t)
    liked = [t for u, t in unique.items() if u in taste.liked]
    others = [t for u, t in unique.items() if u not in taste.liked]
    seen = set(recent)
    fresh = [t for t in others if t["uri"] not in seen]
    rng.shuffle(fresh)
    if len(fresh) < 5:
        order = {u: i for i, u in reversed(list(enumerate(recent)))}  # first (oldest) place of each
        fresh += sorted((t for t in others if t["uri"] in seen), key=lambda t: order[t["uri"]])
    rng.shuffle(liked)
    chosen: list[dict] = []
    for place in range(n):
        started = [*taste.heard, *(t["uri"] for t in chosen)]
        free = [t for t in liked if t["uri"] not in started[-LIKED_GAP:]]
        if free and (place % LIKED_EVERY == 0 or not fresh):
            last = {u: i for i, u in enumerate(started)}
            choice = min(free, key=lambda t: last.get(t["uri"], -1))  # the one heard longest ago
        elif fresh:
            choice = fresh.pop(0)
        else:
            break
        chosen.append(choice)
    return chosen


DEFAULT_MUSIC: dict[str, MusicSource] = {
    "happy": MusicSource("search", "feel good pop"),
    "surprise": MusicSource("search", "upbeat dance party"),
    "neutral": MusicSource("search", "chill lofi beats"),
    "sad": MusicSource("search", "mellow acoustic"),
    "angry": MusicSource("search", "hard rock anthems"),
    "fear": MusicSource("search", "calm ambient piano"),
    "disgust": MusicSource("search", "punk rock"),
}
