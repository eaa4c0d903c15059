"""Camera sources behind one interface, chosen by `[camera] source` in the config.

Every source yields grey `Frame`s, in memory only. `open_camera` builds the configured one; `auto` tries the
Pi camera, then the first V4L2 webcam, then the built-in demo feed.
"""

from __future__ import annotations

import logging
from typing import Protocol

from device.config import Camera as CameraConfig
from device.events import Frame

log = logging.getLogger(__name__)


class CameraError(RuntimeError):
    """The camera failed or vanished; the message says which and what to check."""


class Camera(Protocol):
    name: str  # e.g. "picamera2", "v4l2:/dev/video0", "replay:clip.mp4", "demo"
    live: bool  # a real camera (False for replays and the demo)

    def open(self) -> None: ...

    def read(self) -> Frame | None:
        """The next frame; None at the end of a replay. Raises CameraError when the camera fails."""
        ...

    def close(self) -> None: ...


def open_camera(config: CameraConfig) -> Camera:
    """The configured camera, opened. For `auto`, the first source that opens and gives a frame."""
    from device.camera._demo import DemoCamera
    from device.camera._picamera import PiCamera
    from device.camera._replay import ReplayCamera
    from device.camera._v4l2 import V4L2Camera, find_v4l2_devices

    if config.source == "demo":
        candidates: list[Camera] = [DemoCamera(max_fps=config.max_fps)]
    elif config.source == "replay":
        if not config.replay_path:
            raise CameraError("[camera] source = 'replay' needs [camera] replay_path (a video file or image folder)")
        candidates = [
            ReplayCamera(config.replay_path, pace=config.replay_pace, loop=config.replay_loop, max_fps=config.max_fps)
        ]
    elif config.source == "picamera2":
        candidates = [PiCamera(config.width, config.height)]
    elif config.source == "v4l2":
        devices = [config.device] if config.device else find_v4l2_devices()
        if not devices:
            raise CameraError("no V4L2 camera found (/dev/video*): plug in a USB webcam, or set [camera] source")
        candidates = [V4L2Camera(d, config.width, config.height, config.max_fps) for d in devices]
    else:  # auto
        candidates = [PiCamera(config.width, config.height)]
        candidates += [V4L2Camera(d, config.width, config.height, config.max_fps) for d in find_v4l2_devices()]
        if config.demo_fallback:
            candidates.append(DemoCamera(max_fps=config.max_fps))

    errors = []
    for camera in candidates:
        try:
            camera.open()
            return camera
        except CameraError as exc:
            errors.append(f"{camera.name}: {exc}")
            log.info("camera %s not usable: %s", camera.name, exc)
            camera.close()
    raise CameraError("no camera could be opened: " + "; ".join(errors))


from device.camera._feed import CameraFeed  # noqa: E402  (after Camera and CameraError, which it uses)

__all__ = ["Camera", "CameraError", "CameraFeed", "Frame", "open_camera"]
