"""OpenAPI 3.1 description of the page's JSON API (served at /api/openapi.json; the fuzz tests read it).

The settings and auto-play bodies are the contract, exactly: the API accepts a body if and only if it is valid
against these schemas (tests/test_api_fuzz.py checks that with a JSON Schema validator as the oracle).
"""

from __future__ import annotations

from device.events import EMOTIONS

_MOOD = {"type": "string", "enum": list(EMOTIONS)}
_MUSIC = {
    "type": "object",
    "additionalProperties": False,
    "required": ["kind"],
    "properties": {
        "kind": {"type": "string", "enum": ["search", "playlist", "top_tracks", "saved_tracks"]},
        "value": {"type": "string", "maxLength": 200},
        "label": {"type": "string", "maxLength": 200},
        "volume": {"oneOf": [{"type": "integer", "minimum": 0, "maximum": 100}, {"type": "null"}]},  # null: as it is
    },
    # a search needs words, a playlist its address: neither may be empty (or only spaces)
    "if": {"required": ["kind"], "properties": {"kind": {"enum": ["search", "playlist"]}}},
    "then": {"required": ["value"], "properties": {"value": {"pattern": "\\S"}}},
}
_HHMM = {"type": "string", "minLength": 5, "maxLength": 5, "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"}
_PERCENT = {"type": "integer", "minimum": 0, "maximum": 100}
SETTINGS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "autoplay": {"type": "boolean"},
        "speaker": {"type": "string", "maxLength": 100},
        "music": {"type": "object", "propertyNames": _MOOD, "additionalProperties": _MUSIC},
        "sensitivity": {"type": "number", "minimum": 0.2, "maximum": 0.9},
        "dwell_seconds": {"type": "number", "minimum": 0, "maximum": 120},
        "cooldown_minutes": {"type": "number", "minimum": 0, "maximum": 240},
        "hands_off_minutes": {"type": "number", "minimum": 0, "maximum": 720},
        "pause_when_empty_minutes": {"type": "number", "minimum": 0, "maximum": 720},
        "override_minutes": {"type": "number", "minimum": 1, "maximum": 720},
        "quiet_hours": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "enabled": {"type": "boolean"},
                "start": _HHMM,
                "end": _HHMM,
            },
        },
        "volume_cap": {  # at most `percent` from `start` to `end`, when Moodbox starts music
            "type": "object",
            "additionalProperties": False,
            "properties": {"enabled": {"type": "boolean"}, "percent": _PERCENT, "start": _HHMM, "end": _HHMM},
        },
        "camera_source": {"type": "string", "enum": ["auto", "picamera2", "v4l2", "replay", "demo"]},
        "privacy_mode": {"type": "boolean"},
        "history_days": {"type": "integer", "minimum": 1, "maximum": 365},
        "preview_allowed": {"type": "boolean"},
        "ignored_areas": {  # where faces are not read (a TV, a poster): fractions of the frame, from top-left
            "type": "array",
            "maxItems": 8,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["x", "y", "w", "h"],
                "properties": {
                    "x": {"type": "number", "minimum": 0, "maximum": 1},
                    "y": {"type": "number", "minimum": 0, "maximum": 1},
                    "w": {"type": "number", "minimum": 0.02, "maximum": 1},
                    "h": {"type": "number", "minimum": 0.02, "maximum": 1},
                },
            },
        },
        "spotify_client_id": {
            "anyOf": [
                {"type": "string", "const": ""},
                {"type": "string", "minLength": 32, "maxLength": 32, "pattern": "^[0-9a-fA-F]{32}$"},
            ]
        },
    },
}
_ONE_MOOD = {"type": "object", "additionalProperties": False, "required": ["mood"], "properties": {"mood": _MOOD}}
AUTOPLAY_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["enabled"],
    "properties": {"enabled": {"type": "boolean"}},
}


def _op(summary: str, body: dict | None = None, query: list[dict] | None = None, changes: bool = False) -> dict:
    op: dict = {
        "summary": summary,
        "responses": {
            "200": {"description": "OK"},
            "400": {"description": "bad input"},
            "401": {"description": "not signed in"},
        },
    }
    if changes:
        op["responses"]["403"] = {"description": "missing or wrong CSRF token"}
        op["responses"]["503"] = {"description": "not saved: the state folder is read-only or damaged (see /healthz)"}
        op["responses"]["507"] = {"description": "not saved: the state folder's disk is full (see /healthz)"}
        op["x-state-changing"] = True
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if query:
        op["parameters"] = query
    return op


