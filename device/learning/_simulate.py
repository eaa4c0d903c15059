"""`moodbox learn --simulate FOLDER`: the household learner measured as a household would use it.

Each photo of FOLDER (`<mood>/<photo>`) is read once by the device's own pipeline (device/photos.py): the model's
seven probabilities for the largest face. Photos where no face is found are left out, as the box would hear
nothing. Then, with the same learner code the box runs (`learn`, and the adjustment the pipeline applies):

- **natural** (the default): each seed walks the photos in a random order. Each photo is read with the current
  adjustment; a wrong reading is corrected while corrections are left (`corrections`), and a photo that is not
  corrected is one of the room's everyday readings. The learner refits after every correction and after every 10
  everyday readings, as the box does. `after` is the accuracy with the final adjustment on every photo never
  corrected, and `before` the model's own accuracy on the same photos.
- **per-class K** (balanced): K random photos of each mood are given as corrections (right or wrong), and
  accuracy is measured on the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from device.events import EMOTIONS
from device.learning._learner import NOTHING_LEARNED, LearnerSettings, learn
from device.photos import labelled_photos, largest_face, photo_pipeline, read_grey, scores

REFIT_EVERY = 10  # everyday readings between refits (the box's rule too)


@dataclass(frozen=True)
class Readings:
    probabilities: np.ndarray  # [n, 7], the model's reading of each photo with a face
    labels: np.ndarray  # [n]
    files: tuple[str, ...]
    no_face: tuple[str, ...]  # photos where no face was found


def read_folder(folder: Path, model: Path | None = None, change=None) -> Readings:
    """Every photo's reading; `change(grey, rng)`, if given, first changes each photo (seeded per photo)."""
    pipeline = photo_pipeline(model)
    probs, labels, files, missed = [], [], [], []
    for i, photo in enumerate(labelled_photos(folder)):
        grey = read_grey(photo.path)
        if change is not None:
            grey = change(grey, np.random.default_rng(i))
        best = largest_face(pipeline, grey)
        name = str(photo.path.relative_to(folder))
        if best is None:
            missed.append(name)
            continue
        probs.append(best.model_probabilities)
        labels.append(photo.label)
        files.append(name)
    p = np.array(probs, np.float64).reshape(-1, len(EMOTIONS))
    return Readings(p, np.array(labels, np.int64), tuple(files), tuple(missed))


def _read(learned, p: np.ndarray) -> np.ndarray:
    return learned.adjustment.apply_many(p).argmax(1)


def walk(
    p: np.ndarray, labels: np.ndarray, corrections: int, seed: int, settings: LearnerSettings
) -> tuple[np.ndarray, np.ndarray, int]:
    """One natural walk: (the photos never corrected, their adjusted readings, corrections used)."""
    order = np.random.default_rng(seed).permutation(len(labels))
    learned = NOTHING_LEARNED
    corrected: list[tuple[np.ndarray, int]] = []
    everyday: list[np.ndarray] = []
    shown: list[int] = []
    was_corrected = np.zeros(len(labels), bool)
    since = 0
    for i in order:
        read = int(_read(learned, p[i : i + 1])[0])
        if read != labels[i] and len(corrected) < corrections:
            corrected.append((p[i], int(labels[i])))
            was_corrected[i] = True
            refit = True
        else:
            everyday.append(p[i])
            shown.append(read)
            since += 1
            refit = since >= REFIT_EVERY and bool(corrected)
        if refit:
            since = 0
            learned = learn(corrected, everyday, settings, shown)
    rest = np.flatnonzero(~was_corrected)
    return rest, _read(learned, p[rest]), len(corrected)


def balanced(
    p: np.ndarray, labels: np.ndarray, per_class: int, seed: int, settings: LearnerSettings
) -> tuple[np.ndarray, np.ndarray, int]:
    rng = np.random.default_rng(seed)
    given = []
    for mood in range(len(EMOTIONS)):
        idx = np.flatnonzero(labels == mood)
        given += list(rng.choice(idx, min(per_class, len(idx)), replace=False)) if len(idx) else []
    given_arr = np.array(sorted(given), np.int64)
    rest = np.setdiff1d(np.arange(len(labels)), given_arr)
    learned = learn([(p[i], int(labels[i])) for i in given_arr], (), settings)
    return rest, _read(learned, p[rest]), len(given_arr)


def simulate(
    readings: Readings,
    corrections: int = 10,
    per_class: int | None = None,
    seeds: int = 20,
    settings: LearnerSettings | None = None,
) -> dict:
    s = settings or LearnerSettings()
    p, labels = readings.probabilities, readings.labels
    before, after, used, pairs = [], [], [], []
    for seed in range(seeds):
        if per_class is None:
            rest, read, n = walk(p, labels, corrections, seed, s)
        else:
            rest, read, n = balanced(p, labels, per_class, seed, s)
        if not len(rest):
            continue
        factory = p[rest].argmax(1)
        before.append(float((factory == labels[rest]).mean()))
        after.append(float((read == labels[rest]).mean()))
        used.append(n)
        pairs.append((labels[rest], factory, read))
    if not before:
        raise ValueError("no photo was left to measure on: give more photos, or fewer corrections")
    y = np.concatenate([a for a, _, _ in pairs])
    recall_before = scores(y, np.concatenate([b for _, b, _ in pairs]))["recall"]
    recall_after = scores(y, np.concatenate([c for _, _, c in pairs]))["recall"]
    present = set(int(v) for v in y)
    return {
        "photos": len(labels) + len(readings.no_face),
        "faces_found": len(labels),
        "protocol": "natural" if per_class is None else f"per-class {per_class}",
        "corrections": round(float(np.mean(used)), 2),
        "seeds": len(before),
        "before": round(float(np.mean(before)), 4),
        "after": round(float(np.mean(after)), 4),
        "after_sd": round(float(np.std(after)), 4),
        "gain_points": round(100 * float(np.mean(after) - np.mean(before)), 2),
        "per_class_before": {m: round(recall_before[m], 4) for i, m in enumerate(EMOTIONS) if i in present},
        "per_class_after": {m: round(recall_after[m], 4) for i, m in enumerate(EMOTIONS) if i in present},
        "uncorrected": s.uncorrected,
    }
