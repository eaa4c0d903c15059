"""Photos through the device's own pipeline: a folder of labelled photos read as the box reads a frame.

Used by `moodbox learn --simulate` (the household learner, measured on photo sets) and by the model's evaluation
(`models/realval.py`). A photo is read like one frame of the camera: BlazeFace on a 320-pixel-wide grey copy, the
calibrated crop, the int8 classifier; where several faces are found the largest counts. Every face is read however
dark it is: this scores the model, not the darkness rule.

A labelled folder is laid out `<label>/<photo>`: the label is the folder's name (one of the seven moods), and any
other file or folder is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from device.events import EMOTIONS, FaceEmotion, Frame

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm")


@dataclass(frozen=True)
class LabelledPhoto:
    path: Path
    label: int  # index into EMOTIONS


def labelled_photos(folder: Path) -> list[LabelledPhoto]:
    """Every photo in `folder/<mood>/`, sorted; files elsewhere, and folders not named after a mood, are ignored."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder: give a folder laid out <mood>/<photo>")
    photos = [
        LabelledPhoto(p, EMOTIONS.index(sub.name))
        for sub in sorted(folder.iterdir())
        if sub.is_dir() and sub.name in EMOTIONS
        for p in sorted(sub.iterdir())
        if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES
    ]
    if not photos:
        raise FileNotFoundError(
            f"{folder} holds no photos in folders named after a mood ({', '.join(EMOTIONS)}): lay it out <mood>/<photo>"
        )
    return photos


def photo_pipeline(model: Path | None = None, detector: str = "auto"):
    """The device's pipeline for single photos: every face is read, however dark, and no learned adjustment."""
    from device.emotion import DEFAULT_MODEL, EmotionClassifier
    from device.faces import make_detector
    from device.mood import MoodEngine, MoodSettings
    from device.pipeline import Pipeline

    classifier = EmotionClassifier(model or DEFAULT_MODEL, threads=2)
    return Pipeline(make_detector(detector), classifier, MoodEngine(MoodSettings()), too_dark_below=0)


def largest_face(pipeline, grey: np.ndarray) -> FaceEmotion | None:
    """The device's reading of the largest face in a whole grey photo (box and probabilities), or None."""
    reading, _ = pipeline.process(Frame(grey, 0.0, 0))
    return max(reading.faces, key=lambda r: r.face.w * r.face.h) if reading.faces else None


def read_grey(path: Path) -> np.ndarray:
    import cv2

    grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if grey is None:
        raise ValueError(f"{path}: not an image OpenCV can read")
    return grey


def confusion(labels: np.ndarray, pred: np.ndarray) -> np.ndarray:
    m = np.zeros((len(EMOTIONS), len(EMOTIONS)), np.int64)
    np.add.at(m, (np.asarray(labels, np.int64), np.asarray(pred, np.int64)), 1)
    return m


def scores(labels: np.ndarray, pred: np.ndarray) -> dict:
    """Accuracy, macro-F1 and per-mood recall (EMOTIONS order)."""
    m = confusion(labels, pred)
    recall = m.diagonal() / np.maximum(m.sum(1), 1)
    precision = m.diagonal() / np.maximum(m.sum(0), 1)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return {
        "accuracy": float((np.asarray(labels) == np.asarray(pred)).mean()) if len(labels) else 0.0,
        "macro_f1": float(f1.mean()),
        "recall": {c: float(r) for c, r in zip(EMOTIONS, recall)},
    }
