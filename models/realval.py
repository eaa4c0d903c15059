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

from device.photos import confusion, largest_face, photo_pipeline, scores
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
    face_width: float = 0.0  # of that face, in the photo's pixels


def cropped_to_face(pipeline, grey: np.ndarray, margin: float, size: int = 256) -> np.ndarray | None:
    """The photo cut to a square around its largest face, `margin` times the face box, at `size` pixels: the
    framing of expression photo sets that are cropped to the face (below 1.0 the chin or hair is cut off)."""
    best = largest_face(pipeline, grey)
    return None if best is None else cut_square(grey, best.face, margin, size)


def cut_square(grey: np.ndarray, face, margin: float, size: int = 256) -> np.ndarray:
    """A square around `face` (frame pixels), `margin` times its box, resized to `size` pixels."""
    cx, cy, side = face.x + face.w / 2, face.y + face.h / 2, max(face.w, face.h) * margin
    x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    cut = grey[y0 : int(cy + side / 2), x0 : int(cx + side / 2)]
    return cv2.resize(cut, (size, size), interpolation=cv2.INTER_AREA)


def _scaled(k: float):
    return lambda g, rng: cv2.resize(g, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)


def _noisy(gain: float, sigma: float):
    def degrade(g: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = g.astype(np.float32) * gain + rng.normal(0.0, sigma, g.shape)
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)

    return degrade


def _jpeg(quality: int):
    def degrade(g: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        _, data = cv2.imencode(".jpg", g, [cv2.IMWRITE_JPEG_QUALITY, quality])
        return cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)

    return degrade


def _blurred(sigma: float):
    return lambda g, rng: cv2.GaussianBlur(g, (0, 0), sigma)


def _side_light(g: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    ramp = np.linspace(0.25, 1.0, g.shape[1], dtype=np.float32)[None, :]
    return np.clip(np.rint(g.astype(np.float32) * ramp), 0, 255).astype(np.uint8)


# What a living room does to a face that a posed photo does not: (what it is, how each photo is changed). The noise
# is seeded per photo, so every run gives the same numbers.
CONDITIONS = {
    "smaller": ("the photo at 0.3 of its size: the face about 78 pixels wide, as across a room", _scaled(0.3)),
    "far": ("the photo at 0.2 of its size: the face about 52 pixels wide", _scaled(0.2)),
    "dim": ("a quarter of the light, and sensor noise of 3 grey levels", _noisy(0.25, 3.0)),
    "grainy": ("the camera's gain turned up in low light: sensor noise of 12 grey levels", _noisy(1.0, 12.0)),
    "jpeg": ("JPEG at quality 30, as a busy webcam stream", _jpeg(30)),
    "soft": ("out of focus: a Gaussian blur of 5 pixels (the faces are about 260 wide)", _blurred(5.0)),
    "side-light": ("light from one side: brightness falls from the right edge to a quarter at the left", _side_light),
}


def run_photos(
    model: Path,
    folder: Path | None = None,
    margin: float | None = None,
    face_crop: float | None = None,
    detector: str = "auto",
    condition: str | None = None,
) -> list[Photo]:
    """Every realval photo through the device pipeline with this model (`margin` overrides the crop's; with
    `face_crop`, each photo is first cut to its face at that margin, see `cropped_to_face`; `detector` is a
    `make_detector` kind, while the cut to the face always uses the device's default detector, so that every
    detector is scored on the same cut photos; `condition` is one of CONDITIONS, applied to the whole photo)."""
    import dataclasses

    folder = folder or realval_dir()
    rows = list(csv.DictReader((folder / "labels.csv").open()))
    if not rows:
        raise SystemExit(f"{folder / 'labels.csv'} lists no photos")
    pipeline = photo_pipeline(model, detector)
    cutter = pipeline if detector == "auto" else photo_pipeline(model)
    if margin is not None:
        pipeline.classifier.framing = dataclasses.replace(pipeline.classifier.framing, margin=margin)
    if condition is not None and condition not in CONDITIONS:
        raise SystemExit(f"unknown condition {condition!r}: choose one of {', '.join(CONDITIONS)}")
    photos = []
    for i, row in enumerate(rows):
        grey = cv2.imread(str(folder / row["file"]), cv2.IMREAD_GRAYSCALE)
        if grey is None:
            raise SystemExit(f"{folder / row['file']}: not an image OpenCV can read")
        if condition is not None:
            grey = CONDITIONS[condition][1](grey, np.random.default_rng(i))
        if face_crop is not None:
            cut = cropped_to_face(cutter, grey, face_crop)
            grey = cut if cut is not None else grey
        label = CLASS_NAMES.index(row["label"])
        best = largest_face(pipeline, grey)
        if best is None:
            photos.append(Photo(row["file"], label, None, None))
            continue
        crop = pipeline.classifier.crop(grey, best.face)
        photos.append(Photo(row["file"], label, crop, np.asarray(best.probabilities, np.float32), best.face.w))
    return photos


def save_crops(photos: list[Photo], path: Path) -> int:
    """The device's crops and the labels in one small file (a blank crop where no face was found), for a machine
    that has neither the photos nor the detector; returns how many faces it holds."""
    found = np.array([ph.crop is not None for ph in photos])
    crops = np.stack([ph.crop if ph.crop is not None else np.zeros((48, 48), np.uint8) for ph in photos])
    labels = np.array([ph.label for ph in photos], np.int64)
    widths = np.array([ph.face_width for ph in photos], np.float32)
    np.savez_compressed(path, crops=crops.astype(np.uint8), found=found, labels=labels, face_width=widths)
    return int(found.sum())


def photos_from_crops(path: Path) -> list[Photo]:
    """`save_crops`'s file back as photos, for `net_scores` (no probabilities of the shipped model)."""
    d = np.load(path)
    return [
        Photo(f"{i}", int(lab), crop if ok else None, None, float(w))
        for i, (crop, ok, lab, w) in enumerate(zip(d["crops"], d["found"], d["labels"], d["face_width"]))
    ]


def score(photos: list[Photo], probabilities: list[np.ndarray | None]) -> dict:
    """Accuracy, macro-F1, per-class recall and the confusion matrix; misses counted apart."""
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
        "face_width_median": round(float(np.median([ph.face_width for ph in photos if ph.crop is not None] or [0])), 1),
    }


