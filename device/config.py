"""The one config file: TOML, validated strictly. Unknown keys and bad values are refused by name.

Where it is read from: `--config PATH`, else $MOODBOX_CONFIG, else /etc/moodbox/moodbox.toml, else
~/.config/moodbox/moodbox.toml. With no file at all, every default applies: demo feed if there is no camera,
preview player, page on http://127.0.0.1:8080.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo, field_validator

REPO = Path(__file__).resolve().parents[1]
# An installed (non-editable) package has no models/ folder beside it: setup.py ships the model here instead.
PACKAGED_MODELS = Path(__file__).resolve().parent / "assets" / "model"
SYSTEM_CONFIG = Path("/etc/moodbox/moodbox.toml")


class ConfigError(ValueError):
    """The config file cannot be used; the message names the file, the key and what is allowed."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Camera(_Section):
    source: Literal["auto", "picamera2", "v4l2", "replay", "demo"] = Field(
        "auto", description="auto tries the Pi camera, then the first USB webcam, then the built-in demo feed"
    )
    demo_fallback: bool = Field(
        True, description="auto only: use the demo feed when no camera is found (the appliance config sets false)"
    )
    device: str = Field("", description="v4l2 only: /dev/videoN or an index; empty = the first that works")
    replay_path: str = Field("", description="replay only: a video file or a folder of images")
    replay_pace: Literal["realtime", "fast"] = "realtime"
    replay_loop: bool = True
    max_fps: Annotated[float, Field(gt=0, le=60)] = 15.0
    width: Annotated[int, Field(ge=160, le=1920)] = 640
    height: Annotated[int, Field(ge=120, le=1080)] = 480


class Faces(_Section):
    detector: Literal["auto", "blazeface", "blazeface-full", "blazeface-short", "haar"] = "auto"
    min_score: Annotated[float, Field(gt=0, lt=1)] = 0.6
    max_faces: Annotated[int, Field(ge=1, le=20)] = 5


class Emotion(_Section):
    model: str = Field("models/emotion_vgg16_int8.tflite", description="relative to the Moodbox folder, or absolute")
    threads: Annotated[int, Field(ge=1, le=8)] = 2
    mirror: bool = Field(False, description="also classify the mirrored face and average: steadier, twice the work")

    @property
    def model_path(self) -> Path:
        p = Path(self.model).expanduser()
        if p.is_absolute():
            return p
        if not (REPO / p).exists() and (PACKAGED_MODELS / p.name).is_file():
            return PACKAGED_MODELS / p.name  # installed without the source tree: the model shipped in the package
        return REPO / p


class Mood(_Section):
    window_seconds: Annotated[float, Field(gt=0, le=60)] = 1.0
    min_confidence: Annotated[float, Field(ge=0, le=1)] = 0.40
    hysteresis: Annotated[float, Field(ge=0, le=1)] = 0.10
    dwell_seconds: Annotated[float, Field(ge=0, le=600)] = 1.0
    nobody_after_seconds: Annotated[float, Field(gt=0, le=3600)] = 30.0


class Web(_Section):
    host: str = Field("127.0.0.1", description="0.0.0.0 to reach the page from phones on the home network")
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    extra_names: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")]] = Field(
        default_factory=list,
        description="other names the page answers to, e.g. the router's 'moodbox.lan' (moodbox.local, the hostname "
        "and the box's addresses always work; any other name is refused, against DNS rebinding)",
    )


class Player(_Section):
    kind: Literal["auto", "spotify", "preview"] = Field(
        "auto", description="auto plays on Spotify once it is connected, and only shows what it would play before"
    )


_SPOTIFY_CLIENT_ID = re.compile(r"[0-9a-fA-F]{32}")


def spotify_client_id(v: str) -> str:
    """A Spotify app's Client ID as pasted, spaces around it dropped: 32 hex digits, or empty (not set up yet).
    One rule for the config file's [spotify] client_id and the page's Settings → Spotify."""
    v = v.strip()
    if v and not _SPOTIFY_CLIENT_ID.fullmatch(v):
        raise ValueError(
            "not a Spotify Client ID: it is 32 letters (a to f) and digits; copy it from your app's page on "
            "developer.spotify.com"
        )
    return v


