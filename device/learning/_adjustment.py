"""A household's adjustment of the model's seven outputs: what the learner fits, and what the pipeline applies.

The model's probabilities p become log-probabilities z = log max(p, 1/512) (the int8 output has steps of 1/256),
and the adjusted reading is softmax(z + shift(z)), where the shift has two parts:

- **mood biases** b (seven numbers, each within +-`BIAS_LIMIT`): "read sad less readily, angry more readily", for
  every face;
- **the corrections themselves**: each corrected reading z_j, with the mood the household gave, pulls readings
  near it towards that mood: alpha * exp(-|z - z_j|^2 / (2 width^2)) * (onehot(mood_j) - softmax(z_j + b)). A
  correction pulls only as far as it was wrong, and only readings like it: a face read like the one the household
  corrected, in this room's light, by this camera.

The total shift of any mood is centred and held within +-`MAX_SHIFT`, so the odds of one mood against another move
by at most e^(2 MAX_SHIFT), about 55: no mood becomes impossible or certain, and a clear smile (happy 0.95) still
reads happy whatever was learned. With nothing learned,
`apply` returns the model's reading unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FLOOR = 1 / 512  # below the int8 output's smallest step (1/256)
BIAS_LIMIT = 2.5
MAX_SHIFT = 2.0


def log_probabilities(p: np.ndarray) -> np.ndarray:
    return np.log(np.clip(np.asarray(p, np.float64), FLOOR, 1.0))


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


@dataclass(frozen=True)
class Adjustment:
    bias: np.ndarray = field(default_factory=lambda: np.zeros(7))
    examples: np.ndarray = field(default_factory=lambda: np.zeros((0, 7)))  # corrected readings, log-probabilities
    pulls: np.ndarray = field(default_factory=lambda: np.zeros((0, 7)))  # alpha * (onehot - reading), per example
    width: float = 1.0
    limit: float = MAX_SHIFT  # each mood's shift, centred, stays within +-limit

    @property
    def active(self) -> bool:
        return bool(np.any(self.bias) or len(self.examples))

    def shift(self, z: np.ndarray) -> np.ndarray:
        """The shift of log-probabilities z ([n, 7]), centred and bounded."""
        s = np.broadcast_to(self.bias, z.shape).copy()
        if len(self.examples):
            d2 = ((z[:, None, :] - self.examples[None]) ** 2).sum(-1)
            s += np.exp(-d2 / (2 * self.width**2)) @ self.pulls
        s -= s.mean(-1, keepdims=True)
        return np.clip(s, -self.limit, self.limit)

    def apply_many(self, p: np.ndarray) -> np.ndarray:
        """Adjusted probabilities for readings p ([n, 7]); unchanged when nothing is learned."""
        p = np.asarray(p, np.float64)
        if not self.active:
            return p
        z = log_probabilities(p)
        return softmax(z + self.shift(z))

    def apply(self, p) -> tuple[float, ...]:
        """One face's adjusted reading (what the pipeline calls for every face: kept to a few numpy calls)."""
        if not self.active:
            return tuple(p)
        z = np.log(np.maximum(np.asarray(p, np.float64), FLOOR))
        s = self.bias
        if len(self.examples):
            d = z - self.examples
            s = s + np.exp(np.einsum("ij,ij->i", d, d) / (-2 * self.width**2)) @ self.pulls
        z += np.clip(s - s.mean(), -self.limit, self.limit)
        e = np.exp(z - z.max())
        return tuple((e / e.sum()).tolist())

    def size(self) -> float:
        """The largest bias, in log-odds (0 when nothing is learned; at most BIAS_LIMIT)."""
        return float(np.abs(self.bias).max()) if len(self.bias) else 0.0


NO_ADJUSTMENT = Adjustment()
