"""The Flask app: pages, JSON API, live events (SSE), login, and the health check.

Served inside the daemon by web_ui/server.py. The page works offline on the home network: every asset is served here.
"""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Any, Protocol

from flask import Flask, Response, abort, g, jsonify, redirect, render_template, request, session, url_for
from werkzeug.exceptions import HTTPException

from device.events import EMOTIONS, MOOD_WORDS, mood_word
from device.player import PlayerError
from device.settings import SettingsError
from device.storage import StorageError
from web_ui import homeassistant, learning, music
from web_ui.auth import (
    BROWSER_COOKIE,
    BROWSER_SECONDS,
    MIN_PASSWORD,
    KnownBrowsers,
    Owner,
    Sessions,
    csrf_ok,
    new_csrf,
    secret_key,
)
from web_ui.hosts import OwnNames
from web_ui.live import RETRY_AFTER_SECONDS, LiveFeed
from web_ui.network_log import network_log, request_id
from web_ui.openapi import OPENAPI
from web_ui.signin_limits import SigninLimits, address_key

log = logging.getLogger(__name__)
MAX_JSON_DEPTH = 16
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data: blob: https://i.scdn.co; "  # album covers from Spotify's image host, no other
    "frame-src https://www.youtube-nocookie.com; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
OPEN_PATHS = {"/healthz", "/login", "/setup", "/favicon.ico"}
PAGES = ("now", "history", "videos", "settings", "system")
PAGE_PATHS = frozenset({"/"} | {f"/{name}" for name in PAGES[1:]})


def page_path(target: str) -> str:
    """Where to go after signing in: one of the page's own paths, else the Now page. Never a path a browser could
    read as another site (`/\\evil`, `/<tab>/evil`, which Werkzeug turns into `//evil`)."""
    return target if target in PAGE_PATHS else "/"


class Box(Protocol):
    """What the page needs from the Moodbox (device/moodbox.py)."""

    config: Any  # device.config.Config
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
    def delete_history(self, corrections: bool = False) -> int: ...
    def correct_mood(self, mood: str) -> dict[str, Any]: ...
    def undo_correction(self) -> dict[str, Any] | None: ...
    def forget_corrections(self) -> int: ...
    def learning(self) -> dict[str, Any]: ...
    def video_suggestions(self, mood: str | None = None) -> dict[str, Any]: ...
    def recent_frame(self) -> Any: ...


def bad_request(message: str, **extra: Any) -> Response:
    resp = jsonify({"error": message, **extra})
    resp.status_code = 400
    return resp


