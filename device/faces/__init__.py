"""Face detection on small grey frames, behind one interface."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from device.events import Face
from device.faces._tracks import FaceTracks, Track


class FaceDetector(Protocol):
    name: str

    def detect(self, grey: np.ndarray) -> list[Face]:
        """Faces in a grey uint8 frame (any size; 320x240 is the working size), best first."""
        ...


def make_detector(kind: str = "auto", min_score: float = 0.6, max_faces: int = 5, threads: int = 2) -> FaceDetector:
    """`blazeface` (BlazeFace full range, and short range on frames where full range finds nobody, for faces
    close to the camera), `blazeface-full` (full range alone: misses faces that fill the frame),
    `blazeface-short` (faces within about 2 m only), `haar` (OpenCV 4.x), or `auto`: BlazeFace, and Haar only if
    no TFLite runtime is installed.

    Two threads by default, like the classifier, for the Pi's four cores: alone, BlazeFace full-range takes about
    2.2 ms instead of 3.6 ms on two x86 cores, but there the two models' thread pools slow each other down (README,
    Performance)."""
    from device.faces._blazeface import BlazeFace, FullRangeWithCloseUps

    if kind == "blazeface":
        return FullRangeWithCloseUps(min_score, max_faces, threads)
    if kind in ("blazeface-full", "blazeface-short"):
        return BlazeFace(kind.removeprefix("blazeface-"), min_score, max_faces, threads)
    if kind == "haar":
        from device.faces._haar import HaarFaces

        return HaarFaces(max_faces)
    if kind == "auto":
        from device.litert import ModelError

        try:
            return FullRangeWithCloseUps(min_score, max_faces, threads)
        except ModelError:
            from device.faces._haar import HaarFaces

            return HaarFaces(max_faces)
    raise ValueError(f"unknown face detector {kind!r}: use auto, blazeface, blazeface-full, blazeface-short or haar")


__all__ = ["Face", "FaceDetector", "FaceTracks", "Track", "make_detector"]
