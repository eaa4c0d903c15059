"""The [mqtt] settings in use: the config file's, overridden by what the owner saved on the page (Settings → Home
Assistant). Page changes are validated by the same model as the file, with strict JSON types; the password is
write-only: it is kept in the settings database and never sent back to the page or written to the log."""

from __future__ import annotations

import logging
import socket
from typing import Any

from pydantic import ValidationError

from device.config import Mqtt
from device.homeassistant._discovery import Topics, node_id
from device.settings import SettingsError, explain
from device.store import Store

log = logging.getLogger(__name__)
STORE_KEY = "mqtt"


def _plain(m: Mqtt) -> dict[str, Any]:
    return {**m.model_dump(), "password": m.password.get_secret_value()}


def _saved(store: Store) -> dict[str, Any]:
    saved = store.get(STORE_KEY) or {}
    return {k: v for k, v in saved.items() if k in Mqtt.model_fields} if isinstance(saved, dict) else {}


def effective(file: Mqtt, store: Store) -> Mqtt:
    saved = _saved(store)
    if not saved:
        return file
    try:
        return Mqtt.model_validate({**_plain(file), **saved})
    except ValidationError as exc:  # e.g. a CA file that has gone since
        log.warning("Home Assistant settings saved on the page no longer apply (%s): using the config file's", exc)
        return file


def candidate(file: Mqtt, store: Store, changes: Any) -> Mqtt:
    """The settings a partial change from the page would make, validated but not saved; SettingsError names each
    bad field. A password left out is the saved one."""
    if not isinstance(changes, dict) or not changes:
        raise SettingsError({"body": "send a JSON object with the MQTT settings to change"})
    try:
        return Mqtt.model_validate({**_plain(file), **_saved(store), **changes}, strict=True)
    except ValidationError as exc:
        raise SettingsError(explain(exc)) from None


def change(file: Mqtt, store: Store, changes: Any) -> Mqtt:
    """Validate and save a partial change from the page; SettingsError names each bad field."""
    new = candidate(file, store, changes)
    store.set(STORE_KEY, {**_saved(store), **{k: _plain(new)[k] for k in changes}})
    return new


def hostname() -> str:
    return socket.gethostname().split(".")[0] or "moodbox"


def topics_for(m: Mqtt) -> Topics:
    host = node_id(hostname()).lower()
    return Topics(m.base_topic or f"moodbox/{host}", m.discovery_prefix, node_id(m.client_id or f"moodbox_{host}"))


def client_id_for(m: Mqtt) -> str:
    return m.client_id or f"moodbox-{node_id(hostname()).lower()}"


def room_for(m: Mqtt) -> str:
    return m.room or hostname()


def for_page(m: Mqtt) -> dict[str, Any]:
    """What the page may see: everything but the password, which it only learns is set."""
    topics = topics_for(m)
    return {
        **m.model_dump(exclude={"password"}),
        "password_set": bool(m.password.get_secret_value()),
        "device_name": f"Moodbox {room_for(m)}",
        "state_topic": topics.state("mood"),
        "availability_topic": topics.availability,
    }