OPENAPI = {
    "openapi": "3.1.0",
    "info": {"title": "Moodbox page API", "version": "1"},
    "components": {
        "securitySchemes": {
            "session": {"type": "apiKey", "in": "cookie", "name": "moodbox_session"},
            "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token"},
        }
    },
    "security": [{"session": []}],
    "paths": {
        "/healthz": {"get": {**_op("health (no sign-in)"), "security": []}},
        "/api/state": {"get": _op("the room now")},
        "/api/settings": {
            "get": _op("settings"),
            "patch": _op("change settings", SETTINGS_SCHEMA, changes=True),
            "post": _op("change settings", SETTINGS_SCHEMA, changes=True),
        },
        "/api/autoplay": {
            "post": _op(
                "pause or resume auto-play",
                AUTOPLAY_SCHEMA,
                changes=True,
            )
        },
        "/api/skip": {"post": _op("next track", changes=True)},
        "/api/not-my-mood": {
            "post": _op(
                "hold another mood for a while (null clears)",
                {"type": "object", "properties": {"mood": {"oneOf": [_MOOD, {"type": "null"}]}}},
                changes=True,
            )
        },
        "/api/history": {
            "get": _op(
                "mood changes",
                query=[
                    {
                        "name": "hours",
                        "in": "query",
                        "schema": {"type": "number", "exclusiveMinimum": 0, "maximum": 8784},
                    }
                ],
            ),
            "delete": _op(
                "delete my history (and, with corrections=true, what Moodbox learned from corrections)",
                query=[{"name": "corrections", "in": "query", "schema": {"type": "string", "enum": ["true", "false"]}}],
                changes=True,
            ),
        },
        "/api/learning": {"get": _op("what the household learner learned, and the newest corrections")},
        "/api/corrections": {
            "post": _op(
                "Moodbox read the room wrong: the mood it really is (teaches the learner)",
                {"type": "object", "required": ["mood"], "properties": {"mood": _MOOD}},
                changes=True,
            ),
            "delete": _op("forget every correction and what was learned from them", changes=True),
        },
        "/api/corrections/last": {
            "delete": _op(
                "undo the newest correction (with id: only if the newest is that one)",
                query=[{"name": "id", "in": "query", "schema": {"type": "integer", "minimum": 0}}],
                changes=True,
            )
        },
        "/api/plays": {
            "get": _op(
                "what Moodbox played, why and how it ended, newest first",
                query=[
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                    {"name": "before", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                ],
            )
        },
        "/api/music": {"get": _op("per mood: its music, likes, skipped tracks and advice")},
        "/api/like": {
            "post": _op(
                "like (or unlike) the song playing now, for its mood",
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["liked"],
                    "properties": {"liked": {"type": "boolean"}},
                },
                changes=True,
            )
        },
        "/api/volume": {
            "post": _op(
                "the speaker's volume",
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["percent"],
                    "properties": {"percent": _PERCENT},
                },
                changes=True,
            )
        },
        "/api/music/try": {"post": _op("play a mood's music now (Try it)", _ONE_MOOD, changes=True)},
        "/api/music/forget-skips": {"post": _op("forget a mood's skipped tracks", _ONE_MOOD, changes=True)},
        "/api/videos": {"get": _op("YouTube suggestions", query=[{"name": "mood", "in": "query", "schema": _MOOD}])},
        "/api/spotify": {"get": _op("Spotify connection state")},
        "/api/spotify/connect": {"post": _op("start connecting: returns the authorise link", changes=True)},
        "/api/spotify/finish": {
            "post": _op(
                "finish with the pasted address",
                {"type": "object", "required": ["url"], "properties": {"url": {"type": "string", "maxLength": 4096}}},
                changes=True,
            )
        },
        "/api/spotify/disconnect": {"post": _op("forget the Spotify token", changes=True)},
        "/api/speakers": {"get": _op("Spotify Connect devices")},
        "/api/playlists": {
            "get": _op(
                "the user's playlists",
                query=[{"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 100}}],
            )
        },
        "/api/password": {
            "post": _op(
                "change the password",
                {
                    "type": "object",
                    "required": ["old", "new"],
                    "properties": {"old": {"type": "string"}, "new": {"type": "string", "minLength": 8}},
                },
                changes=True,
            )
        },
        "/api/preview.jpg": {"get": _op("live camera preview, only when the owner turned it on")},
    },
}
for _path in ("/api/like", "/api/volume"):  # the player's refusals: not connected, a speaker without volume control
    OPENAPI["paths"][_path]["post"]["responses"]["409"] = {"description": "the player cannot do it now; says why"}
