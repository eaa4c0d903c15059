"""The emotion classifier: an int8 TFLite model plus the metadata file beside it.

The metadata (`<model>.json`) holds the labels, the input size, the preprocessing, the quantisation of the
input and output tensors and the crop framing. It is checked against the model at load, so a wrong or corrupt
model is refused with a message that names the problem and the fix.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from device.config import Emotion as EmotionSettings
from device.events import EMOTIONS, Face
from device.litert import ModelError, load_interpreter

DEFAULT_MODEL = EmotionSettings().model_path  # models/ in a checkout, else the copy in the installed package
METADATA_FORMAT = "moodbox-emotion/1"
# For testing only: slows every face's classification by this many milliseconds, to run the real daemon at the
# speed of a Pi 4 (about 80 ms per face) on a fast machine (tests/test_pi_speed.py, benchmarks/pi_speed.py).
TEST_DELAY_ENV = "MOODBOX_TEST_CLASSIFY_DELAY_MS"
log = logging.getLogger(__name__)


def injected_delay_seconds() -> float:
    """The injected per-face delay of $MOODBOX_TEST_CLASSIFY_DELAY_MS, in seconds (0 when unset)."""
    raw = os.environ.get(TEST_DELAY_ENV, "").strip()
    if not raw:
        return 0.0
    try:
        ms = float(raw)
    except ValueError:
        ms = -1.0
    if not 0 <= ms <= 10_000:
        raise ModelError(
            f"{TEST_DELAY_ENV}={raw!r} is not a delay between 0 and 10000 ms: unset it (it only slows the "
            "classifier down for testing)"
        )
    if ms:
        log.warning("%s=%g: every face's classification is slowed by %g ms (for testing only)", TEST_DELAY_ENV, ms, ms)
    return ms / 1000


@dataclass(frozen=True)
class Framing:
    """How a face crop is cut from a detector box, to match FER2013's tight crops."""

    margin: float = 1.0  # crop side / detector box side
    shift_x: float = 0.0  # crop centre offset, in box widths
    shift_y: float = 0.0  # crop centre offset, in box heights (positive = down)
    align_eyes: bool = True


@dataclass(frozen=True)
class Quantisation:
    dtype: str
    scale: float
    zero_point: int

    def matches(self, detail: dict[str, Any]) -> bool:
        scale, zero = detail["quantization"]
        return (
            np.dtype(detail["dtype"]).name == self.dtype
            and math.isclose(scale, self.scale, rel_tol=1e-6)
            and int(zero) == self.zero_point
        )


def metadata_path(model: Path) -> Path:
    return model.with_suffix(".json")


def load_metadata(model: Path) -> dict[str, Any]:
    path = metadata_path(model)
    if not path.is_file():
        raise ModelError(
            f"the metadata file {path} is missing: every model needs one beside it (models/convert.py writes it)"
        )
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path} is not valid JSON ({exc}): restore it from git or re-run models/convert.py") from exc
    if meta.get("format") != METADATA_FORMAT:
        raise ModelError(f"{path} has format {meta.get('format')!r}, expected {METADATA_FORMAT!r}")
    if tuple(meta.get("labels", ())) != EMOTIONS:
        raise ModelError(f"{path} lists labels {meta.get('labels')}, but Moodbox expects {list(EMOTIONS)}")
    return meta


