"""Settings → Home Assistant: the [mqtt] settings on the page (password write-only) and the link's state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, jsonify

from device.settings import SettingsError


def add_routes(app: Flask, box: Any, body: Callable[[], dict[str, Any]]) -> None:
    """GET /api/mqtt: the settings in use (never the password, only whether one is set) and the connection's
    state. PATCH /api/mqtt: change some of them, validated like the config file; a "password" key sets it,
    "" clears it, and leaving it out keeps it. Moodbox reconnects with the new settings at once. POST /api/mqtt/test:
    try the typed settings once, saving nothing."""

    @app.get("/api/mqtt")
    def mqtt_settings():
        return jsonify(box.home_assistant.describe())

    @app.post("/api/mqtt/test")
    def mqtt_test():
        """Connect once with the typed settings (the PATCH body's form), save nothing: {"ok", "message"}."""
        try:
            return jsonify(box.home_assistant.try_settings(body()))
        except SettingsError as exc:
            resp = jsonify({"error": "these MQTT settings cannot be tried", "problems": exc.problems})
            resp.status_code = 400
            return resp

    @app.route("/api/mqtt", methods=["PATCH", "POST"])
    def mqtt_change():
        try:
            return jsonify(box.home_assistant.update_settings(body()))
        except SettingsError as exc:
            resp = jsonify({"error": "some MQTT settings were refused", "problems": exc.problems})
            resp.status_code = 400
            return resp