class Spotify(_Section):
    client_id: str = Field("", description="your Spotify app's client ID (no secret is needed: PKCE)")
    speaker: str = Field("", description="the Spotify Connect speaker's name, as the Spotify app shows it")
    redirect_port: Annotated[int, Field(ge=0, le=65535)] = Field(
        0, description="port of the http://127.0.0.1:PORT/callback redirect registered for the app; 0 = [web] port"
    )
    api_url: Annotated[str, Field(pattern=r"^https?://")] = "https://api.spotify.com/v1/"
    accounts_url: Annotated[str, Field(pattern=r"^https?://")] = "https://accounts.spotify.com"

    @field_validator("client_id")
    @classmethod
    def _client_id(cls, v: str) -> str:
        return spotify_client_id(v)


class YouTube(_Section):
    api_key: SecretStr = Field(SecretStr(""), description="a YouTube Data API v3 key; empty = search links only")
    region: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] = "US"
    daily_searches: Annotated[int, Field(ge=0, le=10000)] = 90


_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def is_host(v: str) -> bool:
    """A DNS name (letters, digits and hyphens between dots, at most 253 characters) or an IPv4/IPv6 address."""
    try:
        ipaddress.ip_address(v)
        return True
    except ValueError:
        pass
    return len(v) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in v.split("."))


_TOPIC = r"[^/+#\x00\s]+(/[^/+#\x00\s]+)*"  # MQTT topic levels: no wildcards, no empty level, no spaces


class Mqtt(_Section):
    """Home Assistant over MQTT (device/homeassistant/). Off unless enabled; the page's Settings can set it too."""

    enabled: bool = False
    host: str = Field("", validate_default=True, description="the MQTT broker's name or address")
    port: Annotated[int, Field(ge=1, le=65535)] = Field(1883, description="1883, or usually 8883 with TLS")
    username: Annotated[str, Field(max_length=200)] = ""
    password: SecretStr = Field(SecretStr(""), description="never shown on the page or in the log")
    tls: bool = False
    ca_file: str = Field("", description="TLS: a PEM file with the broker's CA; empty = the system's CAs")
    client_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{0,64}$")] = Field(
        "", description="empty = moodbox-<hostname>"
    )
    base_topic: str = Field("", description="empty = moodbox/<hostname>")
    discovery_prefix: str = "homeassistant"
    room: Annotated[str, Field(max_length=60)] = Field("", description="Home Assistant shows 'Moodbox <room>'")

    @field_validator("host")
    @classmethod
    def _host_when_enabled(cls, v: str, info: ValidationInfo) -> str:
        v = v.strip()
        if info.data.get("enabled") and not v:
            raise ValueError("set the broker's name or address, or leave the connection off")
        if v and not is_host(v):
            raise ValueError(
                "not a broker name or address: use letters, digits, dots and hyphens (like homeassistant.local), "
                "or an IP address (like 192.168.1.20)"
            )
        return v

    @field_validator("base_topic", "discovery_prefix")
    @classmethod
    def _topic(cls, v: str, info: ValidationInfo) -> str:
        if (v or info.field_name == "discovery_prefix") and not re.fullmatch(_TOPIC, v):
            raise ValueError("an MQTT topic like moodbox/living-room: no '+', '#', spaces, or empty levels")
        return v

    @field_validator("ca_file")
    @classmethod
    def _readable_ca(cls, v: str, info: ValidationInfo) -> str:
        if v and not info.data.get("tls"):
            raise ValueError("a CA file is only for TLS: turn TLS on too, or leave the CA file empty")
        if v and not Path(v).expanduser().is_file():
            raise ValueError("no such file on the box: give the path of the broker's CA certificate (a PEM file)")
        return v


