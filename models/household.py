"""The household learner measured on the shared sets, for the README and the model card.

    python -m models.household [--seeds 20]     # writes models/household_learner.json

Runs what `moodbox learn --simulate` runs (device/learning/_simulate.py, the same code and seeds), reading each
folder through the device's pipeline once:
- ../shared/data/households/taiwanese as one household, natural protocol, N = 3, 5, 10 and 20;
- Taiwanese as households of 3 performers (the `performer` column of its labels.csv, shuffled per seed; 9
  households a seed, the 2 performers left over sit out), one correction per mood (`--per-class 1`);
- ../shared/data/realval as one household, natural protocol, N = 3, 5, 10 and 20;
- a stand-in for a household the model reads poorly in one consistent way (a camera, a light or faces that push
  every reading towards one mood): Taiwanese with each reading's neutral log-probability raised by 2.5, which the
  model then reads at about 49%; natural protocol, N = 3, 5, 10 and 20. Synthetic: it checks that the learner
  recovers a consistent shift, as the real sets cannot;
- a household the model reads poorly with no consistent pattern: the Taiwanese photos out of focus (a Gaussian
  blur of 5 pixels, models.realval's "soft" condition), natural protocol, N = 3, 5, 10 and 20.
Never used to train or tune the emotion model: these are the learner's validation sets.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import time
from pathlib import Path

import numpy as np

from device.events import EMOTIONS
from device.learning import LearnerSettings
from device.learning._simulate import Readings, balanced, read_folder, simulate
from models.realval import CONDITIONS

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared" / "data"
NS = (3, 5, 10, 20)


def towards(readings: Readings, mood: str, shift: float) -> Readings:
    """The same photos as read by a box whose every reading leans towards `mood` (log-odds + `shift`)."""
    z = np.log(np.clip(readings.probabilities, 1 / 512, 1))
    z[:, EMOTIONS.index(mood)] += shift
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    return Readings(p, readings.labels, readings.files, readings.no_face)


def households_of_three(readings: Readings, labels_csv: Path, seeds: int, settings: LearnerSettings) -> dict:
    performer = {r["file"]: r["performer"] for r in csv.DictReader(labels_csv.open())}
    who = np.array([performer[f] for f in readings.files])
    before, after, sizes = [], [], []
    for seed in range(seeds):
        order = np.random.default_rng(seed).permutation(sorted(set(who)))
        for i in range(0, len(order) - len(order) % 3, 3):
            idx = np.flatnonzero(np.isin(who, order[i : i + 3]))
            p, y = readings.probabilities[idx], readings.labels[idx]
            rest, read, _ = balanced(p, y, 1, seed, settings)
            before.append(float((p[rest].argmax(1) == y[rest]).mean()))
            after.append(float((read == y[rest]).mean()))
            sizes.append(len(idx))
    gains = np.array(after) - np.array(before)
    return {
        "households": len(before),
        "photos_per_household": round(float(np.mean(sizes)), 1),
        "before": round(float(np.mean(before)), 4),
        "after": round(float(np.mean(after)), 4),
        "gain_points": round(100 * float(gains.mean()), 2),
        "households_worse": int((gains < 0).sum()),
        "households_better": int((gains > 0).sum()),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--out", type=Path, default=HERE / "household_learner.json")
    args = ap.parse_args(argv)
    settings = LearnerSettings()
    taiwanese = read_folder(SHARED / "households" / "taiwanese")
    realval = read_folder(SHARED / "realval")
    out: dict = {
        "measured": time.strftime("%Y-%m-%d"),
        "host": f"{platform.machine()}, Python {platform.python_version()}",
        "seeds": args.seeds,
        "settings": {k: v for k, v in vars(settings).items()},
        "taiwanese_natural": {n: simulate(taiwanese, n, None, args.seeds, settings) for n in NS},
        "taiwanese_households_of_3": households_of_three(
            taiwanese, SHARED / "households" / "taiwanese" / "labels.csv", args.seeds, settings
        ),
        "realval_natural": {n: simulate(realval, n, None, args.seeds, settings) for n in NS},
    }
    shifted = towards(taiwanese, "neutral", 2.5)
    out["taiwanese_towards_neutral"] = {n: simulate(shifted, n, None, args.seeds, settings) for n in NS}
    blurred = read_folder(SHARED / "households" / "taiwanese", change=CONDITIONS["soft"][1])
    out["taiwanese_blurred"] = {n: simulate(blurred, n, None, args.seeds, settings) for n in NS}
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    for name in ("taiwanese_natural", "realval_natural", "taiwanese_towards_neutral", "taiwanese_blurred"):
        line = ", ".join(f"N={n}: {r['before']:.1%} -> {r['after']:.1%}" for n, r in out[name].items())
        print(f"{name}: {line}")
    h = out["taiwanese_households_of_3"]
    print(f"taiwanese households of 3, per-class 1: {h['before']:.1%} -> {h['after']:.1%} ({h['gain_points']:+.1f})")
    return out


if __name__ == "__main__":
    main()
