"""What Home Assistant is told: one device, "Moodbox <room>", and its entities, as retained discovery configs.

Each entity has its own discovery topic, `<discovery_prefix>/<component>/<node>/<key>/config`, and its own plain
text state topic under the base topic (`moodbox/<hostname>/mood` ...). Commands arrive on `<base>/<key>/set`.
HA's documented keys only: https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from device import __version__
from device.events import EMOTIONS, NOBODY

MOODS = (*EMOTIONS, NOBODY)
LET_MOODBOX_DECIDE = "Let Moodbox decide"
HOLD_OPTIONS = (LET_MOODBOX_DECIDE, *EMOTIONS)
CORRECT_PROMPT = "Choose the real mood"  # the correction select's resting state: picking a mood teaches the box
CORRECT_OPTIONS = (CORRECT_PROMPT, *EMOTIONS)
ON, OFF = "ON", "OFF"
PRESS = "PRESS"


@dataclass(frozen=True)
class Entity:
    key: str  # the last topic level and the unique id's suffix
    component: str  # Home Assistant's platform: sensor, binary_sensor, switch, select, button
    name: str
    options: dict[str, Any] = field(default_factory=dict)  # more discovery keys
    state: bool = True  # has a state topic
    command: bool = False  # has a command topic

    @property
    def diagnostic(self) -> bool:
        return self.options.get("entity_category") == "diagnostic"


ENTITIES: tuple[Entity, ...] = (
    Entity("mood", "sensor", "Mood", {"device_class": "enum", "options": list(MOODS), "icon": "mdi:emoticon-outline"}),
    Entity("present", "binary_sensor", "Someone present", {"device_class": "occupancy"}),
    Entity("playing", "sensor", "Now playing", {"icon": "mdi:music"}),
    Entity("autoplay", "switch", "Auto-play", {"icon": "mdi:playlist-music"}, command=True),
    Entity("hold", "select", "Hold a mood", {"options": list(HOLD_OPTIONS), "icon": "mdi:pin"}, command=True),
    Entity("skip", "button", "Skip", {"icon": "mdi:skip-next"}, state=False, command=True),
    Entity(
        "correct",
        "select",
        "Read wrong? The mood is really",
        {"options": list(CORRECT_OPTIONS), "icon": "mdi:school-outline"},
        command=True,
    ),
    Entity("corrections", "sensor", "Corrections learned from", {"state_class": "measurement", "icon": "mdi:school"}),
    Entity("privacy", "switch", "Privacy mode (camera off)", {"icon": "mdi:camera-off"}, command=True),
    Entity(
        "fps",
        "sensor",
        "Frames per second",
        {"entity_category": "diagnostic", "state_class": "measurement", "unit_of_measurement": "fps"},
    ),
    Entity("camera", "sensor", "Camera", {"entity_category": "diagnostic", "icon": "mdi:cctv"}),
    Entity("model", "sensor", "Model version", {"entity_category": "diagnostic", "icon": "mdi:brain"}),
)
BY_KEY = {e.key: e for e in ENTITIES}
COMMANDS = tuple(e.key for e in ENTITIES if e.command)


def node_id(text: str) -> str:
    """A discovery node id from a host or client name: HA allows [a-zA-Z0-9_-] only."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", text) or "moodbox"


@dataclass(frozen=True)
class Topics:
    base: str  # moodbox/<hostname>
    discovery_prefix: str  # homeassistant
    node: str  # moodbox_<hostname>: the device's identifier and every unique id's stem

    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    @property
    def ha_status(self) -> str:
        """Home Assistant announces "online" here when it starts: then discovery and states are sent again."""
        return f"{self.discovery_prefix}/status"

    def state(self, key: str) -> str:
        return f"{self.base}/{key}"

    def attributes(self, key: str) -> str:
        return f"{self.base}/{key}/attributes"

    def command(self, key: str) -> str:
        return f"{self.base}/{key}/set"

    def discovery(self, entity: Entity) -> str:
        return f"{self.discovery_prefix}/{entity.component}/{self.node}/{entity.key}/config"

    def command_key(self, topic: str) -> str | None:
        """The entity a command topic belongs to, or None."""
        for key in COMMANDS:
            if topic == self.command(key):
                return key
        return None


def discovery_messages(topics: Topics, room: str) -> list[tuple[str, str]]:
    """(topic, JSON payload) for every entity: published retained, so HA finds them whenever it starts."""
    device = {
        "identifiers": [topics.node],
        "name": f"Moodbox {room}",
        "manufacturer": "Moodbox",
        "model": "Moodbox",
        "sw_version": __version__,
    }
    origin = {"name": "Moodbox", "sw_version": __version__}
    out = []
    for e in ENTITIES:
        config: dict[str, Any] = {
            "name": e.name,
            "unique_id": f"{topics.node}_{e.key}",
            "availability_topic": topics.availability,
            "device": device,
            "origin": origin,
            **e.options,
        }
        if e.state:
            config["state_topic"] = topics.state(e.key)
        if e.command:
            config["command_topic"] = topics.command(e.key)
        if e.key in ("mood", "playing"):  # the mood's confidence; why this song plays
            config["json_attributes_topic"] = topics.attributes(e.key)
        out.append((topics.discovery(e), json.dumps(config, separators=(",", ":"))))
    return out


class BadCommand(ValueError):
    """A payload on a command topic that is not one of the entity's payloads; it is logged and ignored."""


def parse_command(key: str, payload: bytes) -> Any:
    """What a command payload asks for: a bool for the switches, a mood or None for the selects (hold, correct),
    True for skip."""
    if len(payload) > 64:
        raise BadCommand(f"{len(payload)} bytes is too long for a {key} command")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise BadCommand(f"the {key} command is not UTF-8 text") from None
    entity = BY_KEY[key]
    if entity.component == "switch" and text in (ON, OFF):
        return text == ON
    options = entity.options.get("options", ())
    if entity.component == "select" and text in options:
        return None if text in (LET_MOODBOX_DECIDE, CORRECT_PROMPT) else text
    if entity.component == "button" and text == PRESS:
        return True
    allowed = {"switch": f"{ON} or {OFF}", "select": ", ".join(options), "button": PRESS}[entity.component]
    raise BadCommand(f"{text[:40]!r} is not a {key} command: send {allowed}")
