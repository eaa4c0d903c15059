"""The Flask app: the page, its JSON API, the live event stream and the health check."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from flask import Flask, Response, jsonify, render_template

from device.roomview import RoomView

KEEPALIVE_SECONDS = 15.0
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-src https://www.youtube-nocookie.com; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def create_app(view: RoomView, health: Callable[[], dict[str, Any]]) -> Flask:
    app = Flask(__name__)
    app.config["JSON_SORT_KEYS"] = False

    @app.after_request
    def _headers(resp: Response) -> Response:
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    @app.get("/healthz")
    def healthz():
        return jsonify(health())

    @app.get("/")
    def now_page():
        return render_template("now.html")

    @app.get("/api/state")
    def state():
        return jsonify(view.snapshot())

    @app.get("/api/events")
    def events():
        def stream() -> Iterator[str]:
            version = -1
            yield "retry: 2000\n\n"
            while True:
                if view.wait_for_change(version, KEEPALIVE_SECONDS):
                    snap = view.snapshot()
                    version = snap["version"]
                    yield f"event: state\ndata: {json.dumps(snap, separators=(',', ':'))}\n\n"
                else:
                    yield ": keepalive\n\n"

        return Response(
            stream(), mimetype="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )

    return app