class EmotionClassifier:
    """Seven emotion probabilities for each face in a grey frame."""

    def __init__(self, model: Path = DEFAULT_MODEL, threads: int = 2, mirror: bool = False) -> None:
        self.path = Path(model)
        self.mirror = mirror
        self.meta = load_metadata(self.path)
        digest = hashlib.sha256(self.path.read_bytes()).hexdigest() if self.path.is_file() else None
        if digest is not None and digest != self.meta.get("sha256"):
            raise ModelError(
                f"{self.path} does not match its metadata (sha256 {digest[:12]}..., metadata says "
                f"{str(self.meta.get('sha256'))[:12]}...): the file is corrupt or was replaced "
                "without its .json; restore both from git or re-run models/convert.py"
            )
        self._interpreter = load_interpreter(self.path, threads)
        inp = self._interpreter.get_input_details()[0]
        out = self._interpreter.get_output_details()[0]
        self.size = tuple(self.meta["input"]["size"])
        self._in_q = Quantisation(**self.meta["input"]["quantization"])
        self._out_q = Quantisation(**self.meta["output"]["quantization"])
        expected = [1, self.size[1], self.size[0], 1]
        if list(inp["shape"]) != expected or not self._in_q.matches(inp):
            raise ModelError(
                f"{self.path}: input tensor {list(inp['shape'])} {inp['dtype'].__name__} "
                f"{inp['quantization']} disagrees with the metadata ({expected}, {self._in_q}); "
                "the .json belongs to another model"
            )
        if list(out["shape"]) != [1, len(EMOTIONS)] or not self._out_q.matches(out):
            raise ModelError(
                f"{self.path}: output tensor {list(out['shape'])} {out['quantization']} disagrees "
                f"with the metadata ([1, 7], {self._out_q}); the .json belongs to another model"
            )
        self._input, self._output = inp["index"], out["index"]
        self._in_dtype, self._out_dtype = inp["dtype"], out["dtype"]
        self.framing = Framing(**self.meta.get("crop", {}))
        self.version = str(self.meta.get("version", "unknown"))
        self.interim = bool(self.meta.get("interim", False))
        self.test_delay = injected_delay_seconds()

    def crop(self, grey: np.ndarray, face: Face) -> np.ndarray:
        """The face cut out and framed like a FER2013 training face, as uint8 [size, size]."""
        f = self.framing
        side = max(face.w, face.h) * f.margin
        cx = face.x + face.w / 2 + f.shift_x * face.w
        cy = face.y + face.h / 2 + f.shift_y * face.h
        angle = 0.0
        if f.align_eyes and len(face.keypoints) >= 2:
            (rx, ry), (lx, ly) = face.keypoints[0], face.keypoints[1]
            angle = math.degrees(math.atan2(ly - ry, lx - rx))
            if abs(angle) > 45:  # keypoints implausible: keep the box upright
                angle = 0.0
        out = self.size[0]
        work = max(out, min(int(side), out * 2))  # rotate at up to 2x, then area-downscale: no aliasing
        m = cv2.getRotationMatrix2D((cx, cy), angle, work / side)
        m[0, 2] += work / 2 - cx
        m[1, 2] += work / 2 - cy
        patch = cv2.warpAffine(grey, m, (work, work), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if work != out:
            patch = cv2.resize(patch, self.size, interpolation=cv2.INTER_AREA)
        return patch

    def probabilities(self, crop: np.ndarray) -> np.ndarray:
        """Seven probabilities (EMOTIONS order) for one uint8 crop of the model's input size."""
        q = self._in_q
        x = np.round(crop.astype(np.float32) / q.scale + q.zero_point)
        info = np.iinfo(self._in_dtype)
        self._interpreter.set_tensor(
            self._input, np.clip(x, info.min, info.max).astype(self._in_dtype).reshape(1, self.size[1], self.size[0], 1)
        )
        self._interpreter.invoke()
        raw = self._interpreter.get_tensor(self._output)[0].astype(np.float32)
        p = (raw - self._out_q.zero_point) * self._out_q.scale
        p = np.clip(p, 0, None)
        total = p.sum()
        return p / total if total > 0 else np.full(len(EMOTIONS), 1 / len(EMOTIONS), np.float32)

    def classify(self, grey: np.ndarray, face: Face) -> np.ndarray:
        """Probabilities for a face; with `mirror`, averaged with its mirror image (two model runs)."""
        if self.test_delay:
            time.sleep(self.test_delay)
        crop = self.crop(grey, face)
        if not self.mirror:
            return self.probabilities(crop)
        return (self.probabilities(crop) + self.probabilities(np.ascontiguousarray(crop[:, ::-1]))) / 2
