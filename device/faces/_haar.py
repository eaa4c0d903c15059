"""OpenCV 4.x Haar cascade: the fallback detector where no TFLite runtime exists. OpenCV 5 has no Haar."""

from __future__ import annotations

import cv2
import numpy as np

from device.events import Face
from device.litert import ModelError


class HaarFaces:
    name = "haar"

    def __init__(self, max_faces: int = 5) -> None:
        if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
            raise ModelError(
                f"OpenCV {cv2.__version__} has no Haar cascades (OpenCV 5 dropped them): "
                "install opencv-python-headless<5 or use the blazeface detector"
            )
        self._cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        if self._cascade.empty():
            raise ModelError(
                "OpenCV's haarcascade_frontalface_default.xml did not load: reinstall opencv-python-headless"
            )
        self.max_faces = max_faces

    def detect(self, grey: np.ndarray) -> list[Face]:
        found = self._cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=6, minSize=(24, 24))
        faces = [Face(float(x), float(y), float(w), float(h), 1.0) for x, y, w, h in found]
        faces.sort(key=lambda f: f.w * f.h, reverse=True)
        return faces[: self.max_faces]
