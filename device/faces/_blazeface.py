"""BlazeFace (MediaPipe's face detector, Apache-2.0) run in LiteRT, with its SSD anchors and weighted NMS.

The two models come from the mediapipe 0.10.21 wheel (see device/assets/blazeface/README.md). Grey frames are
fed as three equal channels, letterboxed to the model's square input.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from device.events import Face
from device.litert import load_interpreter

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "blazeface"
# (file, input size, [(stride, anchors per cell)]) as in MediaPipe's face_detection_*.pbtxt
_MODELS = {
    "short": ("face_detection_short_range.tflite", 128, [(8, 2), (16, 6)]),
    "full": ("face_detection_full_range_sparse.tflite", 192, [(4, 1)]),
}
_NMS_IOU = 0.3


def _anchors(size: int, layout: list[tuple[int, int]]) -> np.ndarray:
    rows = []
    for stride, per_cell in layout:
        cells = size // stride
        ys, xs = np.mgrid[0:cells, 0:cells]
        centres = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], -1).reshape(-1, 1, 2)
        rows.append(np.repeat(centres, per_cell, axis=1).reshape(-1, 2))
    return np.concatenate(rows).astype(np.float32)


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def weighted_nms(
    boxes: np.ndarray, scores: np.ndarray, points: np.ndarray
) -> list[tuple[np.ndarray, float, np.ndarray]]:
    """MediaPipe's blending NMS: overlapping boxes are averaged, weighted by score."""
    order = np.argsort(-scores)
    boxes, scores, points = boxes[order], scores[order], points[order]
    out = []
    while len(scores):
        overlap = _iou(boxes[0], boxes) > _NMS_IOU
        w = scores[overlap][:, None]
        out.append(
            (
                (boxes[overlap] * w).sum(0) / w.sum(),
                float(scores[0]),
                (points[overlap] * w[:, :, None]).sum(0) / w.sum(),
            )
        )
        boxes, scores, points = boxes[~overlap], scores[~overlap], points[~overlap]
    return out


class BlazeFace:
    def __init__(self, variant: str = "full", min_score: float = 0.6, max_faces: int = 5, threads: int = 2) -> None:
        file, self.size, layout = _MODELS[variant]
        self.name = f"blazeface-{variant}"
        self.min_score, self.max_faces = min_score, max_faces
        self._interpreter = load_interpreter(ASSETS / file, threads)
        self._input = self._interpreter.get_input_details()[0]["index"]
        outputs = sorted(self._interpreter.get_output_details(), key=lambda d: d["shape"][-1], reverse=True)
        self._regressors, self._scores = outputs[0]["index"], outputs[1]["index"]
        self._anchors = _anchors(self.size, layout)
        self._logit_threshold = float(np.log(min_score / (1 - min_score)))
        # The input tensor is kept between frames: the letterbox border (black, -1) is written only when the
        # frame's shape changes, and grey levels map to [-1, 1] through a 256-entry table instead of arithmetic.
        self._tensor = np.full((1, self.size, self.size, 3), -1.0, np.float32)
        self._to_input = np.arange(256, dtype=np.float32) * (2 / 255.0) - 1
        self._shape: tuple[int, int] | None = None

    def detect(self, grey: np.ndarray) -> list[Face]:
        h, w = grey.shape[:2]
        side = max(h, w)
        scale = self.size / side
        rw, rh = round(w * scale), round(h * scale)
        px, py = (self.size - rw) // 2, (self.size - rh) // 2
        if self._shape != (h, w):
            self._tensor.fill(-1.0)
            self._shape = (h, w)
        fitted = cv2.resize(grey, (rw, rh), interpolation=cv2.INTER_AREA)
        self._tensor[0, py : py + rh, px : px + rw] = self._to_input[fitted][:, :, None]
        self._interpreter.set_tensor(self._input, self._tensor)
        self._interpreter.invoke()
        logits = self._interpreter.get_tensor(self._scores)[0, :, 0]
        keep = np.nonzero(logits > self._logit_threshold)[0]
        if not len(keep):
            return []
        raw = self._interpreter.get_tensor(self._regressors)[0, keep] / self.size
        anchors = self._anchors[keep]
        cx, cy = raw[:, 0] + anchors[:, 0], raw[:, 1] + anchors[:, 1]
        boxes = np.stack([cx - raw[:, 2] / 2, cy - raw[:, 3] / 2, cx + raw[:, 2] / 2, cy + raw[:, 3] / 2], 1)
        points = raw[:, 4:16].reshape(-1, 6, 2) + anchors[:, None, :]
        scores = 1 / (1 + np.exp(-np.clip(logits[keep], -100, 100)))
        faces = []
        to_frame = np.array([self.size / scale, self.size / scale])
        offset = np.array([px / scale, py / scale])
        for box, score, pts in weighted_nms(boxes, scores, points)[: self.max_faces]:
            x0, y0 = box[:2] * to_frame - offset
            x1, y1 = box[2:] * to_frame - offset
            x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
            if x1 - x0 < 4 or y1 - y0 < 4:
                continue
            kp = tuple((float(a), float(b)) for a, b in pts * to_frame - offset)
            faces.append(Face(float(x0), float(y0), float(x1 - x0), float(y1 - y0), score, kp))
        return faces


