"""Home Assistant over MQTT: discovery, live states and controls (see README, "Home Assistant")."""

from device.homeassistant._bridge import HomeAssistant
from device.homeassistant._discovery import ENTITIES, HOLD_OPTIONS, LET_MOODBOX_DECIDE, MOODS, Topics

__all__ = ["ENTITIES", "HOLD_OPTIONS", "LET_MOODBOX_DECIDE", "MOODS", "HomeAssistant", "Topics"]
