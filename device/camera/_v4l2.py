"""A USB webcam (or any V4L2 device) through OpenCV."""

from __future__ import annotations

import glob
import os
import time

import cv2

from device.camera import CameraError
from device.events import Frame


def find_v4l2_devices() -> list[str]:
    return sorted(glob.glob("/dev/video*"), key=lambda p: int(p[10:]) if p[10:].isdigit() else 999)


def why_not_opened(device: str) -> str:
    """What to tell the user when OpenCV could not open `device` (a path or an index)."""
    path = f"/dev/video{device}" if device.isdigit() else device
    if not os.path.exists(path):
        there = ", ".join(find_v4l2_devices()) or "none"
        return f"there is no {path}: is the webcam plugged in? (video devices here: {there})"
    if not os.access(path, os.R_OK | os.W_OK):
        return (
            f"{path} exists but this user may not open it: add the user to the 'video' group "
            "(sudo usermod -aG video USER, then start Moodbox again)"
        )
    return f"cannot open {path}: is it a camera, and is it free (not in use by another program)?"


class V4L2Camera:
    live = True

    def __init__(self, device: str, width: int = 640, height: int = 480, fps: float = 15) -> None:
        self.device = device
        self.name = f"v4l2:{device}"
        self._size, self._fps = (width, height), fps
        self._cap: cv2.VideoCapture | None = None
        self._start = 0.0
        self._index = 0

    def open(self) -> None:
        target = int(self.device) if self.device.isdigit() else self.device
        cap = cv2.VideoCapture(target, cv2.CAP_V4L2)
        if not cap.isOpened():
            cap.release()
            raise CameraError(why_not_opened(self.device))
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, self._size[0])
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self._size[1])
        cap.set(cv2.CAP_PROP_FPS, self._fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        ok, _ = cap.read()
        if not ok:
            cap.release()
            raise CameraError(f"{self.device} opened but gave no frame (a metadata node, or busy elsewhere)")
        self._cap, self._start, self._index = cap, time.monotonic(), 0

    def read(self) -> Frame | None:
        if self._cap is None:
            raise CameraError(f"{self.device} is not open")
        ok, image = self._cap.read()
        if not ok or image is None:
            raise CameraError(f"{self.device} stopped delivering frames (unplugged?)")
        self._index += 1
        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        return Frame(grey, time.monotonic() - self._start, self._index)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
