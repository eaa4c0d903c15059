"""Replay of a video file or a folder of images, at real-time pace or as fast as possible.

Frame times are media times (frame index / fps), so the mood timeline is the same at either pace.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2

from device.camera import CameraError
from device.events import Frame

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".webp", ".tif", ".tiff"}


class ReplayCamera:
    live = False

    def __init__(self, path: str | Path, pace: str = "realtime", loop: bool = False, folder_fps: float = 5.0) -> None:
        self.path = Path(path).expanduser()
        self.name = f"replay:{self.path.name}"
        self.pace, self.loop, self._folder_fps = pace, loop, folder_fps
        self._cap: cv2.VideoCapture | None = None
        self._images: list[Path] = []
        self.fps = folder_fps
        self._index = 0
        self._t_offset = 0.0
        self._wall_start = 0.0

    def open(self) -> None:
        if self.path.is_dir():
            self._images = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self._images:
                raise CameraError(f"{self.path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            self.fps = self._folder_fps
        elif self.path.exists():  # a file, or a stream such as a FIFO
            cap = cv2.VideoCapture(str(self.path))
            if not cap.isOpened():
                raise CameraError(f"{self.path} is not a video OpenCV can read")
            self._cap = cap
            fps = cap.get(cv2.CAP_PROP_FPS)
            self.fps = fps if fps and fps > 0 else 25.0
        else:
            raise CameraError(f"{self.path} does not exist")
        self._index, self._t_offset, self._wall_start = 0, 0.0, time.monotonic()

    def _next_image(self):
        if self._cap is not None:
            ok, image = self._cap.read()
            return image if ok else None
        if self._index < len(self._images):
            image = cv2.imread(str(self._images[self._index]), cv2.IMREAD_GRAYSCALE)
            if image is None:
                raise CameraError(f"{self._images[self._index]} is not a readable image")
            return image
        return None

    def read(self) -> Frame | None:
        image = self._next_image()
        if image is None:
            if not self.loop or self._index == 0:
                return None
            self._t_offset += self._index / self.fps
            if self._cap is not None:
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            self._index = 0
            image = self._next_image()
            if image is None:
                return None
        t = self._t_offset + self._index / self.fps
        self._index += 1
        if self.pace == "realtime":
            delay = self._wall_start + t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        return Frame(grey, t, self._index)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
