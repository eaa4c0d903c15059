"""The preview player: with no Spotify connected, Moodbox shows and logs what it would play."""

from __future__ import annotations

import logging
import time

from device.player import Playing, VolumeRule
from device.player.music import MusicSource, Taste

log = logging.getLogger(__name__)


class PreviewPlayer:
    name = "preview"

    def __init__(self, speaker: str = "") -> None:
        self.speaker = speaker or "your speaker"
        self.history: list[Playing] = []

    def play(
        self, mood: str, source: MusicSource, taste: Taste | None = None, volume: VolumeRule | None = None
    ) -> Playing:
        playing = Playing(mood=mood, source=source, speaker=self.speaker, preview=True, started_at=time.time())
        self.history.append(playing)
        del self.history[:-50]
        log.info(
            "preview: the mood is %s; would play %s on %s (connect Spotify to play for real)",
            mood,
            source.describe(),
            self.speaker,
        )
        return playing

    def someone_else_is_playing(self) -> bool:
        return False

    def playback(self) -> dict | None:
        return None  # nothing plays: there is nothing to follow

    def pause(self) -> bool:
        log.info("preview: would pause the music on %s (connect Spotify to play for real)", self.speaker)
        return True

    def resume(self) -> bool:
        log.info("preview: would play on from where the music paused on %s", self.speaker)
        return True

    def status(self) -> dict:
        return {
            "player": "preview",
            "connected": False,
            "speaker": self.speaker,
            "state": "preview",
            "message": "Spotify is not connected: showing what would play",
        }
