"""Full-pipeline evaluation on real photos: detect on the whole photo, the device's crop, classify.

    python -m models.realval [--model models/emotion_vgg16_int8.tflite] [--checkpoint best.pt] [--json]

Reads ``../shared/data/realval`` (CK+ frames; see its README). Every photo goes through the device's own
`Pipeline` (BlazeFace on a 320-pixel-wide grey frame, the calibrated crop, the int8 classifier), exactly as
`moodbox classify` runs it. Where several faces are found, the largest counts. Photos with no face found are
detection misses, counted apart and scored as wrong in ``accuracy_all``. The set is for validation and for
tuning preprocessing only: never train on it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models.fer import CLASS_NAMES

HERE = Path(__file__).resolve().parent


def realval_dir() -> Path:
    """$MOODBOX_REALVAL, else ../shared/data/realval beside the repository."""
    env = os.environ.get("MOODBOX_REALVAL")
    return Path(env) if env else HERE.parents[1] / "shared" / "data" / "realval"


@dataclass
class Photo:
    file: str
    label: int
    crop: np.ndarray | None  # the device's 48x48 crop of the largest face, None when no face was found
    int8: np.ndarray | None  # the device's seven probabilities for that face


def _pipeline(model: Path, detector: str = "auto"):
    from device.emotion import EmotionClassifier
    from device.faces import make_detector
    from device.mood import MoodEngine, MoodSettings
    from device.pipeline import Pipeline

    return Pipeline(make_detector(detector), EmotionClassifier(model, threads=2), MoodEngine(MoodSettings()))


def cropped_to_face(pipeline, grey: np.ndarray, margin: float, size: int = 256) -> np.ndarray | None:
    """The photo cut to a square around its largest face, `margin` times the face box, at `size` pixels: the
    framing of expression photo sets that are cropped to the face (below 1.0 the chin or hair is cut off)."""
    from device.events import Frame

    reading, _ = pipeline.process(Frame(grey, 0.0, 0))
    if not reading.faces:
        return None
    return cut_square(grey, max(reading.faces, key=lambda r: r.face.w * r.face.h).face, margin, size)


def cut_square(grey: np.ndarray, face, margin: float, size: int = 256) -> np.ndarray:
    """A square around `face` (frame pixels), `margin` times its box, resized to `size` pixels."""
    cx, cy, side = face.x + face.w / 2, face.y + face.h / 2, max(face.w, face.h) * margin
    x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    cut = grey[y0 : int(cy + side / 2), x0 : int(cx + side / 2)]
    return cv2.resize(cut, (size, size), interpolation=cv2.INTER_AREA)


def run_photos(
    model: Path,
    folder: Path | None = None,
    margin: float | None = None,
    face_crop: float | None = None,
    detector: str = "auto",
) -> list[Photo]:
    """Every realval photo through the device pipeline with this model (`margin` overrides the crop's; with
    `face_crop`, each photo is first cut to its face at that margin, see `cropped_to_face`; `detector` is a
    `make_detector` kind, while the cut to the face always uses the device's default detector, so that every
    detector is scored on the same cut photos)."""
    import dataclasses

    from device.events import Frame

    folder = folder or realval_dir()
    rows = list(csv.DictReader((folder / "labels.csv").open()))
    if not rows:
        raise SystemExit(f"{folder / 'labels.csv'} lists no photos")
    pipeline = _pipeline(model, detector)
    cutter = pipeline if detector == "auto" else _pipeline(model)
    if margin is not None:
        pipeline.classifier.framing = dataclasses.replace(pipeline.classifier.framing, margin=margin)
    photos = []
    for row in rows:
        grey = cv2.imread(str(folder / row["file"]), cv2.IMREAD_GRAYSCALE)
        if grey is None:
            raise SystemExit(f"{folder / row['file']}: not an image OpenCV can read")
        if face_crop is not None:
            cut = cropped_to_face(cutter, grey, face_crop)
            grey = cut if cut is not None else grey
        reading, _ = pipeline.process(Frame(grey, 0.0, 0))
        label = CLASS_NAMES.index(row["label"])
        if not reading.faces:
            photos.append(Photo(row["file"], label, None, None))
            continue
        best = max(reading.faces, key=lambda f: f.face.w * f.face.h)
        crop = pipeline.classifier.crop(grey, best.face)
        photos.append(Photo(row["file"], label, crop, np.asarray(best.probabilities, np.float32)))
    return photos


def score(photos: list[Photo], probabilities: list[np.ndarray | None]) -> dict:
    """Accuracy, macro-F1, per-class recall and the confusion matrix; misses counted apart."""
    from models.evaluate import confusion, scores

    found = [(ph.label, p) for ph, p in zip(photos, probabilities) if p is not None]
    labels = np.array([lab for lab, _ in found], np.int64)
    pred = np.array([int(np.argmax(p)) for _, p in found], np.int64)
    s = scores(labels, pred)
    misses = {c: 0 for c in CLASS_NAMES}
    for ph, p in zip(photos, probabilities):
        if p is None:
            misses[CLASS_NAMES[ph.label]] += 1
    return {
        "photos": len(photos),
        "faces_found": len(found),
        "detection_misses": sum(misses.values()),
        "misses_by_class": {c: n for c, n in misses.items() if n},
        "accuracy": round(s["accuracy"], 4),  # over photos with a face found
        "accuracy_all": round(float((labels == pred).sum()) / max(1, len(photos)), 4),  # misses count as wrong
        "macro_f1": round(s["macro_f1"], 4),
        "recall": {c: round(r, 4) for c, r in s["recall"].items()},
        "confusion": confusion(labels, pred).tolist(),
    }


def float_scores(
    photos: list[Photo], checkpoint: Path, flip: bool = False, logit_shift: np.ndarray | None = None
) -> dict:
    """The same photos and crops through a float PyTorch checkpoint (to judge a model before converting it)."""
    import torch

    from models.evaluate import float_net

    net = float_net(checkpoint, logit_shift)
    crops = [ph.crop for ph in photos if ph.crop is not None]
    x = torch.from_numpy(np.stack(crops)).float().unsqueeze(1)
    with torch.no_grad():
        p = torch.softmax(net(x), 1)
        if flip:
            p = (p + torch.softmax(net(torch.flip(x, dims=[3])), 1)) / 2
    it = iter(p.numpy())
    return score(photos, [next(it) if ph.crop is not None else None for ph in photos])


def evaluate_realval(
    model: Path,
    checkpoint: Path | None = None,
    folder: Path | None = None,
    logit_shift: np.ndarray | None = None,
    face_crop: float | None = None,
    detector: str = "auto",
) -> dict:
    photos = run_photos(model, folder, face_crop=face_crop, detector=detector)
    out = {"int8": score(photos, [ph.int8 for ph in photos])}
    if checkpoint is not None and checkpoint.exists():
        out["float"] = float_scores(photos, checkpoint, logit_shift=logit_shift)
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=HERE / "emotion_vgg16_int8.tflite")
    p.add_argument("--checkpoint", type=Path, help="also score this float PyTorch checkpoint on the same crops")
    p.add_argument(
        "--face-crop",
        type=float,
        metavar="MARGIN",
        help="first cut each photo to its face, MARGIN times the face box, at 256x256 (like photo sets cropped "
        "to the face; 1.1 is tight, 0.9 cuts the chin)",
    )
    p.add_argument(
        "--detector",
        default="auto",
        choices=("auto", "blazeface", "blazeface-full", "blazeface-short", "haar"),
        help="the face detector to score (default: the device's); --face-crop still cuts with the device's",
    )
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    result = evaluate_realval(args.model, args.checkpoint, face_crop=args.face_crop, detector=args.detector)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for kind, r in result.items():
            recall = ", ".join(f"{c} {v:.0%}" for c, v in r["recall"].items())
            print(
                f"{kind}: {r['accuracy']:.1%} of {r['faces_found']} faces found "
                f"({r['detection_misses']} of {r['photos']} photos missed); macro-F1 {r['macro_f1']:.3f}; {recall}"
            )
    return result


if __name__ == "__main__":
    main()
