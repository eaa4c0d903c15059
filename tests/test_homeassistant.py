"""Moodbox in Home Assistant over MQTT, against a real Mosquitto broker (tests/mqtt_broker.py) and the real daemon.

The test's MQTT client plays Home Assistant: it checks the discovery payloads against the keys and types of HA's
MQTT discovery schema (below, as JSON Schema), watches the state topics, and sends the commands HA would send.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import re
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import jsonschema
import pytest

from device.events import EMOTIONS
from tests.conftest import DaemonProcess, free_port, isolated_env
from tests.fake_spotify import FakeSpotify, landing
from tests.mqtt_broker import Broker, Listener

BASE, PREFIX = "moodbox/test", "homeassistant"
NODE = "moodbox-test"
MOODS = [*EMOTIONS, "nobody"]
HOLD = ["Let Moodbox decide", *EMOTIONS]

# -- Home Assistant's MQTT discovery schema, the part for the entity types Moodbox uses -----------------------------
# From HA's documentation (integrations/sensor.mqtt, binary_sensor.mqtt, switch.mqtt, select.mqtt, button.mqtt, and
# "MQTT discovery": device, origin, availability) and its voluptuous schemas (homeassistant/components/mqtt/).
# HA drops unknown keys from a discovery payload silently; this schema refuses them, so a misspelt key fails here.
_TOPIC = {"type": "string", "minLength": 1, "pattern": r"^[^+#\x00]+$"}
_COMMON = {
    "name": {"type": ["string", "null"]},
    "unique_id": {"type": "string", "minLength": 1},
    "availability_topic": _TOPIC,
    "payload_available": {"type": "string"},
    "payload_not_available": {"type": "string"},
    "availability_mode": {"enum": ["all", "any", "latest"]},
    "device": {
        "type": "object",
        "additionalProperties": False,
        "anyOf": [{"required": ["identifiers"]}, {"required": ["connections"]}],
        "properties": {
            "identifiers": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
            "connections": {"type": "array"},
            "name": {"type": "string"},
            "manufacturer": {"type": "string"},
            "model": {"type": "string"},
            "model_id": {"type": "string"},
            "sw_version": {"type": "string"},
            "hw_version": {"type": "string"},
            "serial_number": {"type": "string"},
            "suggested_area": {"type": "string"},
            "configuration_url": {"type": "string"},
            "via_device": {"type": "string"},
        },
    },
    "origin": {
        "type": "object",
        "additionalProperties": False,
        "required": ["name"],
        "properties": {"name": {"type": "string"}, "sw_version": {"type": "string"}, "support_url": {"type": "string"}},
    },
    "entity_category": {"enum": ["config", "diagnostic"]},
    "enabled_by_default": {"type": "boolean"},
    "icon": {"type": "string", "pattern": "^[a-z]+:[a-z0-9-]+$"},
    "qos": {"enum": [0, 1, 2]},
    "encoding": {"type": "string"},
    "json_attributes_topic": _TOPIC,
    "json_attributes_template": {"type": "string"},
    "value_template": {"type": "string"},
    "default_entity_id": {"type": "string"},
}
_SCHEMAS = {
    "sensor": {
        "required": ["state_topic"],
        "properties": {
            "state_topic": _TOPIC,
            "device_class": {"enum": ["enum", "timestamp", "duration", "temperature", "power", "energy", "data_rate"]},
            "options": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            "state_class": {"enum": ["measurement", "measurement_angle", "total", "total_increasing"]},
            "unit_of_measurement": {"type": "string"},
            "suggested_display_precision": {"type": "integer", "minimum": 0},
            "force_update": {"type": "boolean"},
            "expire_after": {"type": "integer", "minimum": 0},
        },
        # HA: options only with device_class enum, and an enum sensor has no state_class or unit.
        "allOf": [
            {"if": {"required": ["options"]}, "then": {"required": ["device_class"]}},
            {
                "if": {"required": ["device_class"], "properties": {"device_class": {"const": "enum"}}},
                "then": {
                    "required": ["options"],
                    "not": {"anyOf": [{"required": ["state_class"]}, {"required": ["unit_of_measurement"]}]},
                },
            },
        ],
    },
    "binary_sensor": {
        "required": ["state_topic"],
        "properties": {
            "state_topic": _TOPIC,
            "device_class": {"enum": ["occupancy", "presence", "motion", "connectivity", "problem", "running"]},
            "payload_on": {"type": "string"},
            "payload_off": {"type": "string"},
            "off_delay": {"type": "integer", "minimum": 0},
            "force_update": {"type": "boolean"},
            "expire_after": {"type": "integer", "minimum": 0},
        },
    },
    "switch": {
        "required": ["command_topic"],
        "properties": {
            "command_topic": _TOPIC,
            "state_topic": _TOPIC,
            "device_class": {"enum": ["outlet", "switch"]},
            "payload_on": {"type": "string"},
            "payload_off": {"type": "string"},
            "state_on": {"type": "string"},
            "state_off": {"type": "string"},
            "optimistic": {"type": "boolean"},
            "retain": {"type": "boolean"},
            "command_template": {"type": "string"},
        },
    },
    "select": {
        "required": ["command_topic", "options"],
        "properties": {
            "command_topic": _TOPIC,
            "state_topic": _TOPIC,
            "options": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            "optimistic": {"type": "boolean"},
            "retain": {"type": "boolean"},
            "command_template": {"type": "string"},
        },
    },
    "button": {
        "required": ["command_topic"],
        "properties": {
            "command_topic": _TOPIC,
            "payload_press": {"type": "string"},
            "device_class": {"enum": ["identify", "restart", "update"]},
            "retain": {"type": "boolean"},
            "command_template": {"type": "string"},
        },
    },
}
DISCOVERY_SCHEMA = {
    component: {
        "type": "object",
        "additionalProperties": False,
        "required": ["unique_id", "device", *s["required"]],
        "properties": {**_COMMON, **s["properties"]},
        **({"allOf": s["allOf"]} if "allOf" in s else {}),
    }
    for component, s in _SCHEMAS.items()
}
EXPECTED = {  # what appears in Home Assistant
    "sensor": {"mood", "playing", "fps", "camera", "model", "corrections"},
    "binary_sensor": {"present"},
    "switch": {"autoplay", "privacy"},
    "select": {"hold", "correct"},
    "button": {"skip"},
}


def until(check, timeout: float = 10, every: float = 0.1):
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > end:
            return value
        time.sleep(every)


def start_daemon(
    tmp: Path, broker: Broker, extra: str = "", camera: str = 'source = "demo"', **mqtt: object
) -> DaemonProcess:
    cfg = tmp / "moodbox.toml"
    cfg.write_text(f"[camera]\n{camera}\n" + extra + broker.toml(**mqtt))
    d = DaemonProcess(tmp, ["--config", str(cfg)], isolated_env(tmp))
    d.wait_healthy()
    return d


def frames(d: DaemonProcess) -> int:
    with urllib.request.urlopen(d.base + "/healthz", timeout=5) as r:
        return json.loads(r.read())["frames"]


# -- one broker, one Spotify stand-in and one daemon for the happy paths ----------------------------------------------
@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    b = Broker(tmp_path_factory.mktemp("mosquitto")).start()
    yield b
    b.kill()


@pytest.fixture(scope="module")
def fake():
    with FakeSpotify() as f:
        yield f


@pytest.fixture(scope="module")
def listener(broker):
    ha = Listener(broker)
    yield ha
    ha.close()


@pytest.fixture(scope="module")
def box(tmp_path_factory, broker, fake, listener):
    tmp = tmp_path_factory.mktemp("ha-box")
    spotify = (
        f'[spotify]\nclient_id = "{fake.client_id}"\naccounts_url = "{fake.url}"\napi_url = "{fake.api_url}"\n'
        f'speaker = "Kitchen"\nredirect_port = {free_port()}\n'
    )
    d = start_daemon(tmp, broker, spotify)
    http = d.login()
    url = http.post(d.base + "/api/spotify/connect", timeout=10).json()["url"]

    landed = landing(url)
    assert http.post(d.base + "/api/spotify/finish", json={"url": landed}, timeout=10).json()["state"] == "connected"
    d.http = http
    yield d
    assert d.stop() == 0, d.log()


def test_discovery_is_retained_and_matches_home_assistants_schema(box, broker, listener):
    listener.wait_for(f"{BASE}/availability", b"online", timeout=15)
    late = Listener(broker, f"{PREFIX}/#")  # Home Assistant starting later still finds the device: retained
    try:
        until(lambda: len(late.messages) >= 10, timeout=5)
        configs = {m.topic: m for m in late.messages if m.topic.endswith("/config")}
    finally:
        late.close()
    found: dict[str, set[str]] = {}
    devices, unique_ids = [], set()
    for topic, m in configs.items():
        assert m.retain, topic
        prefix, component, node, key, _ = topic.split("/")
        assert (prefix, node) == (PREFIX, NODE)
        payload = json.loads(m.payload)
        jsonschema.validate(payload, DISCOVERY_SCHEMA[component])
        found.setdefault(component, set()).add(key)
        devices.append(payload["device"])
        unique_ids.add(payload["unique_id"])
        assert payload["availability_topic"] == f"{BASE}/availability"
        if "state_topic" in payload:
            assert payload["state_topic"] == f"{BASE}/{key}"
        if "command_topic" in payload:
            assert payload["command_topic"] == f"{BASE}/{key}/set"
        if key == "mood":
            assert payload["options"] == MOODS and payload["json_attributes_topic"] == f"{BASE}/mood/attributes"
        if key == "playing":
            assert payload["json_attributes_topic"] == f"{BASE}/playing/attributes"
        if key == "hold":
            assert payload["options"] == HOLD
        if key == "correct":
            assert payload["options"] == ["Choose the real mood", *EMOTIONS]
        if key in ("fps", "camera", "model"):
            assert payload["entity_category"] == "diagnostic"
    assert found == EXPECTED
    assert len(unique_ids) == sum(map(len, EXPECTED.values())) and all(dev == devices[0] for dev in devices)
    assert devices[0]["name"] == "Moodbox Test Room" and devices[0]["identifiers"] == [NODE]
    # The schema refuses what HA would not use: a misspelt key, or a unit on an enum sensor.
    mood = json.loads(configs[f"{PREFIX}/sensor/{NODE}/mood/config"].payload)
    for bad in ({**mood, "state_topc": "x"}, {**mood, "unit_of_measurement": "%"}, {**mood, "unique_id": 5}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, DISCOVERY_SCHEMA["sensor"])
    # Each state is one HA accepts for its entity, and states are retained too.
    for key, allowed in (("mood", MOODS), ("present", ["ON", "OFF"]), ("autoplay", ["ON", "OFF"]), ("hold", HOLD)):
        m = listener.wait_for(f"{BASE}/{key}")
        assert m.payload.decode() in allowed, (key, m.payload)


def test_the_now_playing_sensor_says_what_plays_and_when_the_empty_room_paused_it():
    from device.homeassistant._bridge import now_playing

    source = {"description": 'Spotify search "feel good pop"'}
    playing = {"source": source, "track": "Sun", "artist": "Band", "preview": False}
    assert now_playing(playing) == "Band - Sun"
    assert now_playing({**playing, "preview": True}) == 'would play Spotify search "feel good pop"'
    assert now_playing({**playing, "paused": True}) == "paused"
    assert now_playing(None) == "nothing"


def test_a_mood_change_arrives_on_the_state_topic_and_nothing_is_sent_per_frame(box, listener):
    m = until(
        lambda: next((m for m in listener.messages if m.topic == f"{BASE}/mood" and m.payload != b"nobody"), None), 30
    )
    assert m, "no mood from the demo feed reached the state topic"
    state = box.http.get(box.base + "/api/state", timeout=5).json()
    changes = [c["mood"] for c in state["recent_changes"]]
    assert m.payload.decode() in changes, (m.payload, changes)
    # "Someone present" follows the faces, not the mood's dwell: on by the time the mood is, and often before.
    assert listener.wait_for(f"{BASE}/present", b"ON").at <= m.at + 0.5
    attributes = json.loads(listener.wait_for(f"{BASE}/mood/attributes", after=m.at).payload)
    assert set(attributes) == {"confidence", "faces"} and 0 <= attributes["confidence"] <= 1
    # On change, never per frame: over 5 s of frames, a handful of state messages at most.
    f0, since = frames(box), time.time()
    time.sleep(5)
    f1 = frames(box)
    sent = [x for x in listener.messages if x.at >= since and x.topic.startswith(BASE + "/")]
    assert f1 - f0 >= 25, "the demo feed ran"
    assert len(sent) <= 12 and len(sent) < (f1 - f0) / 5, [(x.topic, x.payload) for x in sent]


def test_each_command_works_end_to_end(box, listener, fake):
    http, base = box.http, box.base

    def command(key: str, payload: str, expect: str) -> None:
        sent = time.time()
        listener.send(f"{BASE}/{key}/set", payload)
        listener.wait_for(f"{BASE}/{key}", expect.encode(), after=sent, timeout=5)

    command("autoplay", "OFF", "OFF")
    assert http.get(base + "/api/settings", timeout=5).json()["autoplay"] is False  # the page's own setting
    command("autoplay", "ON", "ON")
    assert http.get(base + "/api/settings", timeout=5).json()["autoplay"] is True

    held = time.time()
    command("hold", "sad", "sad")  # "Not my mood": the page's override, for the configured time
    override = http.get(base + "/api/state", timeout=5).json()["autoplay"]["override"]
    assert override["mood"] == "sad" and override["until"] > time.time() + 25 * 60
    # The sad music plays, and "Now playing" says why, as the Now card does.
    why = until(lambda: next((a for a in attributes_since(listener, held) if a["mood"] == "sad"), None))
    assert re.fullmatch(r"Because you chose sad at \d\d:\d\d · from “mellow acoustic”", why["why"]), why
    assert why["track"] and why["liked"] is False and why["music"] == 'Spotify search "mellow acoustic"'
    command("hold", "Let Moodbox decide", "Let Moodbox decide")
    assert until(lambda: http.get(base + "/api/state", timeout=5).json()["autoplay"]["override"] is None, 5)

    before = len(fake.calls("POST", "/v1/me/player/next"))
    listener.send(f"{BASE}/skip/set", "PRESS")
    assert until(lambda: len(fake.calls("POST", "/v1/me/player/next")) == before + 1, 5), "no skip reached Spotify"
    assert fake.calls("POST", "/v1/me/player/next")[-1].query["device_id"] == ["dev-kitchen"]

    # "Read wrong? The mood is really ...": a correction, as on the page; the count of corrections follows
    assert listener.wait_for(f"{BASE}/corrections").payload == b"0"
    assert listener.wait_for(f"{BASE}/correct").payload == b"Choose the real mood"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # sent while a face is in view and the room's mood is not fear already
        if http.get(base + "/api/state", timeout=5).json()["mood"]["name"] not in ("nobody", "fear"):
            sent = time.time()
            listener.send(f"{BASE}/correct/set", "fear")
            with contextlib.suppress(AssertionError):  # the face left just then: the page's error, and again
                listener.wait_for(f"{BASE}/corrections", b"1", after=sent, timeout=3)
                break
        time.sleep(0.5)
    learning = http.get(base + "/api/learning", timeout=5).json()
    assert learning["corrections"] == 1 and learning["recent"][0]["mood"] == "fear"
    assert http.delete(base + "/api/corrections/last", timeout=5).json()["undone"]["mood"] == "fear"
    listener.wait_for(f"{BASE}/corrections", b"0", timeout=5)

    command("privacy", "ON", "ON")
    assert http.get(base + "/api/settings", timeout=5).json()["privacy_mode"] is True
    assert until(lambda: http.get(base + "/healthz", timeout=5).json()["camera"]["state"] == "off", 5)
    listener.wait_for(f"{BASE}/camera", b"off", timeout=5)
    command("privacy", "OFF", "OFF")
    assert until(lambda: http.get(base + "/healthz", timeout=5).json()["camera"]["state"] == "live", 10)
    # A change on the page reaches Home Assistant too.
    sent = time.time()
    http.post(base + "/api/autoplay", json={"enabled": False}, timeout=5)
    listener.wait_for(f"{BASE}/autoplay", b"OFF", after=sent, timeout=5)
    http.post(base + "/api/autoplay", json={"enabled": True}, timeout=5)


def attributes_since(listener: Listener, since: float) -> list[dict]:
    """The "Now playing" sensor's attributes sent since `since`, oldest first."""
    topic = f"{BASE}/playing/attributes"
    return [json.loads(m.payload) for m in list(listener.messages) if m.topic == topic and m.at >= since]


