"""`[player] kind = "auto"`: Spotify once it is connected; until then, the preview shows what would play."""

from __future__ import annotations

from device.player import Playing, VolumeRule
from device.player._preview import PreviewPlayer
from device.player._spotify import SpotifyPlayer
from device.player.music import MusicSource, Taste


class SpotifyOrPreview:
    def __init__(self, spotify: SpotifyPlayer, preview: PreviewPlayer) -> None:
        self.spotify, self.preview = spotify, preview

    @property
    def _active(self) -> SpotifyPlayer | PreviewPlayer:
        return self.spotify if self.spotify.auth.state in ("connected", "reconnect") else self.preview

    @property
    def name(self) -> str:
        return self._active.name

    def play(
        self, mood: str, source: MusicSource, taste: Taste | None = None, volume: VolumeRule | None = None
    ) -> Playing:
        return self._active.play(mood, source, taste, volume)

    def playback(self) -> dict | None:
        return self._active.playback()

    def someone_else_is_playing(self) -> bool:
        return self._active.someone_else_is_playing()

    def pause(self) -> bool:
        return self._active.pause()

    def resume(self) -> bool:
        return self._active.resume()

    def status(self) -> dict:
        status = self._active.status()
        status["auth"] = self.spotify.auth.state
        return status
