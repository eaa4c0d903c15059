"""Which form of household adjustment to learn, measured: the comparison behind device/learning's choice.

    .venv/bin/python benchmarks/learner_forms.py [--seeds 20] [--json]

Every photo of ../shared/data/households/taiwanese and ../shared/data/realval is read once by the device's own
pipeline (the model's seven probabilities for the largest face). Then each form is fitted from corrections and
measured as `moodbox learn --simulate` measures the box's learner:

- **per-class 1, households of 3**: Taiwanese split into households of 3 performers (the `performer` column of its
  labels.csv; 9 households a seed), one random photo of each mood given as a correction, accuracy on the rest.
- **natural, N = 10**: Taiwanese and realval each as one household, the first 10 misreads of a random walk
  corrected, accuracy on the photos never corrected.

Forms, each fitted on the corrections alone (no guard, no anchor: what the form itself can learn):
- `biases`: seven mood biases (the device's fit, L2 0.1 towards no change);
- `temperature + biases`: one scale of the log-probabilities and seven biases;
- `linear map`: a 7x7 map of the log-probabilities and seven biases, L2 towards the identity;
- `biases + local pulls`: the biases, and each correction pulling readings near it towards its mood.
Last, on one seed's 9 households of 3, each photo read with every other photo of its household given as a
correction (about 26): how much a household's own photos can teach these forms at most. Then the box's learner
as shipped (`device`: biases + local pulls, anchored to the everyday readings and guarded),
and the same without its guard, without its anchor, and with uncorrected readings counted as confirmations.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from device.events import EMOTIONS  # noqa: E402
from device.learning import NO_ADJUSTMENT, LearnerSettings, learn  # noqa: E402
from device.learning._adjustment import Adjustment, log_probabilities, softmax  # noqa: E402
from device.learning._learner import _adjustment, fit_bias  # noqa: E402
from device.learning._simulate import Readings, read_folder, simulate  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
K = len(EMOTIONS)


class Scaled:
    """z -> a z + b (temperature + biases) or z -> W z + b (linear map), fitted by gradient descent with L2 towards
    no change."""

    def __init__(self, kind: str, lam: float = 0.1) -> None:
        self.kind, self.lam = kind, lam
        self.W, self.b = np.eye(K), np.zeros(K)

    def fit(self, z: np.ndarray, y: np.ndarray) -> Scaled:
        onehot = np.eye(K)[y]
        W, b = np.eye(K), np.zeros(K)
        for _ in range(400):
            q = softmax(z @ W.T + b)
            r = q - onehot
            gW = r.T @ z + 2 * self.lam * (W - np.eye(K))
            if self.kind == "temperature":
                gW = np.eye(K) * np.trace(gW) / K
            gb = r.sum(0) + 2 * self.lam * b
            step = 0.5 / max(1, len(y))
            W, b = W - step * gW * 0.2, b - step * gb
        self.W, self.b = W, b - b.mean()
        return self

    def apply_many(self, p: np.ndarray) -> np.ndarray:
        return softmax(log_probabilities(p) @ self.W.T + self.b)


def fit_form(form: str, corrections: list[tuple[np.ndarray, int]]):
    if not corrections:
        return NO_ADJUSTMENT
    z = log_probabilities(np.array([p for p, _ in corrections]))
    y = np.array([m for _, m in corrections])
    s = dataclasses.replace(LearnerSettings(), uncorrected="ignore", temper=False)
    if form == "biases":
        return Adjustment(fit_bias(z, y, np.ones(len(y)), z[:0], s))
    if form == "biases + local pulls":
        return _adjustment(z, y, np.ones(len(y)), z[:0], s)
    return Scaled("temperature" if form.startswith("temperature") else "linear").fit(z, y)


FORMS = ("biases", "temperature + biases", "linear map", "biases + local pulls")
DEVICE = {
    "device": LearnerSettings(),
    "device, no guard": dataclasses.replace(LearnerSettings(), guard=False),
    "device, no anchor": dataclasses.replace(LearnerSettings(), uncorrected="ignore"),
    "device, uncorrected = confirmations": dataclasses.replace(LearnerSettings(), uncorrected="confirm"),
}


def households(readings: Readings, performers: dict[str, str], seed: int) -> list[np.ndarray]:
    who = np.array([performers[f] for f in readings.files])
    order = np.random.default_rng(seed).permutation(sorted(set(who)))
    return [np.flatnonzero(np.isin(who, order[i : i + 3])) for i in range(0, len(order) - len(order) % 3, 3)]


def per_class_one(p: np.ndarray, y: np.ndarray, seed: int, fit) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    given = [int(rng.choice(np.flatnonzero(y == m))) for m in range(K) if (y == m).any()]
    rest = np.setdiff1d(np.arange(len(y)), given)
    adj = fit([(p[i], int(y[i])) for i in given])
    return float((p[rest].argmax(1) == y[rest]).mean()), float((adj.apply_many(p[rest]).argmax(1) == y[rest]).mean())


def natural(p: np.ndarray, y: np.ndarray, n: int, seed: int, fit) -> tuple[float, float]:
    order = np.random.default_rng(seed).permutation(len(y))
    adj, corrected = NO_ADJUSTMENT, []
    for i in order:
        if len(corrected) < n and adj.apply_many(p[i : i + 1]).argmax(1)[0] != y[i]:
            corrected.append(i)
            adj = fit([(p[j], int(y[j])) for j in corrected])
    rest = np.setdiff1d(np.arange(len(y)), corrected)
    return float((p[rest].argmax(1) == y[rest]).mean()), float((adj.apply_many(p[rest]).argmax(1) == y[rest]).mean())


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    tw = read_folder(SHARED / "households" / "taiwanese")
    rv = read_folder(SHARED / "realval")
    rows = csv.DictReader((SHARED / "households" / "taiwanese" / "labels.csv").open())
    performers = {r["file"]: r["performer"] for r in rows}
    out: dict = {}
    for form in FORMS:
        fit = lambda c, form=form: fit_form(form, c)  # noqa: E731
        h3 = [
            per_class_one(tw.probabilities[h], tw.labels[h], seed, fit)
            for seed in range(args.seeds)
            for h in households(tw, performers, seed)
        ]
        row = {"households of 3, per-class 1": round(100 * float(np.diff(np.mean(h3, 0))[0]), 1)}
        for name, r in (("taiwanese", tw), ("realval", rv)):
            nat = [natural(r.probabilities, r.labels, 10, seed, fit) for seed in range(args.seeds)]
            row[f"{name}, natural 10"] = round(100 * float(np.diff(np.mean(nat, 0))[0]), 1)
        out[form] = row
    for name, settings in DEVICE.items():
        fit = lambda c, s=settings: learn(c, (), s).adjustment  # noqa: E731
        h3 = [
            per_class_one(tw.probabilities[h], tw.labels[h], seed, fit)
            for seed in range(args.seeds)
            for h in households(tw, performers, seed)
        ]
        row = {"households of 3, per-class 1": round(100 * float(np.diff(np.mean(h3, 0))[0]), 1)}
        for label, r in (("taiwanese", tw), ("realval", rv)):
            row[f"{label}, natural 10"] = simulate(r, 10, None, args.seeds, settings)["gain_points"]
        out[name] = row
    # How much one household's own photos can teach at most: every photo but one given as a correction, in turn
    for name in ("biases + local pulls", "device"):
        loo = []
        for h in households(tw, performers, 0):
            p, y = tw.probabilities[h], tw.labels[h]
            for i in range(len(y)):
                keep = np.arange(len(y)) != i
                corr = [(p[j], int(y[j])) for j in np.flatnonzero(keep)]
                adj = fit_form(name, corr) if name in FORMS else learn(corr, (), LearnerSettings()).adjustment
                loo.append((p[i].argmax() == y[i], adj.apply_many(p[i : i + 1]).argmax(1)[0] == y[i]))
        out[name]["households of 3, all others corrected"] = round(100 * float(np.diff(np.mean(loo, 0))[0]), 1)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        cols = list(dict.fromkeys(c for row in out.values() for c in row))
        print(f"{'form':38s}" + "".join(f"{c:>32s}" for c in cols))
        for name, row in out.items():
            print(f"{name:38s}" + "".join(f"{row.get(c, float('nan')):>+32.1f}" for c in cols))
    return out


if __name__ == "__main__":
    main()