def fuzzed(valid: list[str], rng: random.Random, n: int) -> list[bytes]:
    """Near misses of the valid payloads, random text, random bytes, JSON, and the oversized."""
    out: list[bytes] = [b"", b" ", b"\x00", b"\xff\xfe", b"null", b"true", b'{"state": "ON"}', b"ON" * 5000]
    for v in valid:
        out += [v.lower().encode(), v.upper().encode(), f" {v}".encode(), f"{v}\n".encode(), v[:-1].encode()]
        out += [f'"{v}"'.encode(), v.encode("utf-16"), (v + "\x00").encode()]
    while len(out) < n:
        kind = rng.randrange(3)
        if kind == 0:
            out.append(rng.randbytes(rng.randrange(1, 300)))
        elif kind == 1:
            out.append("".join(chr(rng.randrange(1, 0x3000)) for _ in range(rng.randrange(1, 40))).encode())
        else:
            out.append(json.dumps({"value": rng.random(), "mood": rng.choice(MOODS)}).encode())
    return [p for p in out if p.decode("utf-8", "replace") not in valid]


def test_garbage_on_every_command_topic_changes_nothing(box, listener, fake):
    http, base = box.http, box.base
    settings = http.get(base + "/api/settings", timeout=5).json()
    skips = len(fake.calls("POST", "/v1/me/player/next"))
    f0 = frames(box)
    rng = random.Random(12)
    valid = {"autoplay": ["ON", "OFF"], "privacy": ["ON", "OFF"], "hold": HOLD, "skip": ["PRESS"]}
    sent = 0
    for key, ok in valid.items():
        for payload in fuzzed(ok, rng, 60):
            listener.client.publish(f"{BASE}/{key}/set", payload, qos=0)
            sent += 1
    # A valid command after the garbage, on the same connection: once it is done, all before it was handled.
    fence = time.time()
    listener.send(f"{BASE}/hold/set", "angry")
    listener.wait_for(f"{BASE}/hold", b"angry", after=fence, timeout=10)
    listener.send(f"{BASE}/hold/set", "Let Moodbox decide")
    assert until(lambda: http.get(base + "/api/state", timeout=5).json()["autoplay"]["override"] is None, 5)
    assert http.get(base + "/api/settings", timeout=5).json() == settings
    assert len(fake.calls("POST", "/v1/me/player/next")) == skips
    assert box.proc.poll() is None and frames(box) > f0
    assert sent > 200 and "ignored a command on moodbox/test/" in box.log()


