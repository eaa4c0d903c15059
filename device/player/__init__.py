"""Players behind one interface: Spotify Connect, or a preview that only shows what it would play."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from device.player.music import MusicSource


class PlayerError(RuntimeError):
    """Playback failed; `state` is what the page shows (e.g. 'speaker-not-found'), the message says what to do."""

    def __init__(self, state: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.state, self.retry_after = state, retry_after


@dataclass
class Playing:
    mood: str
    source: MusicSource
    tracks: list[str] = field(default_factory=list)  # "Artist - Title"
    speaker: str = ""
    preview: bool = False  # True: nothing actually plays
    started_at: float = 0.0
    track: str = ""  # the first track started: its title, artists and album cover (Spotify's image host)
    artist: str = ""
    cover: str = ""


class Player(Protocol):
    name: str

    def play(self, mood: str, source: MusicSource) -> Playing:
        """Start music for `mood` from `source` on the speaker; raises PlayerError."""
        ...

    def status(self) -> dict:
        """What the page shows about this player (connected, speaker, state)."""
        ...

    def someone_else_is_playing(self) -> bool:
        """True when someone changed the music from their own phone since Moodbox last started something."""
        ...

    def pause(self) -> bool:
        """Pause the speaker if it plays what Moodbox started; False when it played nothing of Moodbox's (paused
        already, or someone else's music, which Moodbox leaves alone). Raises PlayerError."""
        ...

    def resume(self) -> bool:
        """Play on from where `pause` stopped, when the speaker still holds Moodbox's paused music; False when it
        does not (the speaker forgot it, or it plays someone else's music), and the caller starts afresh. Raises
        PlayerError."""
        ...


# The implementations, after the names they use.
from device.player._fallback import SpotifyOrPreview  # noqa: E402
from device.player._preview import PreviewPlayer  # noqa: E402
from device.player._spotify import SpotifyPlayer  # noqa: E402
from device.player._spotify_auth import NotConnected, SpotifyAuth  # noqa: E402

__all__ = [
    "MusicSource",
    "NotConnected",
    "Player",
    "PlayerError",
    "Playing",
    "PreviewPlayer",
    "SpotifyAuth",
    "SpotifyOrPreview",
    "SpotifyPlayer",
]
