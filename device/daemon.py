"""`moodbox run`: wires camera -> faces -> emotion -> mood -> actions, serves the page, talks to systemd."""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

from device import __version__
from device.autoplay import AutoPlay
from device.bus import Bus
from device.camera import open_camera
from device.camera._feed import CameraFeed
from device.config import Config
from device.emotion import EmotionClassifier
from device.events import MoodChange, Reading
from device.faces import make_detector
from device.litert import runtime_name
from device.mood import MoodEngine, MoodSettings
from device.pipeline import Pipeline
from device.player._preview import PreviewPlayer
from device.roomview import RoomView
from device.systemd import Watchdog, notify

log = logging.getLogger("moodbox")
READY_GRACE_SECONDS = 20.0  # a camera still failing after this long: report ready anyway, showing the retry


class Daemon:
    def __init__(self, config: Config, port: int | None = None) -> None:
        self.config = config
        self.port = port or config.web.port
        self.stop_event = threading.Event()
        self.view = RoomView()
        self.bus = Bus()
        self.watchdog = Watchdog()
        self.started = time.time()
        # Fails fast, with the cause and the fix, on a corrupt model or missing runtime.
        self.classifier = EmotionClassifier(config.emotion.model_path, config.emotion.threads)
        self.detector = make_detector(config.faces.detector, config.faces.min_score, config.faces.max_faces)
        self.engine = MoodEngine(MoodSettings(**config.mood.model_dump()))
        self.pipeline = Pipeline(self.detector, self.classifier, self.engine, self.bus)
        self.feed = CameraFeed(lambda: open_camera(config.camera), heartbeat=self.watchdog.beat)
        self.player = PreviewPlayer(config.spotify.speaker)
        self.autoplay = AutoPlay(self.player, self.view)
        self._server: Any = None
        self._threads: list[threading.Thread] = []

    # -- what the page and /healthz report -------------------------------------------------------------
    def pipeline_state(self) -> str:
        if self.stop_event.is_set():
            return "stopping"
        return {"live": "running", "retrying": "camera-retrying", "off": "camera-off", "ended": "stopped"}.get(
            self.feed.state, "starting"
        )

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.pipeline_state() in ("running", "camera-off") else "degraded",
            "pipeline": self.pipeline_state(),
            "camera": {"source": self.feed.source, "state": self.feed.state, "error": self.feed.error},
            "fps": round(self.pipeline.fps, 2),
            "frames": self.pipeline.frames,
            "model": {"version": self.classifier.version, "interim": self.classifier.interim},
            "version": __version__,
            "uptime_s": round(time.time() - self.started, 1),
        }

    def _publish_status(self) -> None:
        self.view.set(
            "camera",
            {
                "source": self.feed.source,
                "state": self.feed.state,
                "error": self.feed.error,
                "retry_at": self.feed.retry_at,
            },
        )
        self.view.set(
            "pipeline",
            {
                "state": self.pipeline_state(),
                "fps": round(self.pipeline.fps, 1),
                "frames": self.pipeline.frames,
                "latency_ms": self.pipeline.latency_ms(),
                "detector": self.detector.name,
                "runtime": runtime_name(),
            },
        )

    # -- life cycle --------------------------------------------------------------------------------------
    def start(self) -> None:
        self.view.set(
            "model",
            {
                "version": self.classifier.version,
                "interim": self.classifier.interim,
                "accuracy": self.classifier.meta.get("accuracy"),
            },
        )
        self.view.set("player", self.player.status())
        self.bus.subscribe("page", lambda r: self.view.on_reading(r, self.engine.leader), Reading, size=4)
        self.bus.subscribe("page-mood", self.view.on_mood, MoodChange)
        self.bus.subscribe("autoplay", self.autoplay.on_mood, MoodChange)
        self.bus.subscribe(
            "log",
            lambda c: log.info("mood: %s -> %s (%.0f%% sure)", c.previous, c.mood, c.confidence * 100),
            MoodChange,
        )
        self._start_web()
        loop = threading.Thread(target=self._frame_loop, name="frames", daemon=True)
        loop.start()
        self._threads.append(loop)

    def _frame_loop(self) -> None:
        self.pipeline.run(self.feed, self.stop_event, heartbeat=self.watchdog.beat, max_fps=self.config.camera.max_fps)
        self.feed.close()

    def _start_web(self) -> None:
        from waitress.server import create_server

        from web_ui import create_app

        app = create_app(self.view, self.health)
        try:
            self._server = create_server(
                app, host=self.config.web.host, port=self.port, threads=16, channel_timeout=60, ident="moodbox"
            )
        except OSError as exc:
            raise SystemExit(
                f"cannot serve the page on {self.config.web.host}:{self.port}: {exc.strerror}; "
                "is Moodbox already running? Use --port or [web] port"
            ) from None
        web = threading.Thread(target=self._server.run, name="web", daemon=True)
        web.start()
        self._threads.append(web)
        log.info("page at http://%s:%d (health: /healthz)", self.config.web.host, self.port)

    def wait_until_ready(self, timeout: float = READY_GRACE_SECONDS) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end and not self.stop_event.is_set():
            if self.pipeline.frames > 0:
                return True
            self.stop_event.wait(0.1)
        return False

    def run_forever(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop_event.set())
        self.start()
        camera_up = self.wait_until_ready()
        self._publish_status()
        notify("READY=1")
        log.info(
            "ready: camera %s (%s), model %s%s",
            self.feed.source,
            "live" if camera_up else self.feed.state,
            self.classifier.version,
            " (interim)" if self.classifier.interim else "",
        )
        last_status = ""
        while not self.stop_event.wait(1.0):
            self._publish_status()
            status = (
                f"mood {self.engine.mood}, {self.pipeline.fps:.1f} fps, camera {self.feed.source} {self.feed.state}"
            )
            if status != last_status:
                notify(f"STATUS={status}")
                last_status = status
        self.shutdown()
        return 0

    def shutdown(self) -> None:
        notify("STOPPING=1")
        log.info("stopping")
        self.stop_event.set()
        for t in self._threads:
            if t.name == "frames":
                t.join(3.0)
        if self._server is not None:
            self._server.close()
        self.bus.close()
        self.feed.close()
