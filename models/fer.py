"""FER2013 and FER+ loading, shared by training, conversion and evaluation.

The data lives in ``../shared/data`` beside the checkout and is never committed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CLASS_NAMES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
SPLITS = {"Training": 0, "PublicTest": 1, "PrivateTest": 2}
# FER+ vote columns for each FER2013 class, in CLASS_NAMES order.
_FERPLUS_COLUMN = {
    "angry": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happiness",
    "sad": "sadness",
    "surprise": "surprise",
    "neutral": "neutral",
}
PIXEL_MEAN = 129.39
PIXEL_STD = 65.06


def data_dir() -> Path:
    """Where fer2013.npz lives: $MOODBOX_DATA, else ../shared/data next to the repository."""
    env = os.environ.get("MOODBOX_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data"


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # uint8 [N, 48, 48]
    labels: np.ndarray  # int64 [N]
    soft: np.ndarray  # float32 [N, 7]: FER+ vote distribution over the 7 FER classes, or uniform

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, n: int, seed: int = 0) -> Split:
        """A stratification-free fixed random subset of n rows."""
        idx = np.random.default_rng(seed).permutation(len(self))[:n]
        idx.sort()
        return Split(self.images[idx], self.labels[idx], self.soft[idx])


def _ferplus_soft(votes: np.ndarray, columns: list[str]) -> np.ndarray:
    cols = [columns.index(_FERPLUS_COLUMN[c]) for c in CLASS_NAMES]
    v = votes[:, cols].astype(np.float32)
    total = v.sum(axis=1, keepdims=True)
    uniform = np.full_like(v, 1.0 / len(CLASS_NAMES))
    return np.where(total > 0, v / np.maximum(total, 1), uniform)


def load_split(name: str, root: Path | None = None) -> Split:
    root = root or data_dir()
    path = root / "fer2013.npz"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: put FER2013 there or point $MOODBOX_DATA at its folder")
    d = np.load(path)
    mask = d["usage"] == SPLITS[name]
    soft = np.full((int(mask.sum()), len(CLASS_NAMES)), 1.0 / len(CLASS_NAMES), np.float32)
    votes_path = root / "ferplus_votes.npz"
    if votes_path.exists():
        v = np.load(votes_path)
        soft = _ferplus_soft(v["votes"][mask], [str(c) for c in v["columns"]])
    return Split(d["images"][mask], d["labels"][mask].astype(np.int64), soft)


def logit_adjustment(tau: float, root: Path | None = None) -> np.ndarray:
    """-tau * log(class prior of Training), to add to the logits: post-hoc logit adjustment (Menon et al., 2021).

    A model trained on FER2013's skewed classes (happy 25%, disgust 1.5%) leans to the common ones; subtracting
    tau times the log prior moves it toward a balanced decision. tau = 0 changes nothing, tau = 1 is the
    balanced-error optimum in theory.
    """
    root = root or data_dir()
    d = np.load(root / "fer2013.npz")
    labels = d["labels"][d["usage"] == SPLITS["Training"]]
    prior = np.bincount(labels, minlength=len(CLASS_NAMES)) / len(labels)
    return (-tau * np.log(prior)).astype(np.float32)