def test_the_broker_killed_and_restarted(tmp_path):
    broker = Broker(tmp_path / "broker").start()
    (tmp_path / "box").mkdir()
    d = start_daemon(tmp_path / "box", broker)
    ha = Listener(broker)
    counts: list[tuple[float, int]] = []
    done = threading.Event()

    def count_frames() -> None:
        while not done.is_set():
            counts.append((time.monotonic(), frames(d)))
            time.sleep(0.1)

    counter = threading.Thread(target=count_frames, daemon=True)
    try:
        ha.wait_for(f"{BASE}/availability", b"online", timeout=15)
        counter.start()
        time.sleep(1)
        broker.kill()
        http = d.login()
        state = until(lambda: (http.get(d.base + "/api/state", timeout=5).json().get("mqtt") or {}).get("error"), 10)
        assert "127.0.0.1" in state, state
        time.sleep(2)
        restarted = time.time()
        broker.start()  # the same port, and nothing retained: Moodbox must send everything again
        again = Listener(broker)
        again.wait_for(f"{BASE}/availability", b"online", timeout=20)
        for key in ("mood", "autoplay", "privacy", "hold", "present"):
            again.wait_for(f"{BASE}/{key}", timeout=5)
        again.wait_for(f"{PREFIX}/sensor/{NODE}/mood/config", timeout=5)
        mqtt = http.get(d.base + "/api/state", timeout=5).json()["mqtt"]
        assert mqtt["state"] == "connected" and mqtt["error"] is None
        print(f"reconnected {time.time() - restarted:.1f} s after the broker came back")
        late = Listener(broker, f"{PREFIX}/#")  # and it is retained again
        late.wait_for(f"{PREFIX}/select/{NODE}/hold/config", timeout=5)
        assert all(m.retain for m in late.messages)
        late.close()
        # The last will: a Moodbox that dies without a goodbye shows offline in HA.
        time.sleep(1)
        done.set()
        counter.join(5)
        d.proc.kill()
        again.wait_for(f"{BASE}/availability", b"offline", timeout=40)
        again.close()
    finally:
        done.set()
        d.stop()
        ha.close()
        broker.kill()
    # The frame loop never stalled: frames kept coming, at the demo feed's pace, all through the broker's absence.
    assert counts[-1][1] - counts[0][1] > 10 * (counts[-1][0] - counts[0][0]), counts[::10]
    longest, last_change = 0.0, counts[0][0]
    for (_, a), (t, b) in itertools.pairwise(counts):
        if b > a:
            longest, last_change = max(longest, t - last_change), t
    assert longest < 1.0, f"the frame count stood still for {longest:.2f} s"


