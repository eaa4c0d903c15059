"""The page's music: what played (History), the heart, the volume slider, and per mood "Try it" and "Forget skips".

Each route calls one Moodbox operation (device/moodbox.py). A refusal from the player (Spotify not connected, a
speaker without volume control) is a 409 with the reason and its state; a malformed request is a 400 naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, jsonify, request

from device.events import EMOTIONS
from device.player import PlayerError

MAX_PAGE = 100


def _refused(exc: PlayerError):
    return jsonify({"error": str(exc), "state": exc.state}), 409


def _bad(message: str):
    return jsonify({"error": message}), 400


def _whole(value: Any) -> int | None:
    """A JSON whole number (30 or 30.0), never true or false."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        return None
    return int(value)


def _one_mood(data: dict[str, Any]):
    mood = data.get("mood")
    if set(data) != {"mood"} or mood not in EMOTIONS:
        return None, _bad(f'send {{"mood": ...}} with one of {", ".join(EMOTIONS)}')
    return mood, None


def add_routes(app: Flask, box: Any, body: Callable[[], dict[str, Any]]) -> None:
    @app.get("/api/plays")
    def plays():
        """What Moodbox played, newest first: `limit` plays (1 to 100, 20 unless asked) before the play `before`."""
        try:
            limit = int(request.args.get("limit", "20"))
            before = int(request.args["before"]) if "before" in request.args else None
        except ValueError:
            return _bad("limit and before must be whole numbers (before: the id of the last play shown)")
        if not 1 <= limit <= MAX_PAGE or (before is not None and before < 0):
            return _bad(f"limit must be from 1 to {MAX_PAGE}, and before at least 0")
        return jsonify(box.plays(limit, before))

    @app.get("/api/music")
    def music():
        return jsonify(box.music())

    @app.post("/api/like")
    def like():
        data = body()
        if set(data) != {"liked"} or not isinstance(data["liked"], bool):
            return _bad('send {"liked": true} to like the song playing now, or false to unlike it')
        try:
            return jsonify(box.like(data["liked"]))
        except PlayerError as exc:
            return _refused(exc)

    @app.post("/api/volume")
    def volume():
        data = body()
        percent = _whole(data.get("percent"))
        if set(data) != {"percent"} or percent is None or not 0 <= percent <= 100:
            return _bad('send {"percent": N} with N a whole number from 0 to 100')
        try:
            return jsonify(box.set_volume(percent))
        except PlayerError as exc:
            return _refused(exc)

    @app.post("/api/music/try")
    def try_music():
        mood, refused = _one_mood(body())
        if refused:
            return refused
        box.try_music(mood)
        return jsonify({"ok": True, "mood": mood})

    @app.post("/api/music/forget-skips")
    def forget_skips():
        mood, refused = _one_mood(body())
        if refused:
            return refused
        return jsonify({"forgotten": box.forget_skips(mood), "mood": mood})
