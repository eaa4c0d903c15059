"""What the household can change from the page, validated, and kept in the SQLite store.

The config file sets the appliance's defaults; a setting saved from the page overrides it and survives restarts
and power cuts. Every change goes through `Settings.model_validate`, so the page gets the same clear errors as
the config file.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from device.config import Config, spotify_client_id
from device.events import EMOTIONS
from device.player.music import DEFAULT_MUSIC, MusicSource
from device.store import Store

_TIME = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")  # used with fullmatch: no trailing newline, ASCII digits


def _whole_number(v: Any) -> Any:
    """JSON Schema's "integer" includes 30.0: take it as 30. Booleans and 30.5 stay wrong."""
    return int(v) if isinstance(v, float) and v.is_integer() else v


class _Strict(BaseModel):
    """Exactly the JSON types of web_ui/openapi.py: no "5" for 5, no 1 for true, no true for 1, no NaN or inf."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class Music(_Strict):
    kind: Literal["search", "playlist", "top_tracks", "saved_tracks"]
    value: Annotated[str, Field(max_length=200)] = ""
    label: Annotated[str, Field(max_length=200)] = ""
    volume: Annotated[int, BeforeValidator(_whole_number), Field(ge=0, le=100)] | None = None  # None: as it is

    @field_validator("value")
    @classmethod
    def _clean(cls, v: str) -> str:
        return v.strip()

    @model_validator(mode="after")
    def _something_to_find(self) -> Music:
        if self.kind == "search" and not self.value:
            raise ValueError("type what to search for, e.g. 'feel good pop'")
        if self.kind == "playlist" and not self.value:
            raise ValueError("pick one of your playlists")
        return self

    def source(self) -> MusicSource:
        return MusicSource(self.kind, self.value, self.label)


class QuietHours(_Strict):
    enabled: bool = False
    start: str = "22:00"
    end: str = "07:00"

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if not _TIME.fullmatch(v):
            raise ValueError("use 24-hour HH:MM, e.g. 22:30")
        return v

    def active(self, now: dt.datetime | None = None) -> bool:
        if not self.enabled:
            return False
        t = (now or dt.datetime.now()).strftime("%H:%M")
        return self.start <= t < self.end if self.start <= self.end else t >= self.start or t < self.end


class VolumeCap(QuietHours):
    """At most `percent` from `start` to `end` (across midnight too), applied when Moodbox starts music."""

    enabled: bool = True
    percent: Annotated[int, BeforeValidator(_whole_number), Field(ge=0, le=100)] = 40
    start: str = "21:00"
    end: str = "07:00"


class Area(_Strict):
    """A part of the camera's view where faces are not read: a TV, a poster, a photo on the shelf.

    In fractions of the frame, from its top-left corner, so it holds at any camera resolution. A face counts as
    inside when its centre is; an area reaching past the frame's edge simply ends there.
    """

    x: Annotated[float, Field(ge=0, le=1)]
    y: Annotated[float, Field(ge=0, le=1)]
    w: Annotated[float, Field(ge=0.02, le=1)]
    h: Annotated[float, Field(ge=0.02, le=1)]

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.x, self.y, self.w, self.h)


MAX_IGNORED_AREAS = 8


class Settings(_Strict):
    autoplay: bool = True
    speaker: Annotated[str, Field(max_length=100)] = ""
    music: dict[Literal[EMOTIONS], Music] = Field(
        default_factory=lambda: {  # type: ignore[valid-type]
            m: Music(kind=s.kind, value=s.value, label=s.label) for m, s in DEFAULT_MUSIC.items()
        }
    )
    sensitivity: Annotated[float, Field(ge=0.2, le=0.9)] = 0.40  # the mood engine's minimum confidence
    dwell_seconds: Annotated[float, Field(ge=0, le=120)] = 1.0
    cooldown_minutes: Annotated[float, Field(ge=0, le=240)] = 3.0
    hands_off_minutes: Annotated[float, Field(ge=0, le=720)] = 30.0
    # Pause Moodbox's music once the room has been empty this long; 0 = never (someone reading with their back to
    # the camera is "nobody" to it, so this is the household's choice).
    pause_when_empty_minutes: Annotated[float, Field(ge=0, le=720)] = 0.0
    override_minutes: Annotated[float, Field(ge=1, le=720)] = 30.0
    quiet_hours: QuietHours = QuietHours()
    volume_cap: VolumeCap = VolumeCap()
    camera_source: Literal["auto", "picamera2", "v4l2", "replay", "demo"] = "auto"
    privacy_mode: bool = False
    history_days: Annotated[int, BeforeValidator(_whole_number), Field(ge=1, le=365)] = 30
    preview_allowed: bool = False  # the owner may turn on a live camera preview; it is never stored
    ignored_areas: Annotated[list[Area], Field(max_length=MAX_IGNORED_AREAS)] = Field(default_factory=list)
    spotify_client_id: str = ""  # entered on the page; [spotify] client_id in the config file wins

    @field_validator("spotify_client_id")
    @classmethod
    def _client_id(cls, v: str) -> str:
        return spotify_client_id(v)  # the config file's rule

    def music_for(self, mood: str) -> MusicSource | None:
        m = self.music.get(mood)  # type: ignore[call-overload]
        return m.source() if m else None


def defaults_from(config: Config) -> Settings:
    return Settings(
        speaker=config.spotify.speaker,
        sensitivity=config.mood.min_confidence,
        dwell_seconds=config.mood.dwell_seconds,
        camera_source=config.camera.source,
    )


class SettingsError(ValueError):
    """A change was refused; `problems` maps field names to what is wrong."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))
        self.problems = problems


