"""The Raspberry Pi camera through picamera2: the low-resolution YUV420 stream, whose Y plane is grey."""

from __future__ import annotations

import logging
import time

from device.camera import CameraError
from device.events import Frame

LORES = (320, 240)
log = logging.getLogger(__name__)


class PiCamera:
    name = "picamera2"
    live = True

    def __init__(self, width: int = 640, height: int = 480) -> None:
        self._main = (width, height)
        self._cam = None
        self._start = 0.0
        self._index = 0

    def open(self) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError as exc:
            raise CameraError(
                f"picamera2 is not installed ({exc}); on a Pi: sudo apt install python3-picamera2 "
                "and a venv made with --system-site-packages (./setup.sh does both)"
            ) from None
        except Exception as exc:  # e.g. numpy ABI mismatch on Bookworm
            raise CameraError(
                f"picamera2 failed to import ({exc}); on Bookworm keep numpy<2 (./setup.sh pins it)"
            ) from None
        if not Picamera2.global_camera_info():
            raise CameraError("no Pi camera detected: check the ribbon cable and firmware_config/config.txt")
        try:
            cam = Picamera2()
            cfg = cam.create_preview_configuration(
                main={"size": self._main, "format": "RGB888"}, lores={"size": LORES, "format": "YUV420"}
            )
            cam.configure(cfg)
            cam.start()
        except Exception as exc:
            raise CameraError(f"the Pi camera would not start: {exc}") from exc
        self._cam, self._start, self._index = cam, time.monotonic(), 0

    def read(self) -> Frame | None:
        if self._cam is None:
            raise CameraError("the Pi camera is not open")
        try:
            yuv = self._cam.capture_array("lores")
        except Exception as exc:
            raise CameraError(f"the Pi camera stopped delivering frames: {exc}") from exc
        self._index += 1
        return Frame(yuv[: LORES[1], : LORES[0]].copy(), time.monotonic() - self._start, self._index)

    def close(self) -> None:
        if self._cam is not None:
            try:
                self._cam.stop()
                self._cam.close()
            except Exception:
                log.debug("closing the Pi camera failed", exc_info=True)
            self._cam = None
