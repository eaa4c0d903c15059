"""Players behind one interface: Spotify Connect, or a preview that only shows what it would play."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from device.player.music import MusicSource, Taste


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
    track: str = ""  # the track playing now: its title, artists and album cover (Spotify's image host)
    artist: str = ""
    cover: str = ""
    uri: str = ""
    queue: list[dict] = field(default_factory=list)  # the list started: uri, track, artist, cover, duration (s)
    why: str = "mood"  # what started the list: mood, hold ("not my mood"), try ("Try it"), list-end
    why_at: float = 0.0  # when that happened (wall clock)
    after_skip: bool = False  # the track playing now came on because the one before was skipped
    volume: int | None = None  # the speaker's volume once the list started; None: unknown or not controllable
    volume_control: bool | None = None  # False: the speaker does not let apps change its volume


@dataclass(frozen=True)
class VolumeRule:
    """How loud Moodbox starts its music: a mood's own volume, and a cap (the night's); None leaves it as it is."""

    set_to: int | None = None
    at_most: int | None = None

    def target(self, current: int | None) -> int | None:
        """The volume to set, or None to leave the speaker as it is."""
        want = self.set_to if self.set_to is not None else current
        if want is not None and self.at_most is not None:
            want = min(want, self.at_most)
        return want if want is not None and want != current else None


class Player(Protocol):
    name: str

    def play(
        self, mood: str, source: MusicSource, taste: Taste | None = None, volume: VolumeRule | None = None
    ) -> Playing:
        """Start music for `mood` from `source` on the speaker, picked with the household's taste for that mood and
        at the rule's volume; raises PlayerError."""
        ...

    def playback(self) -> dict | None:
        """What the speaker plays now, for following Moodbox's music (None: nothing, or nothing to follow)."""
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
    "Taste",
    "VolumeRule",
]
