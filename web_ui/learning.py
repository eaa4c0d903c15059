"""The household learner on the page: correct a misread mood, see what was learned, undo it or forget it.

GET /api/learning: what was learned, in words and numbers, and the newest corrections.
POST /api/corrections {"mood": "angry"}: "Moodbox read the room as sad; it is really angry". It records the
readings of the last few seconds (numbers only) and refits; 400 names why a correction cannot be made.
DELETE /api/corrections/last: undo the newest correction; with ?id=N only if the newest is N (the page's "Undo" after
a correction undoes that one, never one another phone made since). DELETE /api/corrections: forget everything learned.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, jsonify, request

from device.events import EMOTIONS


def add_routes(app: Flask, box: Any, body: Callable[[], dict[str, Any]]) -> None:
    @app.get("/api/learning")
    def learning():
        return jsonify(box.learning())

    @app.post("/api/corrections")
    def correct():
        mood = body().get("mood")
        if mood not in EMOTIONS:
            resp = jsonify({"error": f"mood must be one of {', '.join(EMOTIONS)}"})
            resp.status_code = 400
            return resp
        try:
            made = box.correct_mood(mood)
        except ValueError as exc:
            resp = jsonify({"error": str(exc)})
            resp.status_code = 409  # nobody in view, or the mood it already reads: the request itself is fine
            return resp
        return jsonify({**made, "learning": box.learning()})

    @app.delete("/api/corrections/last")
    def undo():
        wanted = request.args.get("id")
        if wanted is not None:
            if not wanted.isascii() or not wanted.isdigit() or len(wanted) > 18:
                return jsonify({"error": "id must be a correction's number, as POST /api/corrections gave it"}), 400
            newest = box.learning()["recent"][:1]
            if not newest or newest[0]["id"] != int(wanted):
                error = "that correction is no longer the newest (undone, forgotten, or another one was made since)"
                return jsonify({"error": error + ": see Settings → What Moodbox has learned"}), 409
        gone = box.undo_correction()
        if gone is None:
            resp = jsonify({"error": "there is no correction to undo", "learning": box.learning()})
            resp.status_code = 404
            return resp
        return jsonify({"undone": gone, "learning": box.learning()})

    @app.delete("/api/corrections")
    def forget():
        return jsonify({"forgotten": box.forget_corrections(), "learning": box.learning()})
