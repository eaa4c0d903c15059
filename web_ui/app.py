"""The Flask app: pages, JSON API, live events (SSE), login, and the health check.

Served by waitress inside the daemon. The page works offline on the home network: every asset is served here.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterator
from typing import Any, Protocol

from flask import Flask, Response, abort, g, jsonify, redirect, render_template, request, session, url_for
from werkzeug.exceptions import HTTPException

from device.events import EMOTIONS
from device.player import PlayerError
from device.settings import SettingsError
from web_ui.auth import LoginLimiter, Owner, csrf_ok, new_csrf, secret_key
from web_ui.openapi import OPENAPI

log = logging.getLogger(__name__)
KEEPALIVE_SECONDS = 15.0
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
    "frame-src https://www.youtube-nocookie.com; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
OPEN_PATHS = {"/healthz", "/login", "/setup", "/favicon.ico"}
PAGES = ("now", "history", "videos", "settings", "system")


class Box(Protocol):
    """What the page needs from the Moodbox (device/moodbox.py)."""

    view: Any
    store: Any
    state_dir: Any
    settings: Any
    spotify_auth: Any

    def health(self) -> dict[str, Any]: ...
    def update_settings(self, changes: dict) -> Any: ...
    def spotify_connect_url(self) -> str: ...
    def spotify_finish(self, pasted_url: str) -> None: ...
    def spotify_disconnect(self) -> None: ...
    def speakers(self) -> list[dict[str, Any]]: ...
    def playlists(self, query: str = "") -> list[dict[str, Any]]: ...
    def skip(self) -> None: ...
    def not_my_mood(self, mood: str | None) -> None: ...
    def history(self, hours: float) -> dict[str, Any]: ...
    def delete_history(self) -> int: ...
    def video_suggestions(self, mood: str | None = None) -> dict[str, Any]: ...
    def recent_frame(self) -> Any: ...


def bad_request(message: str, **extra: Any) -> Response:
    resp = jsonify({"error": message, **extra})
    resp.status_code = 400
    return resp


def create_app(box: Box) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret_key(box.state_dir),
        SESSION_COOKIE_NAME="moodbox_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=30 * 86400,
        MAX_CONTENT_LENGTH=64 * 1024,
        JSON_SORT_KEYS=False,
    )
    owner = Owner(box.store, box.state_dir)
    limiter = LoginLimiter()
    app.extensions["moodbox_owner"] = owner
    code = owner.pairing_code()
    if code:
        log.warning("first run: open the page, choose 'Set up', and enter the pairing code %s", code)

    # -- every request ---------------------------------------------------------------------------------------
    def signed_in() -> bool:
        return bool(session.get("user")) and session.get("v") == owner.version

    @app.before_request
    def _guard():
        g.api = request.path.startswith("/api/")
        if request.path in OPEN_PATHS or request.path.startswith("/static/"):
            return None
        if not signed_in():
            if g.api or request.method not in ("GET", "HEAD"):
                return jsonify({"error": "sign in first"}), 401
            target = "/setup" if not owner.has_password else "/login"
            return redirect(target + "?next=" + request.path if request.path != "/" else target)
        if request.method not in ("GET", "HEAD", "OPTIONS") and not csrf_ok(
            session.get("csrf"), request.headers.get("X-CSRF-Token") or request.form.get("csrf_token")
        ):
            return jsonify({"error": "missing or wrong CSRF token: reload the page"}), 403
        return None

    @app.after_request
    def _headers(resp: Response) -> Response:
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        if not request.path.startswith("/static/"):
            resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if getattr(g, "api", True) or request.method != "GET":
            return jsonify({"error": exc.description or exc.name}), exc.code
        return render_template("error.html", code=exc.code, message=exc.description, page=""), exc.code

    @app.errorhandler(Exception)
    def _crash(exc: Exception):
        log.exception("request %s %s failed", request.method, request.path)
        return jsonify({"error": f"internal error ({type(exc).__name__}); see the log"}), 500

    def body() -> dict[str, Any]:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            abort(400, description="send a JSON object (Content-Type: application/json)")
        return data

    def page(name: str):
        if "csrf" not in session:
            session["csrf"] = new_csrf()
        return render_template(f"{name}.html", page=name, csrf=session["csrf"], moods=EMOTIONS)

    # -- open routes ----------------------------------------------------------------------------------------
    @app.get("/healthz")
    def healthz():
        return jsonify(box.health())

    @app.get("/favicon.ico")
    def favicon():
        return app.send_static_file("icon.svg")

    def form(name: str, error: str | None = None, status: int = 200, headers: dict | None = None):
        session.setdefault("csrf", new_csrf())
        return render_template(f"{name}.html", page=name, error=error, csrf=session["csrf"]), status, headers or {}

    def refused(name: str, client: str):
        """The answer to a sign-in form that must not be tried now (too many failures, or a stale form)."""
        wait = limiter.retry_after(client)
        if wait:
            return form(name, f"too many tries: wait {math.ceil(wait)} s", 429, {"Retry-After": str(math.ceil(wait))})
        if not csrf_ok(session.get("csrf"), request.form.get("csrf_token")):
            return form(name, "the form expired: try again", 400)
        return None

    def sign_in() -> None:
        session.clear()
        session.update(user="owner", v=owner.version, csrf=new_csrf())
        session.permanent = True

    @app.route("/setup", methods=["GET", "POST"])
    def setup():
        if owner.has_password:
            return redirect(url_for("login"))
        if request.method == "GET":
            return form("setup")
        client = request.remote_addr or "?"
        if (answer := refused("setup", client)) is not None:
            return answer
        if request.form.get("password", "") != request.form.get("password2", ""):
            return form("setup", "the two passwords differ", 400)
        try:
            owner.set_first_password(request.form.get("code", ""), request.form.get("password", ""))
        except PermissionError as exc:
            limiter.failed(client)
            return form("setup", str(exc), 400)
        except ValueError as exc:
            return form("setup", str(exc), 400)
        sign_in()
        return redirect(url_for("now"))

    @app.route("/login", methods=["GET", "POST"])
    def login():
        if not owner.has_password:
            return redirect(url_for("setup"))
        if request.method == "GET":
            return form("login")
        client = request.remote_addr or "?"
        if (answer := refused("login", client)) is not None:
            return answer
        if not owner.check(request.form.get("password", "")):
            limiter.failed(client)
            return form("login", "wrong password", 401)
        limiter.succeeded(client)
        sign_in()
        target = request.args.get("next", "/")
        return redirect(target if target.startswith("/") and not target.startswith("//") else "/")

    @app.post("/logout")
    def logout():
        session.clear()
        return redirect(url_for("login"))

    # -- pages ----------------------------------------------------------------------------------------------
    @app.get("/")
    def now():
        return page("now")

    for name in PAGES[1:]:
        app.add_url_rule(f"/{name}", f"page_{name}", lambda name=name: page(name))

    @app.get("/callback")
    def callback():
        """Reached only when the authorising browser runs on the Moodbox itself: finish without pasting."""
        try:
            box.spotify_finish(request.url)
            return redirect("/settings#spotify")
        except ValueError as exc:
            return render_template("error.html", code=400, message=str(exc), page=""), 400

    # -- live state -------------------------------------------------------------------------------------------
    @app.get("/api/state")
    def state():
        return jsonify(box.view.snapshot())

    @app.get("/api/events")
    def events():
        signed_in_as = session.get("v")

        def stream() -> Iterator[str]:
            version = -1
            yield "retry: 2000\n\n"
            while owner.version == signed_in_as:  # a password change or reset ends open streams too
                if box.view.wait_for_change(version, KEEPALIVE_SECONDS):
                    snap = box.view.snapshot()
                    version = snap["version"]
                    yield f"event: state\ndata: {json.dumps(snap, separators=(',', ':'))}\n\n"
                else:
                    yield ": keepalive\n\n"

        return Response(stream(), mimetype="text/event-stream", headers={"X-Accel-Buffering": "no"})

    @app.get("/api/openapi.json")
    def openapi():
        return jsonify(OPENAPI)

    # -- settings and controls ------------------------------------------------------------------------------
    @app.get("/api/settings")
    def get_settings():
        return jsonify(box.settings.model_dump())

    @app.route("/api/settings", methods=["PATCH", "POST"])
    def patch_settings():
        try:
            new = box.update_settings(body())
        except SettingsError as exc:
            return bad_request("some settings were refused", problems=exc.problems)
        return jsonify(new.model_dump())

    @app.post("/api/autoplay")
    def autoplay():
        enabled = body().get("enabled")
        if not isinstance(enabled, bool):
            return bad_request('send {"enabled": true or false}')
        return jsonify(box.update_settings({"autoplay": enabled}).model_dump())

    @app.post("/api/skip")
    def skip():
        try:
            box.skip()
        except PlayerError as exc:
            return jsonify({"error": str(exc), "state": exc.state}), 409
        return jsonify({"ok": True})

    @app.post("/api/not-my-mood")
    def not_my_mood():
        mood = body().get("mood")
        if mood is not None and mood not in EMOTIONS:
            return bad_request(f"mood must be one of {', '.join(EMOTIONS)}, or null to clear")
        box.not_my_mood(mood)
        return jsonify({"ok": True, "override": mood})

    @app.get("/api/history")
    def history():
        try:
            hours = float(request.args.get("hours", "24"))
        except ValueError:
            return bad_request("hours must be a number")
        if not (0 < hours <= 24 * 366) or math.isnan(hours):
            return bad_request("hours must be between 0 and 8784")
        return jsonify(box.history(hours))

    @app.delete("/api/history")
    def delete_history():
        return jsonify({"deleted": box.delete_history()})

    @app.get("/api/videos")
    def videos():
        mood = request.args.get("mood")
        if mood is not None and mood not in EMOTIONS:
            return bad_request(f"mood must be one of {', '.join(EMOTIONS)}")
        return jsonify(box.video_suggestions(mood))

    # -- Spotify ----------------------------------------------------------------------------------------------
    @app.get("/api/spotify")
    def spotify_status():
        auth = box.spotify_auth
        return jsonify({"state": auth.state, "redirect_uri": auth.redirect_uri, "configured": auth.configured})

    @app.post("/api/spotify/connect")
    def spotify_connect():
        try:
            return jsonify({"url": box.spotify_connect_url()})
        except ValueError as exc:
            return jsonify({"error": str(exc)}), 409

    @app.post("/api/spotify/finish")
    def spotify_finish():
        url = body().get("url")
        if not isinstance(url, str) or not url.strip() or len(url) > 4096:
            return bad_request("paste the whole address of the page Spotify sent you to")
        try:
            box.spotify_finish(url)
        except ValueError as exc:
            return bad_request(str(exc))
        return jsonify({"state": box.spotify_auth.state})

    @app.post("/api/spotify/disconnect")
    def spotify_disconnect():
        box.spotify_disconnect()
        return jsonify({"state": box.spotify_auth.state})

    @app.get("/api/speakers")
    def speakers():
        try:
            return jsonify({"speakers": box.speakers(), "chosen": box.settings.speaker})
        except PlayerError as exc:
            return jsonify({"error": str(exc), "state": exc.state, "speakers": []}), 409

    @app.get("/api/playlists")
    def playlists():
        q = request.args.get("q", "")
        if len(q) > 100:
            return bad_request("search text is limited to 100 characters")
        try:
            return jsonify({"playlists": box.playlists(q)})
        except PlayerError as exc:
            return jsonify({"error": str(exc), "state": exc.state, "playlists": []}), 409

    # -- account ------------------------------------------------------------------------------------------------
    @app.post("/api/password")
    def change_password():
        data = body()
        old, new = data.get("old"), data.get("new")
        if not isinstance(old, str) or not isinstance(new, str):
            return bad_request('send {"old": ..., "new": ...}')
        try:
            owner.change_password(old, new)
        except PermissionError as exc:
            return jsonify({"error": str(exc)}), 403
        except ValueError as exc:
            return bad_request(str(exc))
        session.update(v=owner.version, csrf=new_csrf())
        return jsonify({"ok": True})

    # -- the owner's live preview (off unless turned on; memory only, never stored) ----------------------------
    @app.get("/api/preview.jpg")
    def preview():
        if not box.settings.preview_allowed:
            return jsonify({"error": "the camera preview is off: the owner can turn it on in Settings"}), 403
        frame = box.recent_frame()
        if frame is None:
            return jsonify({"error": "no frame yet (camera off or starting)"}), 404
        import cv2

        ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 70])
        if not ok:
            return jsonify({"error": "could not encode the frame"}), 503
        return Response(jpeg.tobytes(), mimetype="image/jpeg", headers={"Cache-Control": "no-store, max-age=0"})

    app.jinja_env.globals["now"] = time.time
    return app