def test_someone_walking_into_a_dark_empty_room_turns_someone_present_on(tmp_path, media):
    """A replayed room, over and over: 4 s of a face too dark to read, then 6 s with nobody. The mood is "nobody"
    from the start and stays so (a dark face is not read), but the occupancy sensor follows the person."""
    import cv2
    import numpy as np

    grey = cv2.imread(str(media / "justin.jpg"), cv2.IMREAD_GRAYSCALE)
    noise = np.random.default_rng(0).normal(0.0, 4.0, grey.shape)
    dark, empty = tmp_path / "someone.png", tmp_path / "empty.png"
    cv2.imwrite(str(dark), np.clip(np.rint(grey * 0.05 + noise), 0, 255).astype(np.uint8))
    cv2.imwrite(str(empty), np.clip(np.rint(np.full(grey.shape, 6.0) + noise), 0, 255).astype(np.uint8))
    room = tmp_path / "room"
    room.mkdir()
    for i in range(50):  # 5 frames a second
        (room / f"{i:03d}.png").symlink_to(dark if i < 20 else empty)
    broker = Broker(tmp_path / "broker").start()
    (tmp_path / "box").mkdir()
    ha = Listener(broker)
    d = start_daemon(
        tmp_path / "box", broker, "[mood]\nnobody_after_seconds = 2\n", f'source = "replay"\nreplay_path = "{room}"'
    )
    try:
        on = ha.wait_for(f"{BASE}/present", b"ON", timeout=30)
        off = ha.wait_for(f"{BASE}/present", b"OFF", after=on.at, timeout=15)
        again = ha.wait_for(f"{BASE}/present", b"ON", after=off.at, timeout=15)
        # Off about 2 s into the empty part; on again when the dark face is back, 10 s of replay after it came.
        assert 3 < off.at - on.at < 9 and 7 < again.at - on.at < 13, (off.at - on.at, again.at - on.at)
        moods = {m.payload for m in ha.messages if m.topic == f"{BASE}/mood"}
        assert moods == {b"nobody"}, moods
        state = d.login().get(d.base + "/api/state", timeout=5).json()
        assert state["mood"]["name"] == "nobody" and state["recent_changes"] == [], state["mood"]
    finally:
        assert d.stop() == 0, d.log()
        ha.close()
        broker.kill()


