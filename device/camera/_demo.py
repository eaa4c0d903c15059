"""The built-in demo feed: a synthetic room where real faces take turns, each with one expression.

The faces are a few FER2013 training faces (device/assets/demo/, see its README), chosen so the shipped
model reads them as the expression they were labelled with. The room itself is drawn here. The feed runs at
`max_fps` in real time, or as fast as possible for `moodbox replay demo`.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from device.camera import CameraError
from device.events import Frame

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "demo"
WIDTH, HEIGHT = 640, 480
FACE_SIZE = 168


@dataclass(frozen=True)
class Scene:
    seconds: float
    faces: tuple[int, ...]  # indexes into the face strip
    expression: str  # what the scene shows, for tests and the log


def load_script(assets: Path = ASSETS) -> tuple[np.ndarray, list[Scene]]:
    strip = cv2.imread(str(assets / "faces.png"), cv2.IMREAD_GRAYSCALE)
    if strip is None:
        raise CameraError(f"{assets / 'faces.png'} is missing or unreadable: restore it with git")
    faces = np.stack(np.split(strip, strip.shape[1] // strip.shape[0], axis=1))
    script = json.loads((assets / "script.json").read_text())
    scenes = [Scene(float(s["seconds"]), tuple(s["faces"]), s["expression"]) for s in script["scenes"]]
    return faces, scenes


def _room(rng: np.random.Generator) -> np.ndarray:
    """A plain living-room wall with a window, a picture and a sofa back, lightly textured."""
    y = np.linspace(0, 1, HEIGHT)[:, None]
    x = np.linspace(0, 1, WIDTH)[None, :]
    room = 150 - 40 * y + 15 * x
    room = np.broadcast_to(room, (HEIGHT, WIDTH)).copy()
    room[60:230, 430:600] = 205  # window
    room[140:146, 430:600] = 170  # window bar
    room[60:230, 512:518] = 170
    room[90:170, 60:170] = 95  # picture
    room[100:160, 70:160] = 120
    room[360:480, :] = 70 + 10 * np.sin(np.linspace(0, 8, WIDTH))[None, :]  # sofa back
    room += rng.normal(0, 3, room.shape)
    return np.clip(cv2.GaussianBlur(room, (0, 0), 2), 0, 255).astype(np.float32)


def _face_patch(face: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    big = cv2.resize(face, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    yy, xx = np.mgrid[0:FACE_SIZE, 0:FACE_SIZE] / (FACE_SIZE - 1) * 2 - 1
    mask = np.clip((1.0 - np.sqrt(xx**2 * 0.9 + yy**2 * 0.75)) / 0.12, 0, 1)  # soft oval edge
    return big, mask.astype(np.float32)


class DemoRoom:
    """Draws the demo room at time t: the scenes' faces drifting slightly, with light changes and noise."""

    def __init__(self, faces: np.ndarray, scenes: list[Scene], seed: int = 11) -> None:
        self.scenes = scenes
        self._room = _room(np.random.default_rng(7))
        self._patches = [_face_patch(f) for f in faces]
        self._noise = np.random.default_rng(seed)

    @property
    def cycle_seconds(self) -> float:
        return sum(s.seconds for s in self.scenes)

    def scene_at(self, t: float) -> Scene:
        t %= self.cycle_seconds
        for scene in self.scenes:
            if t < scene.seconds:
                return scene
            t -= scene.seconds
        return self.scenes[-1]

    def render(self, t: float) -> np.ndarray:
        frame = self._room.copy()
        scene = self.scene_at(t)
        n = len(scene.faces)
        for k, face_index in enumerate(scene.faces):
            patch, mask = self._patches[face_index]
            cx = WIDTH * (k + 1) / (n + 1) + 10 * math.sin(t * 0.7 + k)
            cy = 200 + 6 * math.sin(t * 0.45 + 2 * k)
            x0, y0 = int(cx - FACE_SIZE / 2), int(cy - FACE_SIZE / 2)
            region = frame[y0 : y0 + FACE_SIZE, x0 : x0 + FACE_SIZE]
            region[:] = region * (1 - mask) + patch * mask
        frame *= 1 + 0.03 * math.sin(t * 0.3)  # slow light change
        frame += self._noise.normal(0, 2.5, frame.shape).astype(np.float32)
        return np.clip(frame, 0, 255).astype(np.uint8)


class DemoCamera:
    name = "demo"
    live = False

    def __init__(self, max_fps: float = 15.0, realtime: bool = True, assets: Path = ASSETS, cycles: int = 0) -> None:
        self.fps = max_fps
        self.realtime = realtime
        self._assets = assets
        self._cycles = cycles  # 0 = forever
        self._index = 0
        self._start = 0.0
        self.room: DemoRoom | None = None

    def open(self) -> None:
        self.room = DemoRoom(*load_script(self._assets))
        self._index, self._start = 0, time.monotonic()

    def read(self) -> Frame | None:
        if self.room is None:
            raise CameraError("the demo feed is not open")
        t = self._index / self.fps
        if self._cycles and t >= self._cycles * self.room.cycle_seconds:
            return None
        if self.realtime:
            delay = self._start + t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        self._index += 1
        return Frame(self.room.render(t), t, self._index)

    def close(self) -> None:
        self.room = None
