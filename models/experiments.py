"""Measure one generalisation idea on FER2013 and on real photos, and record it for the model card.

    python -m models.experiments NAME --checkpoint CKPT [--logit-adjust TAU] [--mirror] [--contrast KIND]
        [--class-bias fear=1.0] --what "..."

Scores the float checkpoint (with the post-hoc options given) on FER2013 PublicTest and PrivateTest and on
every realval photo through the device's own detector and crop (`models.realval`), and writes the row into
`models/experiments.json`; `models.evaluate` puts the table in the card. The realval numbers count detection
misses as wrong. Floats, not int8: this is for choosing, before a conversion; the shipped model's int8 numbers
are the card's main tables.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RECORD = HERE / "experiments.json"


def _stretch(face: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(face, [1, 99])
    return np.clip((face.astype(np.float32) - lo) * 255 / max(hi - lo, 1.0), 0, 255).astype(np.uint8)


def _standardise(face: np.ndarray, mean: float = 129.0, std: float = 54.3) -> np.ndarray:
    """To FER2013's typical face: PrivateTest faces average a mean of 129 and a standard deviation of 54."""
    x = face.astype(np.float32)
    return np.clip((x - x.mean()) / max(float(x.std()), 1.0) * std + mean, 0, 255).astype(np.uint8)


def _sharpen(face: np.ndarray, amount: float = 0.5, sigma: float = 1.0) -> np.ndarray:
    """An unsharp mask: real-photo crops are smoother than FER2013's (see the card's sharpness note)."""
    import cv2

    x = face.astype(np.float32)
    return np.clip(x + amount * (x - cv2.GaussianBlur(x, (0, 0), sigma)), 0, 255).astype(np.uint8)


def _soften(face: np.ndarray, sigma: float = 0.6) -> np.ndarray:
    import cv2

    return np.clip(cv2.GaussianBlur(face.astype(np.float32), (0, 0), sigma), 0, 255).astype(np.uint8)


def sharpness(face: np.ndarray) -> float:
    """High-frequency energy: the variance of the Laplacian over the variance of the pixels."""
    import cv2

    x = face.astype(np.float32)
    return float(cv2.Laplacian(x, cv2.CV_32F).var()) / max(float(x.var()), 1.0)


def contrast(kind: str | None):
    """A per-face contrast normalisation (or sharpness change) applied to every 48x48 face before the model."""
    import cv2

    if kind is None:
        return None
    if kind == "histeq":
        return cv2.equalizeHist
    if kind == "clahe":
        return cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 4)).apply
    return {"stretch": _stretch, "standardise": _standardise, "sharpen": _sharpen, "soften": _soften}[kind]


def class_bias(text: str) -> dict[str, float]:
    """'fear=1.0,angry=0.5' -> {'fear': 1.0, 'angry': 0.5}: logits added to those classes (argparse type)."""
    from models.fer import CLASS_NAMES

    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        if name.strip() not in CLASS_NAMES:
            raise argparse.ArgumentTypeError(f"{name.strip()!r} is not a class; choose from {', '.join(CLASS_NAMES)}")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r}: write CLASS=NUMBER, e.g. fear=1.0") from None
    return out


def measure(
    checkpoint: Path,
    tau: float,
    mirror: bool,
    model: Path,
    margin: float | None = None,
    normalise: str | None = None,
    bias: dict[str, float] | None = None,
    ensemble: tuple[Path, ...] = (),
) -> dict:
    import torch

    from models.evaluate import float_net, scores
    from models.fer import CLASS_NAMES, load_split, logit_adjustment
    from models.realval import run_photos, score

    shift = logit_adjustment(tau) if tau else np.zeros(len(CLASS_NAMES), np.float32)
    for name, value in (bias or {}).items():  # on top of the logit adjustment, for one class at a time
        shift[CLASS_NAMES.index(name)] += value
    nets = [float_net(c, shift if shift.any() else None) for c in (checkpoint, *ensemble)]
    per_face = contrast(normalise)

    def probs(images: np.ndarray) -> np.ndarray:
        if per_face is not None:
            images = np.stack([per_face(np.ascontiguousarray(im)) for im in images])
        x = torch.from_numpy(np.ascontiguousarray(images)).float().unsqueeze(1)
        views = [x, torch.flip(x, dims=[3])] if mirror else [x]
        with torch.no_grad():  # the mean probability over the networks and the views
            p = [
                torch.cat([torch.softmax(n(v[i : i + 512]), 1) for i in range(0, len(v), 512)])
                for n in nets
                for v in views
            ]
        return torch.stack(p).mean(0).numpy()

    out: dict = {"sharpness": {}}
    for split in ("PublicTest", "PrivateTest"):
        data = load_split(split)
        s = scores(data.labels, probs(data.images).argmax(1))
        out[split] = {"accuracy": round(s["accuracy"], 4), "macro_f1": round(s["macro_f1"], 4)}
    out["sharpness"]["PrivateTest"] = round(float(np.median([sharpness(f) for f in data.images])), 3)
    photos = run_photos(model, margin=margin)
    crops = np.stack([ph.crop for ph in photos if ph.crop is not None])
    out["sharpness"]["realval"] = round(float(np.median([sharpness(f) for f in crops])), 3)
    it = iter(probs(crops))
    r = score(photos, [next(it) if ph.crop is not None else None for ph in photos])
    out["realval"] = {k: r[k] for k in ("accuracy_all", "macro_f1", "recall", "detection_misses", "confusion")}
    return out


def load() -> list[dict]:
    """The rows recorded so far, in the card's order."""
    return json.loads(RECORD.read_text()) if RECORD.exists() else []


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name")
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--logit-adjust", type=float, default=0.0)
    p.add_argument("--mirror", action="store_true", help="average with the mirrored face")
    p.add_argument("--margin", type=float, help="crop margin for the realval photos (default: the model's)")
    p.add_argument(
        "--contrast",
        choices=("histeq", "clahe", "stretch", "standardise", "sharpen", "soften"),
        help="normalise each face's contrast, or sharpen or soften it, first (FER2013 and realval alike)",
    )
    p.add_argument(
        "--class-bias",
        type=class_bias,
        default={},
        help="logits added to classes after the logit adjustment, e.g. fear=1.0 (a decision shift, no training)",
    )
    p.add_argument(
        "--ensemble",
        type=Path,
        action="append",
        default=[],
        metavar="CHECKPOINT",
        help="average the probabilities with this network's too (repeatable); each gets the same logit adjustment",
    )
    p.add_argument("--what", required=True, help="one line: what this row tries")
    p.add_argument("--model", type=Path, default=HERE / "emotion_vgg16_int8.tflite", help="for the realval crops")
    args = p.parse_args(argv)
    row = {
        "name": args.name,
        "what": args.what,
        "logit_adjust": args.logit_adjust,
        "mirror": args.mirror,
        "margin": args.margin,
        "contrast": args.contrast,
        "class_bias": args.class_bias,
        **({"ensemble": [c.name for c in args.ensemble]} if args.ensemble else {}),
        **measure(
            args.checkpoint,
            args.logit_adjust,
            args.mirror,
            args.model,
            args.margin,
            args.contrast,
            args.class_bias,
            tuple(args.ensemble),
        ),
    }
    rows = load()
    names = [r["name"] for r in rows]
    if args.name in names:  # measured again: the row keeps its place in the table
        rows[names.index(args.name)] = row
    else:
        rows.append(row)
    RECORD.write_text(json.dumps(rows, indent=2) + "\n")
    print(json.dumps(row))
    return row


if __name__ == "__main__":
    main()
