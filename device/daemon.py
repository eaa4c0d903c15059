"""`moodbox run`: the Moodbox, its frame loop, the page (web_ui/server.py), and systemd's notify protocol."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from device.config import Config
from device.moodbox import Moodbox
from device.systemd import notify

log = logging.getLogger("moodbox")


class Daemon:
    def __init__(self, config: Config, port: int | None = None) -> None:
        self.box = Moodbox(config, port)
        self.stop_event = threading.Event()
        self._server: Any = None
        self._frames: threading.Thread | None = None

    def start(self) -> None:
        self.box.start()
        self._start_web()
        self._frames = threading.Thread(target=self._frame_loop, name="frames", daemon=True)
        self._frames.start()

    def _frame_loop(self) -> None:
        box = self.box
        box.pipeline.run(box.feed, self.stop_event, heartbeat=box.watchdog.beat, max_fps=box.config.camera.max_fps)

    def _start_web(self) -> None:
        from web_ui import create_app
        from web_ui.server import PageServer

        host = self.box.config.web.host
        app = create_app(self.box)
        try:
            self._server = PageServer(app, host, self.box.port)
        except OSError as exc:
            raise SystemExit(
                f"cannot serve the page on {host}:{self.box.port}: {exc.strerror}; "
                "is Moodbox already running? Use --port or [web] port"
            ) from None
        self._server.start()
        log.info(
            "page at http://%s:%d (health: /healthz), up to %d connections",
            host,
            self.box.port,
            self._server.limits.max_connections,
        )

    def camera_is_up(self) -> bool:
        """Frames have flowed, or the household switched the camera off (privacy mode) on purpose."""
        return self.box.pipeline.frames > 0 or self.box.feed.state == "off"

    def run_forever(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop_event.set())
        self.start()  # model loaded, page served, frame loop started
        box = self.box
        last_status, ready = "", False
        while not self.stop_event.is_set():
            if not ready and self.camera_is_up():
                # READY=1 only with camera, model and page up. Until then the page stays up and says why, and
                # the frame loop keeps extending systemd's start timeout while it retries the camera.
                box.watchdog.mark_ready()
                ready = True
                log.info(
                    "ready: camera %s, model %s%s",
                    box.feed.source,
                    box.classifier.version,
                    " (interim)" if box.classifier.interim else "",
                )
            box.publish_status()
            if ready:
                status = (
                    f"mood {box.engine.mood}, {box.pipeline.fps:.1f} fps, camera {box.feed.source} {box.feed.state}"
                )
            else:
                status = f"waiting for the camera: {box.feed.error or box.feed.state}"
            if status != last_status:
                notify(f"STATUS={status}")
                last_status = status
            self.stop_event.wait(0.2 if not ready else 1.0)
        self.shutdown()
        return 0

    def shutdown(self) -> None:
        notify("STOPPING=1")
        log.info("stopping")
        self.stop_event.set()
        if self._frames is not None:
            self._frames.join(3.0)
        if self._server is not None:
            self._server.close()
        self.box.stop()  # closes the camera, flushes and closes the settings database
        log.info("stopped; settings saved in %s", self.box.store.path)
