"""Replay of a video file, a folder of images, or a stream (a FIFO), at real-time pace or as fast as possible.

Frame times are media times (frame index / fps), so the mood timeline is the same at either pace. With
`max_fps`, frames are let through on a media-time schedule of max_fps a second and the ones between skipped, so
a real-time replay is analysed at most max_fps times a second, like a live camera. A FIFO is a stream: when its
writer goes and `loop` is on, the replay waits for the next writer and carries on, its times still growing.
"""

from __future__ import annotations

import contextlib
import os
import select
import stat
import time
from pathlib import Path

import cv2
import numpy as np

from device.camera import CameraError
from device.events import Frame

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".webp", ".tif", ".tiff"}
WRITER_WAIT_SECONDS = 2.0  # how long one open or read waits for a FIFO's writer before the feed retries
_SKIPPED = np.zeros((0, 0), np.uint8)  # a frame passed over to keep to max_fps (never decoded in full)


class ReplayCamera:
    live = False

    def __init__(
        self,
        path: str | Path,
        pace: str = "realtime",
        loop: bool = False,
        folder_fps: float = 5.0,
        max_fps: float = 0.0,
        writer_wait: float = WRITER_WAIT_SECONDS,
    ) -> None:
        self.path = Path(path).expanduser()
        self.name = f"replay:{self.path.name}"
        self.pace, self.loop, self._folder_fps = pace, loop, folder_fps
        self._min_gap = 1.0 / max_fps if max_fps > 0 else 0.0
        self._writer_wait = writer_wait
        self._cap: cv2.VideoCapture | None = None
        self._fd: int | None = None  # a FIFO's read end, which OpenCV reads as pipe:N
        self._images: list[Path] = []
        self.fps = folder_fps
        self._index = 0
        self._t_offset = 0.0
        self._wall_start = 0.0
        self._next_t = 0.0  # media time of the next frame max_fps lets through

    @property
    def is_stream(self) -> bool:
        try:
            return stat.S_ISFIFO(self.path.stat().st_mode)
        except OSError:
            return False

    def open(self) -> None:
        if self.path.is_dir():
            self._images = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self._images:
                raise CameraError(f"{self.path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            self.fps = self._folder_fps
        elif self.is_stream:
            self._open_stream()
        elif self.path.exists():
            cap = cv2.VideoCapture(str(self.path))
            if not cap.isOpened():
                raise CameraError(f"{self.path} is not a video OpenCV can read")
            self._use(cap)
        else:
            raise CameraError(f"{self.path} does not exist")
        self._index, self._t_offset, self._next_t, self._wall_start = 0, 0.0, 0.0, time.monotonic()

    def _use(self, cap: cv2.VideoCapture) -> None:
        self._cap = cap
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and fps > 0 else 25.0

    def _open_stream(self) -> None:
        """Wait (briefly) for the FIFO's writer, then read it. Never blocks for longer than `writer_wait`."""
        # Opening a FIFO's read end without O_NONBLOCK waits for a writer for ever; with it, poll() says when
        # one has written. The fresh descriptor reports no hang-up until a writer has come and gone.
        deadline = time.monotonic() + self._writer_wait
        while True:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            events = poller.poll(max(0, (deadline - time.monotonic()) * 1000))
            if events and events[0][1] & select.POLLIN:
                break
            os.close(fd)  # nobody wrote, or a writer came and went without a frame
            if time.monotonic() >= deadline:
                raise CameraError(
                    f"{self.path} is a stream (FIFO) with no writer: start the program that feeds it "
                    "(for example ffmpeg ... -f avi pipe:1 > the FIFO)"
                )
        os.set_blocking(fd, True)
        cap = cv2.VideoCapture(f"pipe:{fd}", cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            os.close(fd)
            raise CameraError(f"the stream in {self.path} is not video OpenCV can read (send AVI, MKV or MPEG-TS)")
        self._fd = fd
        self._use(cap)

    def _close_stream(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def _next_image(self, decode: bool = True) -> np.ndarray | None:
        if self._cap is not None:
            if not decode:
                return _SKIPPED if self._cap.grab() else None
            ok, image = self._cap.read()
            return image if ok else None
        if self._index < len(self._images):
            if not decode:
                return _SKIPPED
            image = cv2.imread(str(self._images[self._index]), cv2.IMREAD_GRAYSCALE)
            if image is None:
                raise CameraError(f"{self._images[self._index]} is not a readable image")
            return image
        return None

    def _start_over(self) -> bool:
        """At the end: loop a file or folder, or wait for a FIFO's next writer. False when the replay is over."""
        stream = self._fd is not None
        if not self.loop or (self._index == 0 and not stream):
            return False
        self._t_offset += self._index / self.fps
        self._index = 0
        if stream:
            self._close_stream()
            try:
                self._open_stream()
            except CameraError:
                raise CameraError(
                    f"the stream in {self.path} ended (its writer closed): waiting for a new writer"
                ) from None
            # Real-time pace follows the new writer from now on, rather than racing to make up the gap.
            self._wall_start = time.monotonic() - self._t_offset
        elif self._cap is not None:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        return True

    def read(self) -> Frame | None:
        while True:
            t = self._t_offset + self._index / self.fps
            wanted = t >= self._next_t - 1e-6
            image = self._next_image(decode=wanted)
            if image is None:
                if not self._start_over():
                    return None
                continue
            self._index += 1
            if wanted:
                break
        # On schedule (1/max_fps apart on average), never catching up on a gap with a burst.
        self._next_t = max(self._next_t + self._min_gap, t)
        if self.pace == "realtime":
            delay = self._wall_start + t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        return Frame(grey, t, self._index)

    def close(self) -> None:
        self._close_stream()