class FullRangeWithCloseUps:
    """BlazeFace full-range, and short-range on the frames where full-range finds no face.

    Full-range (faces from about 0.5 m to 5 m) misses some faces that fill much of the frame: 4 of the 243 realval
    photos, faces over half the frame wide, scored 0.57-0.60 against the 0.6 threshold. Short-range, made for faces
    within about 2 m, finds all 243 and nothing in empty rooms. It runs only when full-range found nothing, so a
    frame with faces costs what it did; an empty frame costs about 2 ms more here (short-range twice: as it is,
    then with the edges extended for a face the frame cuts off).

    Short-range draws its boxes about 5% smaller than full-range, centred about 4% of the face lower (medians over
    the realval photos, and over the 95 frames of the test video and the portrait where both find the face). They
    are put into full-range's framing, so the classifier's crop, calibrated on full-range boxes, stays right.
    """

    name = "blazeface-full+short"
    _SIZE = 1 / 0.95  # short-range box -> full-range box, about the centre
    _DROP = 0.043  # short-range centres sit this much of the face's height lower

    def __init__(self, min_score: float = 0.6, max_faces: int = 5, threads: int = 2) -> None:
        self.full = BlazeFace("full", min_score, max_faces, threads)
        self.close = BlazeFace("short", min_score, max_faces, threads)

    def detect(self, grey: np.ndarray) -> list[Face]:
        faces = self.full.detect(grey)
        if faces:
            return faces
        h, w = grey.shape[:2]
        close, dx, dy = self.close.detect(grey), 0, 0
        if not close:
            # A face cut off by the frame's edges (a photo cropped to the face, or someone right at the lens):
            # look again with the edges extended by a quarter, so the whole face fits.
            dx, dy = w // 4, h // 4
            close = self.close.detect(cv2.copyMakeBorder(grey, dy, dy, dx, dx, cv2.BORDER_REPLICATE))
        framed = []
        for f in close:
            fw, fh = f.w * self._SIZE, f.h * self._SIZE
            cx, cy = f.x - dx + f.w / 2, f.y - dy + f.h / 2 - self._DROP * fh
            x0, y0 = max(cx - fw / 2, 0.0), max(cy - fh / 2, 0.0)
            x1, y1 = min(cx + fw / 2, float(w)), min(cy + fh / 2, float(h))
            if x1 - x0 < 4 or y1 - y0 < 4:
                continue
            points = tuple((px - dx, py - dy) for px, py in f.keypoints)
            framed.append(Face(x0, y0, x1 - x0, y1 - y0, f.score, points))
        return framed