def test_a_wrong_password_is_a_clear_problem_and_no_crash(tmp_path):
    broker = Broker(tmp_path / "broker").start()
    (tmp_path / "box").mkdir()
    d = start_daemon(tmp_path / "box", broker, password="not the password")
    try:
        http = d.login()
        state = until(lambda: (http.get(d.base + "/api/state", timeout=5).json().get("mqtt") or {}).get("error"), 15)
        assert "refused the user name or password" in state and "check the user name and password" in state, state
        snapshot = http.get(d.base + "/api/state", timeout=5).json()
        assert any(e["source"] == "mqtt" and "password" in e["message"] for e in snapshot["errors"])
        f0 = frames(d)
        time.sleep(2.5)  # it keeps trying, backing off, and the camera carries on
        assert d.proc.poll() is None and frames(d) > f0 + 10
        assert snapshot["mqtt"]["state"] in ("error", "retrying")
        assert "not the password" not in d.log()  # a secret never reaches the log
        assert "not the password" not in http.get(d.base + "/api/mqtt", timeout=5).text
    finally:
        d.stop()
        broker.kill()


def test_tls_with_a_ca_made_by_the_test_and_the_settings_page(tmp_path):
    broker = Broker(tmp_path / "broker", tls=True).start()
    (tmp_path / "box").mkdir()
    d = start_daemon(tmp_path / "box", broker)
    ha = Listener(broker)  # over TLS too
    try:
        ha.wait_for(f"{BASE}/availability", b"online", timeout=15)
        ha.wait_for(f"{PREFIX}/switch/{NODE}/privacy/config", timeout=5)
        http = d.login()
        page = http.get(d.base + "/api/mqtt", timeout=5).json()
        assert "password" not in page and page["password_set"] is True and page["status"]["state"] == "connected"
        assert page["tls"] is True and page["ca_file"] == str(broker.ca)
        # Refused with the key's name, the same way as the config file; nothing changes.
        r = http.patch(d.base + "/api/mqtt", json={"port": "8883", "bogus": 1, "base_topic": "a/#"}, timeout=5)
        assert r.status_code == 400 and set(r.json()["problems"]) == {"port", "bogus", "base_topic"}, r.text
        # The system's CAs do not know the test's CA: a TLS failure with the cause and the fix.
        r = http.patch(d.base + "/api/mqtt", json={"ca_file": ""}, timeout=5)
        assert r.status_code == 200, r.text
        error = until(lambda: http.get(d.base + "/api/mqtt", timeout=5).json()["status"].get("error"), 10)
        assert "TLS failed" in error and "certificate" in error and "CA file" in error, error
        assert d.proc.poll() is None
        # A command left retained on the broker would run again at every reconnect: Moodbox ignores it.
        ha.send(f"{BASE}/privacy/set", "ON", retain=True)
        back = time.time()
        r = http.patch(d.base + "/api/mqtt", json={"ca_file": str(broker.ca)}, timeout=5)
        assert r.status_code == 200
        ha.wait_for(f"{BASE}/availability", b"online", after=back, timeout=15)
        assert until(lambda: "a retained command would run again" in d.log(), 5), d.log()[-2000:]
        assert http.get(d.base + "/api/settings", timeout=5).json()["privacy_mode"] is False
        ha.send(f"{BASE}/privacy/set", b"", retain=True)  # (an empty retained message clears it)
        # The password is write-only: a new one is used (here a wrong one, refused), never shown.
        r = http.patch(d.base + "/api/mqtt", json={"password": "a new secret"}, timeout=5)
        assert "a new secret" not in r.text and r.json()["password_set"] is True
        error = until(lambda: http.get(d.base + "/api/mqtt", timeout=5).json()["status"].get("error"), 10)
        assert "user name or password" in error
    finally:
        ha.close()
        d.stop()
        broker.kill()


