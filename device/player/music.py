"""Which music fits which mood. Defaults work in Spotify's Development Mode: searches, no recommendations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SourceKind = Literal["search", "playlist", "top_tracks", "saved_tracks"]


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


DEFAULT_MUSIC: dict[str, MusicSource] = {
    "happy": MusicSource("search", "feel good pop"),
    "surprise": MusicSource("search", "upbeat dance party"),
    "neutral": MusicSource("search", "chill lofi beats"),
    "sad": MusicSource("search", "mellow acoustic"),
    "angry": MusicSource("search", "hard rock anthems"),
    "fear": MusicSource("search", "calm ambient piano"),
    "disgust": MusicSource("search", "punk rock"),
}
