"""Moodbox as a Home Assistant device: states out on change, commands in through the page's own operations.

Reads the Moodbox the way the page does (its view, settings and counters) and hears mood changes from the bus;
a command from Home Assistant calls the same Moodbox operation as the page's button (with the same validation
and the same manners), on a worker thread of its own, so a slow Spotify call never holds up the MQTT link.
Nothing here ever holds a picture: every payload is text or JSON built from names and numbers.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from typing import Any, Protocol

from paho.mqtt.client import MQTTMessage

from device.config import Mqtt
from device.events import NOBODY, MoodChange
from device.homeassistant import _settings
from device.homeassistant._discovery import (
    CORRECT_PROMPT,
    ENTITIES,
    LET_MOODBOX_DECIDE,
    OFF,
    ON,
    BadCommand,
    discovery_messages,
    parse_command,
)
from device.homeassistant._link import Link, try_settings
from device.plays import why_for_home_assistant
from device.settings import SettingsError
from device.store import Store

log = logging.getLogger(__name__)
READ_EVERY_S = 0.5  # how often the states are compared with what was published (a mood change is sent at once)
AT_MOST_EVERY_S = {"fps": 30.0, "mood/attributes": 2.0}  # states that move all the time are sent less often
MAX_STATE_CHARS = 255  # Home Assistant's limit for a state


class Box(Protocol):
    """What Home Assistant needs from the Moodbox (device/moodbox.py): the page's own reads and operations."""

    view: Any
    pipeline: Any
    feed: Any
    classifier: Any
    engine: Any

    @property
    def settings(self) -> Any: ...
    def update_settings(self, changes: dict) -> Any: ...
    def not_my_mood(self, mood: str | None) -> None: ...
    def correct_mood(self, mood: str) -> dict[str, Any]: ...
    def skip(self) -> None: ...


def now_playing(playing: dict[str, Any] | None) -> str:
    if not playing:
        return "nothing"
    if playing.get("paused"):  # Moodbox paused it in an empty room
        return "paused"
    source = (playing.get("source") or {}).get("description") or ""
    if playing.get("preview"):
        text = f"would play {source}"
    elif playing.get("track"):
        text = f"{playing.get('artist') or ''} - {playing['track']}".strip(" -")
    else:
        text = source
    return text[:MAX_STATE_CHARS] or "nothing"


def now_playing_attributes(playing: dict[str, Any] | None) -> str:
    """The Now card's facts about the song: why it plays (the same line), its mood, music, and whether it is liked."""
    if not playing:
        return json.dumps({"why": None})
    return json.dumps(
        {
            "why": why_for_home_assistant(playing),
            "mood": playing.get("mood"),
            "track": playing.get("track") or None,
            "artist": playing.get("artist") or None,
            "music": (playing.get("source") or {}).get("description"),
            "liked": bool(playing.get("liked")),
            "speaker": playing.get("speaker") or None,
        },
        ensure_ascii=False,
    )