def test_the_mqtt_section_is_validated_like_the_rest_of_the_config(tmp_path):
    from device.config import ConfigError, parse

    assert parse({}).mqtt.enabled is False  # off by default
    cases = {
        "[mqtt] host = '': set the broker's name or address, or leave the connection off": {"enabled": True},
        "[mqtt] host = 'bad host name!': not a broker name or address: use letters, digits": {"host": "bad host name!"},
        "[mqtt] host = 'a..b': not a broker name or address": {"host": "a..b"},
        "[mqtt] host = '-a.lan': not a broker name or address": {"host": "-a.lan"},
        "[mqtt] base_topic = 'moodbox/#': an MQTT topic like": {"base_topic": "moodbox/#"},
        "[mqtt] ca_file = 'ca.pem': a CA file is only for TLS: turn TLS on": {"ca_file": "ca.pem"},
        "no such file on the box: give the path of the broker's CA": {
            "tls": True,
            "ca_file": str(tmp_path / "none.pem"),
        },
        "[mqtt] port = 70000": {"port": 70000},
        "[mqtt] hots: unknown key; allowed here: enabled, host": {"hots": "x"},
    }
    for message, section in cases.items():
        with pytest.raises(ConfigError) as e:
            parse({"mqtt": section})
        assert message in str(e.value), str(e.value)
    with pytest.raises(ConfigError) as e:
        parse({"mqtt": {"enabled": True, "password": "hunter22"}})
    assert "hunter22" not in str(e.value)  # a refused config never prints the password
    for host in ("homeassistant.local", "192.168.1.20", "fd00::1", "broker", " mqtt.lan "):
        assert parse({"mqtt": {"enabled": True, "host": host}}).mqtt.host == host.strip()


