"""`moodbox run`: the Moodbox, its frame loop, the page (waitress), and systemd's notify protocol."""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

from device.config import Config
from device.moodbox import Moodbox
from device.systemd import notify

log = logging.getLogger("moodbox")
READY_GRACE_SECONDS = 20.0  # a camera still failing after this long: report ready anyway, showing the retry


class Daemon:
    def __init__(self, config: Config, port: int | None = None) -> None:
        self.box = Moodbox(config, port)
        self.stop_event = threading.Event()
        self._server: Any = None
        self._frames: threading.Thread | None = None
        self._web: threading.Thread | None = None

    def start(self) -> None:
        self.box.start()
        self._start_web()
        self._frames = threading.Thread(target=self._frame_loop, name="frames", daemon=True)
        self._frames.start()

    def _frame_loop(self) -> None:
        box = self.box
        box.pipeline.run(box.feed, self.stop_event, heartbeat=box.watchdog.beat, max_fps=box.config.camera.max_fps)

    def _start_web(self) -> None:
        from waitress.server import create_server

        from web_ui import create_app

        host = self.box.config.web.host
        app = create_app(self.box)
        try:
            self._server = create_server(
                app,
                host=host,
                port=self.box.port,
                threads=16,
                channel_timeout=60,
                ident="moodbox",
                clear_untrusted_proxy_headers=True,
            )
        except OSError as exc:
            raise SystemExit(
                f"cannot serve the page on {host}:{self.box.port}: {exc.strerror}; "
                "is Moodbox already running? Use --port or [web] port"
            ) from None
        self._web = threading.Thread(target=self._server.run, name="web", daemon=True)
        self._web.start()
        log.info("page at http://%s:%d (health: /healthz)", host, self.box.port)

    def wait_until_ready(self, timeout: float = READY_GRACE_SECONDS) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end and not self.stop_event.is_set():
            if self.box.pipeline.frames > 0 or self.box.feed.state == "off":
                return True
            self.stop_event.wait(0.1)
        return False

    def run_forever(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop_event.set())
        self.start()
        camera_up = self.wait_until_ready()
        box = self.box
        box.publish_status()
        notify("READY=1")
        log.info(
            "ready: camera %s (%s), model %s%s",
            box.feed.source,
            "up" if camera_up else box.feed.state,
            box.classifier.version,
            " (interim)" if box.classifier.interim else "",
        )
        last_status = ""
        while not self.stop_event.wait(1.0):
            box.publish_status()
            status = f"mood {box.engine.mood}, {box.pipeline.fps:.1f} fps, camera {box.feed.source} {box.feed.state}"
            if status != last_status:
                notify(f"STATUS={status}")
                last_status = status
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