class HomeAssistant:
    def __init__(self, box: Box, file_settings: Mqtt, store: Store) -> None:
        self.box, self._file, self._store = box, file_settings, store
        self.settings = _settings.effective(file_settings, store)
        self._topics = _settings.topics_for(self.settings)
        self._mood, self._confidence = NOBODY, 0.0
        self._corrections = 0
        self._read_at = 0.0
        self._published: dict[str, str] = {}
        self._sent_at: dict[str, float] = {}
        self._commands: queue.Queue = queue.Queue(16)
        self._worker = threading.Thread(target=self._run_commands, name="mqtt-commands", daemon=True)
        self._last_error: str | None = None
        self.ignored = 0  # malformed commands, for the log's rate limit and the tests
        self.link = Link(self._connected, self._message, self._tick, self._status)
        self._trying = threading.Lock()  # "Test connection": one at a time

    # -- lifecycle ----------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._worker.start()
        self.link.start(self.settings, self._will(), _settings.client_id_for(self.settings))

    def stop(self) -> None:
        self.link.stop()
        self._commands.put(None)
        self._worker.join(2)

    def _will(self) -> tuple[str, str]:
        return self._topics.availability, "offline"

    # -- the page's Settings → Home Assistant -------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        return {**_settings.for_page(self.settings), "status": self.link.status()}

    def update_settings(self, changes: Any) -> dict[str, Any]:
        """Validate, save and apply (reconnect with the new settings); SettingsError names each bad field."""
        self.settings = _settings.change(self._file, self._store, changes)
        self._topics = _settings.topics_for(self.settings)
        self.link.reconfigure(self.settings, self._will(), _settings.client_id_for(self.settings))
        log.info("Home Assistant settings changed: %s", ", ".join(sorted(changes)))
        return self.describe()

    def try_settings(self, changes: Any) -> dict[str, Any]:
        """Settings → Home Assistant's "Test connection": connect once with the typed settings, without saving them
        or touching the live link. One test at a time; SettingsError for settings that cannot be tried."""
        settings = _settings.candidate(self._file, self._store, changes)
        if not settings.host:
            raise SettingsError({"host": "type the broker's name or address first"})
        if not self._trying.acquire(blocking=False):
            raise SettingsError({"body": "a test is already running: wait for its answer"})
        try:
            ok, message = try_settings(settings, _settings.client_id_for(settings) + "-test")
        finally:
            self._trying.release()
        log.info("Home Assistant: tested %s:%s: %s", settings.host, settings.port, message)
        return {"ok": ok, "message": message}

    # -- from the bus ---------------------------------------------------------------------------------------------
    def on_mood(self, change: MoodChange) -> None:
        self._mood, self._confidence = change.mood, change.confidence
        self._read_at = 0.0  # sent on the link's next turn, within 0.1 s

    def on_learning(self, state: dict[str, Any]) -> None:
        """The learner refitted (a correction made, undone or forgotten): the count goes out on the next turn."""
        self._corrections = int(state.get("corrections", 0))
        self._read_at = 0.0

    # -- on the link's thread -------------------------------------------------------------------------------------
    def _status(self, status: dict[str, Any]) -> None:
        self.box.view.set("mqtt", status)
        error = status.get("error")
        if error and error != self._last_error:
            self.box.view.add_error("mqtt", error)
        self._last_error = error

    def _connected(self, link: Link) -> None:
        t = self._topics
        for key in (e.key for e in ENTITIES if e.command):
            link.subscribe(t.command(key))
        link.subscribe(t.ha_status)
        self._announce(link)

    def _announce(self, link: Link) -> None:
        """Discovery first, then availability, then every state: what HA needs after either side (re)starts."""
        for topic, payload in discovery_messages(self._topics, _settings.room_for(self.settings)):
            link.publish(topic, payload)
        link.publish(self._topics.availability, "online")
        self._published.clear()
        self._sent_at.clear()
        self._read_at = 0.0
        self._tick(link)

    def states(self) -> dict[str, str]:
        """Every entity's state as the text Home Assistant gets."""
        box, s = self.box, self.box.settings
        snap = box.view.snapshot()
        override = (snap.get("autoplay") or {}).get("override") or {}
        held = override.get("mood") if override.get("until", 0) > time.time() else None
        return {
            "mood": self._mood,
            "mood/attributes": json.dumps({"confidence": round(self._confidence, 2), "faces": len(snap["faces"])}),
            "present": ON if self._mood != NOBODY or box.engine.someone_here else OFF,  # a face too dark to read too
            "playing": now_playing(snap.get("playing")),
            "playing/attributes": now_playing_attributes(snap.get("playing")),
            "autoplay": ON if s.autoplay else OFF,
            "hold": held or LET_MOODBOX_DECIDE,
            "correct": CORRECT_PROMPT,
            "corrections": str(self._corrections),
            "privacy": ON if s.privacy_mode else OFF,
            "fps": f"{box.pipeline.fps:.0f}",
            "camera": str(box.feed.state),
            "model": str(box.classifier.version),
        }

    def _tick(self, link: Link) -> None:
        now = time.monotonic()
        if now < self._read_at:
            return
        self._read_at = now + READ_EVERY_S
        for key, value in self.states().items():
            if self._published.get(key) == value:
                continue
            if key in self._published and now - self._sent_at.get(key, 0) < AT_MOST_EVERY_S.get(key, 0):
                continue
            link.publish(self._topics.state(key), value)
            self._published[key], self._sent_at[key] = value, now

    def _message(self, link: Link, msg: MQTTMessage) -> None:
        if msg.topic == self._topics.ha_status:
            if msg.payload == b"online":
                log.info("Home Assistant started: sending discovery and states again")
                self._announce(link)
            return
        key = self._topics.command_key(msg.topic)
        if key is None:
            return
        try:
            if msg.retain:
                raise BadCommand("a retained command would run again at every reconnect")
            value = parse_command(key, msg.payload)
        except BadCommand as exc:
            self.ignored += 1
            if self.ignored <= 10 or self.ignored % 100 == 0:
                log.warning("MQTT: ignored a command on %s: %s (%d ignored so far)", msg.topic, exc, self.ignored)
            return
        try:
            self._commands.put_nowait((key, value))
        except queue.Full:
            log.warning("MQTT: too many commands at once; ignored %s", key)

    # -- commands, on their own thread ------------------------------------------------------------------------------
    def _run_commands(self) -> None:
        while (item := self._commands.get()) is not None:
            key, value = item
            try:
                self.run_command(key, value)
            except Exception as exc:  # refused settings, Spotify not connected, a full disk: said, never fatal
                log.warning("Home Assistant command %s failed: %s", key, exc)
                self.box.view.add_error("home assistant", f"{key}: {exc}")
            self._read_at = 0.0

    def run_command(self, key: str, value: Any) -> None:
        """The page's own operation for each command (web_ui/app.py calls the same ones)."""
        log.info("Home Assistant: %s %s", key, value)
        if key == "autoplay":
            self.box.update_settings({"autoplay": value})
        elif key == "privacy":
            self.box.update_settings({"privacy_mode": value})
        elif key == "hold":
            self.box.not_my_mood(value)
        elif key == "skip":
            self.box.skip()
        elif key == "correct" and value is not None:
            self.box.correct_mood(value)  # ValueError (nobody in view, ...) is said on the page and in the log