def test_the_page_refuses_a_bad_host_and_tests_typed_settings_without_saving_them(box, broker):
    """Settings → Home Assistant: the file's rule for the host, and "Test connection" against the real broker
    with what is typed, saved nowhere, the live connection untouched."""
    http, base = box.http, box.base
    before = http.get(base + "/api/mqtt", timeout=5).json()
    r = http.patch(base + "/api/mqtt", json={"host": "bad host name!"}, timeout=5)
    assert r.status_code == 400 and "not a broker name or address" in r.json()["problems"]["host"], r.text
    r = http.post(base + "/api/mqtt/test", json={"host": "bad host name!"}, timeout=5)
    assert r.status_code == 400 and "host" in r.json()["problems"], r.text
    # what the page sends: the typed fields; the saved password is used when none is typed
    typed = {"host": "127.0.0.1", "port": broker.port, "username": "moodbox"}
    answer = http.post(base + "/api/mqtt/test", json=typed, timeout=15).json()
    assert answer == {"ok": True, "message": f"the MQTT broker at 127.0.0.1:{broker.port} accepted these settings"}
    answer = http.post(base + "/api/mqtt/test", json={**typed, "password": "wrong one"}, timeout=15).json()
    assert answer["ok"] is False and "refused the user name or password" in answer["message"], answer
    closed = free_port()
    answer = http.post(base + "/api/mqtt/test", json={**typed, "port": closed}, timeout=15).json()
    assert answer["ok"] is False and "connection refused" in answer["message"], answer
    after = http.get(base + "/api/mqtt", timeout=5).json()
    assert {k: v for k, v in after.items() if k != "status"} == {k: v for k, v in before.items() if k != "status"}
    assert after["status"]["state"] == "connected"