def json_object(raw: bytes) -> dict[str, Any]:
    """A JSON object from a request body, at most MAX_JSON_DEPTH deep; ValueError naming what is wrong."""

    def no_constant(name: str) -> None:
        raise ValueError(f"{name} is not a JSON number: send a finite number")

    try:
        data = json.loads(raw, parse_constant=no_constant)
    except RecursionError:
        raise ValueError(f"the JSON is nested too deeply: at most {MAX_JSON_DEPTH} levels") from None
    except UnicodeDecodeError:
        raise ValueError("the body is not UTF-8 text: send JSON in UTF-8") from None
    except ValueError as exc:
        raise ValueError(f"the body is not valid JSON ({exc}): send a JSON object") from None
    if not isinstance(data, dict):
        raise ValueError("send a JSON object ({...}), not " + type(data).__name__)
    level, todo = 1, [data]
    while todo:
        if level > MAX_JSON_DEPTH:
            raise ValueError(f"the JSON is nested too deeply: at most {MAX_JSON_DEPTH} levels")
        todo = [v for item in todo for v in (item.values() if isinstance(item, dict) else item)]
        todo = [v for v in todo if isinstance(v, dict | list)]
        level += 1
    return data


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
    sessions, limits, browsers = Sessions(box.store), SigninLimits(box.store), KnownBrowsers(app.config["SECRET_KEY"])
    app.extensions["moodbox_owner"] = owner
    code = owner.pairing_code()
    if code:
        log.warning("first run: open the page, choose 'Set up', and enter the pairing code %s", code)

    # -- every request ---------------------------------------------------------------------------------------
    def signed_in() -> bool:
        return (
            session.get("user") == "owner" and session.get("v") == owner.version and sessions.alive(session.get("sid"))
        )

    own_names = OwnNames(extra=box.config.web.extra_names)

    @app.before_request
    def _guard():
        g.api = request.path.startswith("/api/")
        if (refused := own_names.refusal(request.environ)) is not None:  # DNS rebinding, other sites' forms
            network_log.info(request.remote_addr, "refused %s %r: %d, %s", request.method, request.path[:80], *refused)
            return jsonify({"error": refused[1]}), refused[0]
        if request.path in OPEN_PATHS or request.path.startswith("/static/"):
            return None
        if not signed_in():
            if g.api or request.method not in ("GET", "HEAD"):
                return jsonify({"error": "sign in first"}), 401
            target = "/setup" if not owner.has_password else "/login"
            return redirect(target + "?next=" + request.path if page_path(request.path) != "/" else target)
        if request.method not in ("GET", "HEAD", "OPTIONS") and not csrf_ok(
            session.get("csrf"), request.headers.get("X-CSRF-Token") or request.form.get("csrf_token")
        ):
            return jsonify({"error": "missing or wrong CSRF token: reload the page"}), 403
        return None

    @app.after_request
    def _headers(resp: Response) -> Response:
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["X-Content-Type-Options"] = "nosniff"
        # not "no-referrer": with it browsers send "Origin: null" on the page's own forms, and the Origin check
        # (web_ui/hosts.py) must tell those from other sites' forms. No address leaves the box either way.
        resp.headers["Referrer-Policy"] = "same-origin"
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        if not request.path.startswith("/static/"):
            resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if getattr(g, "api", True) or request.method not in ("GET", "HEAD"):
            return jsonify({"error": exc.description or exc.name}), exc.code
        return render_template("error.html", code=exc.code, message=exc.description, page=""), exc.code

    @app.errorhandler(StorageError)
    def _not_saved(exc: StorageError):
        """A full disk or a read-only or damaged state folder: a state with a cause and a fix, not a crash."""
        answer = {"error": f"not saved: {exc.cause}", "fix": exc.fix, "storage": exc.problem}
        return jsonify(answer), exc.http_status, {"Retry-After": "60"}

    @app.errorhandler(Exception)
    def _crash(exc: Exception):
        """A bug: the answer gives an id to find in the log, and names nothing of the code."""
        rid = request_id()
        network_log.exception(request.remote_addr, "request %s: %s %r failed", rid, request.method, request.path[:200])
        return jsonify({"error": f"internal error (request {rid}): see the log"}), 500

    def body() -> dict[str, Any]:
        """The request's JSON object; anything else (not JSON, too deep, NaN, too big) is a 4xx, never a 500."""
        if not request.is_json:
            abort(400, description="send a JSON object with Content-Type: application/json")
        try:
            return json_object(request.get_data(cache=True))
        except ValueError as exc:
            abort(400, description=str(exc))

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

    def signin_key() -> tuple[str, bool]:
        """Whose tries these are: a known browser's own, or else its address's (anonymous)."""
        browser = browsers.browser(request.cookies.get(BROWSER_COOKIE))
        return (f"browser:{browser}", False) if browser else (address_key(request.remote_addr), True)

    def refused(name: str, key: str, anonymous: bool):
        """The answer to a sign-in form that must not be tried now (a stale form, or a wait), else None; a try
        that goes ahead is counted until it succeeds."""
        if not csrf_ok(session.get("csrf"), request.form.get("csrf_token")):
            return form(name, "the form expired: try again", 400)
        if wait := math.ceil(limits.try_now(key, anonymous)):
            network_log.warning(request.remote_addr, "%s refused: it must wait %d s", sign_what(name), wait)
            return form(name, f"too many tries: wait {wait} s", 429, {"Retry-After": str(wait)})
        return None

    def sign_what(name: str) -> str:
        return "a sign-in" if name == "login" else "a first set-up"

    def wrong(name: str, message: str, key: str, anonymous: bool):
        wait = math.ceil(limits.failed(key, anonymous))
        network_log.warning(request.remote_addr, "%s failed: %s; next try in %d s", sign_what(name), message, wait)
        if not wait:
            return form(name, message, 401 if name == "login" else 400)
        return form(
            name,
            f"{message}; wait {wait} s before the next try",
            401 if name == "login" else 400,
            {"Retry-After": str(wait)},
        )

    def sign_in(keep_csrf: bool = False) -> None:
        """A new session (a new id, so none from before sign-in lives on), counted from now."""
        csrf = session.get("csrf") if keep_csrf else None
        sessions.end(session.get("sid"))
        session.clear()
        session.update(user="owner", sid=sessions.start(), v=owner.version, csrf=csrf or new_csrf())
        session.permanent = True

    def known_browser(resp: Response) -> Response:
        """Mark this browser as the owner's, so that no address limit ever keeps it out."""
        token = browsers.token(browsers.browser(request.cookies.get(BROWSER_COOKIE)))
        resp.set_cookie(BROWSER_COOKIE, token, max_age=BROWSER_SECONDS, httponly=True, samesite="Strict")
        return resp

    @app.route("/setup", methods=["GET", "POST"])
    def setup():
        if owner.has_password:
            return redirect(url_for("login"))
        if request.method in ("GET", "HEAD"):
            return form("setup")
        if request.form.get("password", "") != request.form.get("password2", ""):
            return form("setup", "the two passwords differ", 400)  # checked first: no try at the code is used
        key, anonymous = signin_key()
        if (answer := refused("setup", key, anonymous)) is not None:
            return answer
        try:
            owner.set_first_password(request.form.get("code", ""), request.form.get("password", ""))
        except PermissionError as exc:
            return wrong("setup", str(exc), key, anonymous)
        except ValueError as exc:
            limits.succeeded(key)  # the code was right
            return form("setup", str(exc), 400)
        limits.succeeded(key)
        sign_in()
        return known_browser(redirect(url_for("now")))

    @app.route("/login", methods=["GET", "POST"])
    def login():
        if not owner.has_password:
            return redirect(url_for("setup"))
        if request.method in ("GET", "HEAD"):
            return form("login", "Signed out everywhere: sign in again." if "ended" in request.args else None)
        key, anonymous = signin_key()
        if (answer := refused("login", key, anonymous)) is not None:
            return answer
        if not owner.check(request.form.get("password", "")):
            return wrong("login", "wrong password", key, anonymous)
        limits.succeeded(key)
        sign_in()
        return known_browser(redirect(page_path(request.args.get("next", "/"))))

    @app.post("/logout")
    def logout():
        sessions.end(session.get("sid"))
        session.clear()
        return redirect(url_for("login"))

    @app.post("/signout-everywhere")
    def signout_everywhere():
        """Every session on every browser ends, this one too, and so do their live streams."""
        ended = sessions.end_all()
        owner.new_version()
        session.clear()
        log.warning("signed out everywhere: %d session(s) ended", ended)
        return redirect(url_for("login", ended=ended))

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

    live = LiveFeed(box.view)
    app.extensions["moodbox_live"] = live

    @app.get("/api/events")
    def events():
        """Server-sent events, capped per sign-in and in all; a stream ends after 5 minutes (the page reconnects)
        and when its sign-in ends (logout, sign out everywhere, a new password)."""
        sid, version = session.get("sid"), session.get("v")
        stream = live.open(str(sid), lambda: owner.version == version and sessions.alive(sid))
        if stream is None:
            wait = str(RETRY_AFTER_SECONDS)
            message = live.refusal(str(sid)) + f"; the page polls /api/state meanwhile (retry in {wait} s)"
            return jsonify({"error": message}), 503, {"Retry-After": wait}
        return Response(
            stream, mimetype="text/event-stream", headers={"X-Accel-Buffering": "no"}, direct_passthrough=True
        )

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
        data = body()
        enabled = data.get("enabled")
        if not isinstance(enabled, bool) or set(data) != {"enabled"}:
            return bad_request('send {"enabled": true or false} and nothing else')
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
        also = request.args.get("corrections", "false")
        if also not in ("true", "false"):
            return bad_request("corrections must be true or false")
        return jsonify({"deleted": box.delete_history(corrections=also == "true")})

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
        page_id = box.settings.spotify_client_id
        client_id_from = "" if not auth.client_id else "page" if auth.client_id == page_id else "config"
        return jsonify(
            {
                "state": auth.state,
                "redirect_uri": auth.redirect_uri,
                "configured": auth.configured,
                "client_id_from": client_id_from,  # "config": the config file's; the page cannot change it
            }
        )

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
        key = sessions.limit_key(session["sid"])
        if wait := math.ceil(limits.try_now(key, anonymous=False)):
            error = f"too many wrong current passwords: wait {wait} s and try again"
            return jsonify({"error": error}), 429, {"Retry-After": str(wait)}
        try:
            owner.change_password(old, new)
        except PermissionError as exc:
            if wait := math.ceil(limits.failed(key, anonymous=False)):
                return jsonify({"error": f"{exc}; wait {wait} s before the next try"}), 403, {"Retry-After": str(wait)}
            return jsonify({"error": str(exc)}), 403
        except ValueError as exc:
            limits.succeeded(key)  # the current password was right
            return bad_request(str(exc))
        limits.succeeded(key)
        ended = sessions.end_all()  # every other browser signs in again with the new password
        sign_in(keep_csrf=True)  # this one goes on, under a new session id
        return jsonify({"ok": True, "signed_out": ended - 1})

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

    homeassistant.add_routes(app, box, body)  # Settings → Home Assistant (MQTT)
    music.add_routes(app, box, body)  # what played, the heart, the volume, Try it and Forget skips
    learning.add_routes(app, box, body)  # "Read wrong?" on Now; Settings → What Moodbox learned
    app.jinja_env.globals.update(now=time.time, mood_word=mood_word, mood_words=MOOD_WORDS, min_password=MIN_PASSWORD)
    return app
