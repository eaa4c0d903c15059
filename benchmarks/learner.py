"""What the household learner costs: fitting (with its guard) and reading a frame with what was learned.

    .venv/bin/python benchmarks/learner.py [--repeats 7]

- **Fit**: `learn()` with N corrections (misreads of ../shared/data/households/taiwanese, the model's own readings,
  cached by one pass of the device's pipeline) and the most everyday readings the box keeps (500): the fit and the
  guard's refits, median of the repeats, for N = 1, 3, 10, 20, 50.
- **A face**: the adjustment applied to one face's reading, as the pipeline does for every face it reads, with
  nothing learned and with 20 and 50 corrections (microseconds, median).
- **A frame**: the device's pipeline on 300 frames of ../shared/media/phone_smile.mp4 (one face, 640x480), with and
  without an adjustment of 20 corrections, alternated in 5 rounds: each round's median milliseconds per frame.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from device.learning import NO_ADJUSTMENT, LearnerSettings, learn  # noqa: E402
from device.learning._simulate import read_folder  # noqa: E402

HOUSEHOLD = REPO.parent / "shared" / "data" / "households" / "taiwanese"
VIDEO = REPO.parent / "shared" / "media" / "phone_smile.mp4"


def median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def frames(n: int = 300) -> list[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(VIDEO))
    out = []
    while len(out) < n:
        ok, bgr = cap.read()
        if not ok:
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        out.append(cv2.cvtColor(cv2.resize(bgr, (640, 480)), cv2.COLOR_BGR2GRAY))
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args(argv)
    readings = read_folder(HOUSEHOLD)
    probs, labels = readings.probabilities, readings.labels
    wrong = np.flatnonzero(probs.argmax(1) != labels)
    rng = np.random.default_rng(0)
    everyday = probs[rng.choice(len(probs), 500)]
    settings = LearnerSettings()
    out: dict = {"host": f"{platform.processor() or platform.machine()}, Python {platform.python_version()}"}

    fit = {}
    learned = {}
    for n in (1, 3, 10, 20, 50):
        chosen = rng.choice(wrong, n, replace=n > len(wrong))
        corrections = [(probs[i], int(labels[i])) for i in chosen]
        fit[n] = round(median_ms(lambda c=corrections: learn(c, everyday, settings), args.repeats), 2)
        learned[n] = learn(corrections, everyday, settings).candidate
    out["fit_ms"] = fit

    face = probs[0]
    per_face = {}
    for name, adj in (("nothing learned", NO_ADJUSTMENT), ("20 corrections", learned[20]), ("50", learned[50])):
        reps = 2000
        t = time.perf_counter()
        for _ in range(reps):
            adj.apply(face)
        per_face[name] = round((time.perf_counter() - t) / reps * 1e6, 1)
    out["apply_us_per_face"] = per_face

    from device.events import Frame
    from device.photos import photo_pipeline

    pipeline = photo_pipeline()
    video = frames()
    rounds: dict[str, list[float]] = {"without": [], "with 20 corrections": []}
    for _ in range(5):
        for name, adj in (("without", NO_ADJUSTMENT), ("with 20 corrections", learned[20])):
            pipeline.adjustment = adj
            times = []
            for i, grey in enumerate(video):
                t = time.perf_counter()
                pipeline.process(Frame(grey, i / 30, i))
                times.append((time.perf_counter() - t) * 1000)
            rounds[name].append(round(statistics.median(times), 3))
    out["frame_ms_median_per_round"] = rounds  # alternated: the spread between rounds is the noise
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
