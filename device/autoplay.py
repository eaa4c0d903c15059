"""Mood changes to music: when the room's mood settles, start the matching music on the player.

Runs on its own bus thread, so a slow or failing player never holds up the frame loop.
"""

from __future__ import annotations

import logging
from dataclasses import asdict

from device.events import NOBODY, MoodChange
from device.player import Player, PlayerError
from device.player.music import DEFAULT_MUSIC, MusicSource
from device.roomview import RoomView

log = logging.getLogger(__name__)


class AutoPlay:
    def __init__(self, player: Player, view: RoomView, music: dict[str, MusicSource] | None = None) -> None:
        self.player, self.view = player, view
        self.music = dict(music or DEFAULT_MUSIC)
        self.enabled = True

    def on_mood(self, change: MoodChange) -> None:
        if change.mood == NOBODY or not self.enabled:
            return
        source = self.music.get(change.mood)
        if source is None:
            return
        try:
            playing = self.player.play(change.mood, source)
        except PlayerError as exc:
            log.warning("could not play for %s: %s", change.mood, exc)
            self.view.add_error(self.player.name, str(exc))
            return
        self.view.set_playing(
            {**asdict(playing), "source": {**asdict(playing.source), "description": playing.source.describe()}}
        )
        self.view.set("player", self.player.status())