class State(_Section):
    dir: str = Field("", description="settings and history; default $STATE_DIRECTORY, else ~/.local/state/moodbox")

    @property
    def path(self) -> Path:
        if self.dir:
            return Path(self.dir).expanduser()
        if os.environ.get("STATE_DIRECTORY"):
            return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
        base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
        return Path(base) / "moodbox"


class Config(_Section):
    camera: Camera = Camera()
    faces: Faces = Faces()
    emotion: Emotion = Emotion()
    mood: Mood = Mood()
    web: Web = Web()
    player: Player = Player()
    spotify: Spotify = Spotify()
    youtube: YouTube = YouTube()
    mqtt: Mqtt = Mqtt()
    state: State = State()
    source_path: Path | None = Field(None, exclude=True)


def default_path() -> Path:
    if os.environ.get("MOODBOX_CONFIG"):
        return Path(os.environ["MOODBOX_CONFIG"]).expanduser()
    if SYSTEM_CONFIG.exists():
        return SYSTEM_CONFIG
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "moodbox" / "moodbox.toml"


def _describe(model: type[BaseModel], loc: tuple) -> str:
    """'[camera] source' for a location; a list's entry is named by its place ('[web] extra_names, entry 2')."""
    keys = [p for p in loc if not isinstance(p, int)]
    if not keys:
        return "(the file as a whole)"
    entry = f", entry {loc[-1] + 1}" if isinstance(loc[-1], int) else ""
    section = ".".join(str(p) for p in keys[:-1])
    return (f"[{section}] {keys[-1]}" if section else str(keys[-1])) + entry


# What a pattern means, for the user: pydantic would print the regular expression.
_PATTERNS = {
    "extra_names": "not a host name: use letters, digits, dots and hyphens, like moodbox.lan",
    "api_url": "must start with http:// or https://",
    "accounts_url": "must start with http:// or https://",
    "region": "must be a two-letter country code in capitals, like GB or US",
    "client_id": "use at most 64 letters, digits, '-' and '_' (empty: moodbox-<hostname>)",  # [mqtt] client_id
}


def _allowed_keys(loc: tuple) -> list[str]:
    model: type[BaseModel] = Config
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        if field is None or not isinstance(field.annotation, type) or not issubclass(field.annotation, BaseModel):
            return []
        model = field.annotation
    return [k for k in model.model_fields if k != "source_path"]


def explain(error: ValidationError, path: Path | str) -> str:
    lines = [f"{path}: the config has {error.error_count()} problem(s):"]
    for e in error.errors():
        loc = tuple(e["loc"])
        where = _describe(Config, loc)
        if e["type"] == "extra_forbidden":
            lines.append(f"  {where}: unknown key; allowed here: {', '.join(_allowed_keys(loc))}")
        elif e["type"] == "literal_error":
            lines.append(f"  {where} = {e['input']!r}: allowed values are {e['ctx']['expected']}")
        elif e["type"] == "string_pattern_mismatch":
            key = next((str(p) for p in reversed(loc) if not isinstance(p, int)), "")
            lines.append(f"  {where} = {e['input']!r}: {_PATTERNS.get(key, e['msg'])}")
        else:
            lines.append(f"  {where} = {e['input']!r}: {e['msg'].removeprefix('Value error, ')}")
    return "\n".join(lines)


def parse(data: dict, path: Path | str = "<config>") -> Config:
    try:
        return Config.model_validate({**data, "source_path": path if isinstance(path, Path) else None})
    except ValidationError as exc:
        raise ConfigError(explain(exc, path)) from None


def load(path: Path | None = None) -> Config:
    """The validated config. An explicit path must exist; the default path may be absent (all defaults)."""
    explicit = path is not None or bool(os.environ.get("MOODBOX_CONFIG"))
    path = path or default_path()
    if not path.exists():
        if explicit:
            raise ConfigError(
                f"{path}: no such config file; create it (see README, 'Configuration') or leave "
                "out --config/MOODBOX_CONFIG to run with the defaults"
            )
        return Config()
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the line it names") from None
    if "source_path" in data:
        raise ConfigError(f"{path}: source_path: unknown key")
    return parse(data, path)
