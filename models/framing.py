"""Calibrate how face crops are framed, so the classifier sees faces cut like FER2013's.

FER2013 faces are tight 48x48 crops. Each face here is enlarged, pasted into an empty 320x240 frame, and run
through the device's detector; the crop that reproduces the original square, expressed relative to the
detector's box, is the framing. The medians over thousands of faces go into the model metadata.

    python -m models.framing [--faces 3000]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from device.faces import make_detector
from models.fer import data_dir, load_split

OUT = Path(__file__).resolve().parent / "framing.json"
PASTE = 144  # pasted face size in the 320x240 frame (3x the FER crop)


def measure(images: np.ndarray, detector) -> np.ndarray:
    rows = []
    x0, y0 = (320 - PASTE) // 2, (240 - PASTE) // 2
    for img in images:
        frame = np.full((240, 320), int(img.mean()), np.uint8)
        frame[y0 : y0 + PASTE, x0 : x0 + PASTE] = cv2.resize(img, (PASTE, PASTE), interpolation=cv2.INTER_CUBIC)
        faces = detector.detect(frame)
        if len(faces) != 1:
            continue
        f = faces[0]
        side = max(f.w, f.h)
        rows.append((PASTE / side, (160 - (f.x + f.w / 2)) / f.w, (120 - (f.y + f.h / 2)) / f.h))
    return np.array(rows)


def real_photo_check(margins: list[float]) -> dict[str, float]:
    """Mean probability of "happy" on the smiling faces of ../shared/media (justin.jpg and every frame of
    phone_smile.mp4) with the shipped model, for each crop margin: the calibrated margin should sit at or near
    the best, which checks the FER-based calibration on real photos."""
    import dataclasses

    from device.emotion import EmotionClassifier

    media = data_dir().parent / "media"
    greys = [cv2.imread(str(media / "justin.jpg"), cv2.IMREAD_GRAYSCALE)]
    cap = cv2.VideoCapture(str(media / "phone_smile.mp4"))
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        greys.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    detector, clf = make_detector("blazeface"), EmotionClassifier()
    faces = []
    for grey in greys:
        k = grey.shape[1] / 320
        found = detector.detect(cv2.resize(grey, (320, round(grey.shape[0] / k)), interpolation=cv2.INTER_AREA))
        if found:
            faces.append((grey, found[0].scaled(k)))
    base = clf.framing
    out = {}
    for m in sorted({*margins, round(base.margin, 3)}):
        clf.framing = dataclasses.replace(base, margin=m)
        out[f"{m:.3f}"] = round(float(np.mean([clf.classify(g, f)[3] for g, f in faces])), 4)
    clf.framing = base
    return {"faces": len(faces), "mean_p_happy_by_margin": out}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--faces", type=int, default=3000)
    p.add_argument("--detector", default="blazeface")
    p.add_argument("--check-only", action="store_true", help="only the real-photo check of the current framing")
    args = p.parse_args(argv)
    margins = [0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.6]
    if args.check_only:
        result = real_photo_check(margins)
        print(json.dumps(result, indent=2))
        return result
    train = load_split("Training")
    keep = np.nonzero(train.images.reshape(len(train), -1).std(1) > 10)[0]
    idx = np.random.default_rng(0).choice(keep, size=min(args.faces, len(keep)), replace=False)
    rows = measure(train.images[idx], make_detector(args.detector))
    result = {
        "detector": args.detector,
        "faces_tried": len(idx),
        "faces_detected_once": len(rows),
        "margin": round(float(np.median(rows[:, 0])), 3),
        "shift_x": round(float(np.median(rows[:, 1])), 3),
        "shift_y": round(float(np.median(rows[:, 2])), 3),
        "margin_iqr": [round(float(q), 3) for q in np.percentile(rows[:, 0], [25, 75])],
        "shift_y_iqr": [round(float(q), 3) for q in np.percentile(rows[:, 2], [25, 75])],
    }
    result["check_on_real_photos"] = real_photo_check(margins)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
