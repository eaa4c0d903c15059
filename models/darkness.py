"""How dark may a face be before the model misreads it? The evidence for the device's `TOO_DARK_BELOW`.

    python -m models.darkness [--model models/emotion_vgg16_int8.tflite] [--json]

Each realval photo is darkened as a camera whose exposure has run out darkens a room: its light scaled by a gain
(1 down to 0.05) plus sensor noise (2, 4 and 8 grey levels, seeded per photo). Every darkened photo goes through
the device's detector, crop and classifier with the darkness rule off, and each face found is filed by the mean
grey level of its box, the number the device's rule looks at. Per brightness band the table gives how many
faces are read right, how many readings are sure enough to count (at least the mood's default 0.40), and what
share of those sure readings say "angry". Then, per gain, how many faces the device would hold back as too dark.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
from pathlib import Path

import cv2
import numpy as np

from device.photos import photo_pipeline
from models.fer import CLASS_NAMES
from models.realval import HERE, realval_dir

GAINS = (1.0, 0.6, 0.4, 0.3, 0.2, 0.15, 0.1, 0.07, 0.05)
NOISE = (2.0, 4.0, 8.0)
BANDS = (0, 8, 12, 16, 20, 30, 40, 60, 256)
SURE = 0.40  # the mood engine's default min_confidence


def darkened(grey: np.ndarray, gain: float, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = grey.astype(np.float32) * gain + rng.normal(0.0, noise, grey.shape)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def measure(model: Path, folder: Path | None = None, gains=GAINS, noise=NOISE, limit: int | None = None) -> dict:
    from device.events import Frame
    from device.pipeline import TOO_DARK_BELOW

    folder = folder or realval_dir()
    rows = list(csv.DictReader((folder / "labels.csv").open()))[:limit]
    pipeline = photo_pipeline(model)
    faces = []  # (gain, noise, box mean, sure, predicted, label)
    for i, row in enumerate(rows):
        grey = cv2.imread(str(folder / row["file"]), cv2.IMREAD_GRAYSCALE)
        if grey is None:
            raise SystemExit(f"{folder / row['file']}: not an image OpenCV can read")
        label = CLASS_NAMES.index(row["label"])
        for sigma in noise:
            for gain in gains:
                dark = darkened(grey, gain, sigma, i)
                reading, _ = pipeline.process(Frame(dark, 0.0, 0))
                if not reading.faces:
                    continue
                best = max(reading.faces, key=lambda f: f.face.w * f.face.h)
                x, y, w, h = best.face.box
                box = dark[max(0, y) : y + h, max(0, x) : x + w]
                p = np.asarray(best.probabilities)
                faces.append((gain, sigma, float(box.mean()), float(p.max()) >= SURE, int(p.argmax()), label))
    if not faces:
        raise SystemExit(f"no face was found in any darkened photo of {folder}: check the face detector")
    gain_of, _, mean, sure, pred, label = (np.array(c) for c in zip(*faces))
    right = pred == label
    angry = pred == CLASS_NAMES.index("angry")
    bands = []
    for lo, hi in itertools.pairwise(BANDS):
        m = (mean >= lo) & (mean < hi)
        if not m.any():
            continue
        s = m & sure
        bands.append(
            {
                "brightness": [lo, hi],
                "faces": int(m.sum()),
                "read_right": round(float(right[m].mean()), 4),
                "sure": round(float(s.sum() / m.sum()), 4),
                "sure_read_angry": round(float(angry[s].mean()), 4) if s.any() else None,
            }
        )
    held = [
        {"gain": g, "held_back": round(float((mean[gain_of == g] < TOO_DARK_BELOW).mean()), 4)}
        for g in gains
        if (gain_of == g).any()
    ]
    return {"photos": len(rows), "faces": len(faces), "too_dark_below": TOO_DARK_BELOW, "bands": bands, "held": held}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=HERE / "emotion_vgg16_int8.tflite")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    result = measure(args.model)
    if args.json:
        print(json.dumps(result, indent=2))
        return result
    print(f"{result['faces']} faces found in {result['photos']} photos, {len(GAINS)} gains x {len(NOISE)} noise levels")
    print("face brightness   faces  read right  sure  sure ones read angry")
    for b in result["bands"]:
        lo, hi = b["brightness"]
        angry = "-" if b["sure_read_angry"] is None else f"{b['sure_read_angry']:.0%}"
        print(f"  {lo:3d} to {hi:3d}    {b['faces']:5d}  {b['read_right']:9.1%}  {b['sure']:4.0%}  {angry:>8}")
    print(f"held back as too dark (under {result['too_dark_below']:g}):")
    print("  " + ", ".join(f"gain {h['gain']:g}: {h['held_back']:.0%}" for h in result["held"]))
    return result


if __name__ == "__main__":
    main()