def float_scores(
    photos: list[Photo], checkpoint: Path, flip: bool = False, logit_shift: np.ndarray | None = None
) -> dict:
    """The same photos and crops through a float PyTorch checkpoint (to judge a model before converting it)."""

    from models.vgg16_torch import float_net

    return net_scores(photos, float_net(checkpoint, logit_shift), flip)


def net_scores(photos: list[Photo], net, flip: bool = False, logit_shift: np.ndarray | None = None) -> dict:
    """The photos' crops through a PyTorch model in float (on the device it lives on), scored as `score` does."""
    import torch

    crops = [ph.crop for ph in photos if ph.crop is not None]
    if not crops:
        return score(photos, [None] * len(photos))
    device = next(net.parameters()).device
    x = torch.from_numpy(np.stack(crops)).float().unsqueeze(1).to(device)
    shift = torch.as_tensor(0.0 if logit_shift is None else logit_shift, device=device)
    was_training = net.training
    net.eval()
    with torch.no_grad():
        p = torch.softmax(net(x).float() + shift, 1)
        if flip:
            p = (p + torch.softmax(net(torch.flip(x, dims=[3])).float() + shift, 1)) / 2
    net.train(was_training)
    it = iter(p.cpu().numpy())
    return score(photos, [next(it) if ph.crop is not None else None for ph in photos])


def evaluate_realval(
    model: Path,
    checkpoint: Path | None = None,
    folder: Path | None = None,
    logit_shift: np.ndarray | None = None,
    face_crop: float | None = None,
    detector: str = "auto",
    condition: str | None = None,
) -> dict:
    photos = run_photos(model, folder, face_crop=face_crop, detector=detector, condition=condition)
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
    p.add_argument(
        "--condition",
        choices=tuple(CONDITIONS),
        help="first change each photo as a living room would: "
        + "; ".join(f"{name}: {what}" for name, (what, _) in CONDITIONS.items()),
    )
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    result = evaluate_realval(
        args.model, args.checkpoint, face_crop=args.face_crop, detector=args.detector, condition=args.condition
    )
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