_TYPE_ERRORS = {
    "float_type": "must be a valid number, e.g. 3 or 0.5 (not text, not true/false)",
    "int_type": "must be a whole number, e.g. 30 (not text, not true/false)",
    "int_from_float": "must be a whole number, e.g. 30",
    "bool_type": "must be true or false (not text, not a number)",
    "string_type": "must be text",
    "finite_number": "must be a finite number (not NaN or infinity)",
    "dict_type": "must be a JSON object",
    "model_type": "must be a JSON object",
    "list_type": "must be a JSON list",
    "missing": "is missing",
}


def explain(exc: ValidationError) -> dict[str, str]:
    out = {}
    for e in exc.errors():
        key = ".".join(str(p) for p in e["loc"]) or "body"
        if e["type"] == "extra_forbidden":
            out[key] = "unknown setting"
        elif e["type"] == "literal_error":
            out[key] = f"allowed values are {e['ctx']['expected']}"
        elif e["type"] == "too_long" and e["loc"] == ("ignored_areas",):
            out[key] = f"at most {MAX_IGNORED_AREAS} areas: remove one before marking another"
        elif e["type"] in _TYPE_ERRORS:
            out[key] = _TYPE_ERRORS[e["type"]]
        else:
            out[key] = e["msg"].removeprefix("Value error, ")
    return out


class SettingsBook:
    """The current settings: defaults from the config, overridden by what the store holds."""

    def __init__(self, store: Store, config: Config) -> None:
        self.store = store
        self._defaults = defaults_from(config).model_dump()
        saved = {k: v for k, v in store.settings().items() if k in Settings.model_fields}
        try:
            self.current = Settings.model_validate({**self._defaults, **saved})
        except ValidationError:  # a setting from an older version no longer valid: keep the rest
            good = {}
            for k, v in saved.items():
                try:
                    Settings.model_validate({**self._defaults, k: v})
                    good[k] = v
                except ValidationError:
                    pass
            self.current = Settings.model_validate({**self._defaults, **good})

    def update(self, changes: dict) -> Settings:
        """Validate and save a partial change; raises SettingsError naming each bad field."""
        if not isinstance(changes, dict) or not changes:
            raise SettingsError({"body": "send a JSON object with the settings to change"})
        merged = self.current.model_dump()
        for k, v in changes.items():
            if k == "music" and isinstance(v, dict) and isinstance(merged.get("music"), dict):
                merged["music"] = {**merged["music"], **v}
            elif k in ("quiet_hours", "volume_cap") and isinstance(v, dict):
                merged[k] = {**merged[k], **v}
            else:
                merged[k] = v
        try:
            new = Settings.model_validate(merged)
        except ValidationError as exc:
            raise SettingsError(explain(exc)) from None
        dumped = new.model_dump()
        self.store.set_many({k: dumped[k] for k in changes if k in dumped})
        self.current = new
        return new
