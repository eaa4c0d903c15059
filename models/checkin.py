"""A training run's check-in: measure its best checkpoint, record it in the card's table, ship it if it is better.

    python -m models.checkin --checkpoint ~/.cache/moodbox/train/long/best.pt [--name long-run] [--head] [--ship]

Scores the checkpoint in float, with the shipped post-hoc logit adjustment, on FER2013 PublicTest and PrivateTest
and on realval through the device's detector and crop (`models.experiments`), and writes the row `--name` into
`models/experiments.json` (measured again, it keeps its place), so the card shows where the run stands. It is
compared with `--against`, the shipped weights measured the same way. The rule of issue 13: a model ships only if
it is better on realval and no worse on PrivateTest, and only if the smile in ../shared/media/justin.jpg still
reads happy through the device's detector and crop (`guard`: the device's tests require it; on 2026-12-04 a model
better on both measures read it as neutral). With `--ship` and a better model it then runs the
conversion to int8 and the evaluation that rewrites the card and the metadata; the demo faces and the README's
numbers are left to check by hand (it says which commands).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from models import experiments

HERE = Path(__file__).resolve().parent


def describe(checkpoint: Path) -> str:
    """'best checkpoint after epoch 12 of 150, PublicTest 64.1% at its best epoch', from the checkpoint itself."""
    import torch

    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    epochs = (state.get("args") or {}).get("epochs", "?")
    public = (state.get("public_test") or {}).get("acc")
    seen = f", PublicTest {100 * public:.1f}% at its best epoch" if public is not None else ""
    ema = state.get("ema")
    what = f"weight average (decay {ema['decay']}) after" if ema else "best checkpoint after"
    return f"{what} epoch {state.get('epoch', -1) + 1} of {epochs}{seen}"


def guard(checkpoint: Path, logit_adjust: float) -> tuple[bool, str]:
    """The device's own check on a real photo, in float: the smile in ../shared/media/justin.jpg, found and cut by
    the device's detector and crop, must read happy (the device's tests require it of the shipped model)."""
    import cv2
    import torch

    from device.photos import largest_face, photo_pipeline
    from models.evaluate import float_net
    from models.fer import CLASS_NAMES, data_dir, logit_adjustment

    photo = data_dir().parent / "media" / "justin.jpg"
    grey = cv2.imread(str(photo), cv2.IMREAD_GRAYSCALE)
    if grey is None:
        return False, f"{photo} is missing: put ../shared/media beside the checkout"
    # the shipped file only finds and cuts the face: the crop does not depend on the classifier
    pipeline = photo_pipeline(HERE / "emotion_vgg16_int8.tflite")
    best = largest_face(pipeline, grey)
    if best is None:
        return False, f"the device finds no face in {photo.name}"
    crop = pipeline.classifier.crop(grey, best.face)
    net = float_net(checkpoint, logit_adjustment(logit_adjust) if logit_adjust else None)
    with torch.no_grad():
        p = torch.softmax(net(torch.from_numpy(crop).float()[None, None]), 1)[0]
    read = CLASS_NAMES[int(p.argmax())]
    happy = float(p[CLASS_NAMES.index("happy")])
    return read == "happy", f"{photo.name} reads {read} (happy {happy:.2f})"


def verdict(row: dict, reference: dict) -> tuple[bool, str]:
    """Whether `row` beats `reference` on realval without costing PrivateTest, and the numbers that say so."""
    realval = 100 * (row["realval"]["accuracy_all"] - reference["realval"]["accuracy_all"])
    private = 100 * (row["PrivateTest"]["accuracy"] - reference["PrivateTest"]["accuracy"])
    better = realval > 0 and private >= 0
    return better, f"realval {realval:+.2f} points, PrivateTest {private:+.2f} points against {reference['name']}"


def main(argv: list[str] | None = None) -> bool:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--name", default="long-run", help="the row's name in the card's table")
    p.add_argument("--what", default="", help="what the run is (default: read from the checkpoint)")
    p.add_argument("--logit-adjust", type=float, default=0.5, help="as the shipped model (tau 0.5)")
    p.add_argument("--against", default="head-control", help="the row of the shipped weights to beat")
    p.add_argument("--ship", action="store_true", help="convert and evaluate when it is better")
    p.add_argument(
        "--head",
        action="store_true",
        help="first retrain the head alone on clean faces, as the shipped model's was (models.head; 6 min on a CPU "
        "with bf16, over 17 in fp32)",
    )
    args = p.parse_args(argv)
    if not args.checkpoint.is_file():
        raise SystemExit(f"{args.checkpoint}: no such checkpoint; is the run's folder on this machine?")
    rows = {r["name"]: r for r in experiments.load()}
    if args.against not in rows:
        raise SystemExit(f"no row {args.against!r} in {experiments.RECORD}: measure the shipped weights first")
    what = args.what or f"the long run from random weights with --photometric: {describe(args.checkpoint)}"
    if args.head:
        from models.head import train_head

        args.checkpoint = Path(train_head(args.checkpoint, args.checkpoint.with_name("head.pt"))["out"])
        what += ", then its head retrained 4 epochs on clean faces (models.head)"
    row = experiments.main(
        [args.name, "--checkpoint", str(args.checkpoint), "--logit-adjust", str(args.logit_adjust), "--what", what]
    )
    better, why = verdict(row, rows[args.against])
    if better:  # better on the measures, and the device's guard still holds
        better, said = guard(args.checkpoint, args.logit_adjust)
        why += f"; {said}" + ("" if better else ", and the device's tests require happy there")
    print(("better: " if better else "not better: ") + why)
    if better and args.ship:
        steps = [
            ["-m", "models.convert", "--checkpoint", str(args.checkpoint), "--logit-adjust", str(args.logit_adjust)],
            ["-m", "models.evaluate", "--checkpoint", str(args.checkpoint)],
        ]
        for step in steps:
            subprocess.run([sys.executable, *step], cwd=HERE.parent, check=True)
        print("shipped; next: `python -m models.demo_faces`, `moodbox replay demo`, and the README numbers")
    return better


if __name__ == "__main__":
    main()
