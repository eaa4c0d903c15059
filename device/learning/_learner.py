"""The household learner: corrections in, a guarded adjustment of the model's output out.

- **Corrections** are readings the household said were wrong, each with the mood it really was. A correction's
  reading is the average of the model's probabilities over the faces and frames of its last few seconds,
  weighted as the mood engine weights them.
- **Uncorrected readings** (`references`: what the box read in this room, and nobody corrected) are not taken as
  confirmations of what was shown: measured on the photo sets, that taught the learner its own mistakes once the
  household stopped correcting. They anchor the fit instead: the biases are fitted so that, together, they count
  as `anchor` readings that should read as the model read them (soft targets), so a bias that the corrections
  alone would pull far, but that would change many of this room's everyday readings, is pulled back.
- **The fit**: seven mood biases by Newton's method on the corrections' cross-entropy, the anchor, and an L2
  penalty `strength` towards no change; each bias within +-BIAS_LIMIT. Then each correction pulls readings near
  it towards its mood (see `_adjustment`).
- **The guard**: each correction in turn is left out, the rest fitted, and the left-out one read. The adjustment
  is applied only when the held-out corrections read right are at least as many as the model alone reads right.
  A correction of a reading the model got right (the household putting back what an adjustment broke) is what it
  guards: if the adjustment fitted without it still reads it wrong, and that costs more than the others gain,
  the model reads as it came, and `reason` says why. (Also asking for at least one held-out correction read right
  lost accuracy on the photo sets: README, "Teach it your household".)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from device.events import EMOTIONS
from device.learning._adjustment import (
    BIAS_LIMIT,
    MAX_SHIFT,
    NO_ADJUSTMENT,
    Adjustment,
    log_probabilities,
    softmax,
)

K = len(EMOTIONS)
GUARD_REFERENCES = 100
GUARD_CORRECTIONS = 30


@dataclass(frozen=True)
class LearnerSettings:
    strength: float = 0.1  # L2 penalty on the biases, towards no change
    anchor: float = 30.0  # how many readings the uncorrected ones count as, together
    width: float = 1.0  # how near (in log-probabilities) a reading must be to a correction to be pulled
    pull: float = 2.0  # how far a correction pulls a reading just like it
    references: int = 500  # the newest uncorrected readings kept
    uncorrected: str = "anchor"  # or "confirm" (count as confirmations of what was shown) or "ignore"
    confirm_weight: float = 0.2  # a confirmation's weight, against a correction's 1 (uncorrected = "confirm")
    temper: bool = True  # a correction pulls less where many uncorrected readings are like it
    max_shift: float = MAX_SHIFT
    guard: bool = True  # off only to measure what the guard is worth (benchmarks/learner_forms.py)
    at_least: int = 0  # the guard also wants this many held-out corrections read right (measured: 0 is better)


@dataclass(frozen=True)
class Learned:
    adjustment: Adjustment  # what the pipeline applies: NO_ADJUSTMENT unless the guard passed
    candidate: Adjustment  # what the corrections would give, guard or not
    used: bool
    corrections: int
    held_out_right: int  # held-out corrections the adjustment read right
    held_out_factory: int  # ... and that the model alone read right
    reason: str  # in words, for the page: why it is used or not


NOTHING_LEARNED = Learned(NO_ADJUSTMENT, NO_ADJUSTMENT, False, 0, 0, 0, "no corrections yet")


def fit_bias(
    z: np.ndarray,
    moods: np.ndarray,
    weights: np.ndarray,
    references: np.ndarray,
    settings: LearnerSettings,
    start: np.ndarray | None = None,
) -> np.ndarray:
    """Seven mood biases (centred) for corrected readings z [n, 7] with their moods, and anchoring references;
    `start` is where Newton's method begins (the full fit's biases, for the guard's refits)."""
    onehot = np.eye(K)[moods]
    lam = settings.strength
    anchored = settings.uncorrected == "anchor" and len(references) > 0
    if anchored:
        targets = softmax(references)
        w_ref = settings.anchor / len(references)

    def objective(b: np.ndarray) -> float:
        q = softmax(z + b)
        f = -(weights * np.log(q[np.arange(len(moods)), moods] + 1e-12)).sum() + lam * b @ b
        if anchored:
            f -= w_ref * (targets * np.log(softmax(references + b) + 1e-12)).sum()
        return float(f)

    b = np.zeros(K) if start is None else start.copy()
    f = objective(b)
    for _ in range(30):
        q = softmax(z + b)
        wq = weights[:, None] * q
        grad = (wq - weights[:, None] * onehot).sum(0) + 2 * lam * b
        hess = np.diag(wq.sum(0)) - wq.T @ q + (2 * lam + 1e-9) * np.eye(K)
        if anchored:
            r = softmax(references + b)
            grad += w_ref * (r - targets).sum(0)
            hess += w_ref * (np.diag(r.sum(0)) - r.T @ r)
        step = np.linalg.solve(hess, grad)
        t = 1.0
        while True:  # backtracking: Newton's step, halved until the objective does not rise
            nb = np.clip(b - t * step, -BIAS_LIMIT, BIAS_LIMIT)
            nf = objective(nb)
            if nf <= f or t < 1e-3:
                break
            t /= 2
        converged = f - nf < 1e-7
        if nf <= f:
            b, f = nb, nf
        if converged:
            break
    return np.clip(b - b.mean(), -BIAS_LIMIT, BIAS_LIMIT)  # centred, and still within the limit


def _adjustment(
    z: np.ndarray,
    moods: np.ndarray,
    weights: np.ndarray,
    refs: np.ndarray,
    s: LearnerSettings,
    start: np.ndarray | None = None,
) -> Adjustment:
    b = fit_bias(z, moods, weights, refs, s, start)
    corrected = weights >= 1.0  # confirmations (weight < 1) shape the biases only
    zc, mc = z[corrected], moods[corrected]
    pulls = s.pull * (np.eye(K)[mc] - softmax(zc + b))
    if s.temper and len(refs) and s.uncorrected == "anchor":
        # how many corrections to the same mood are near each one (itself included), against how many of the
        # room's uncorrected readings are, counted as the anchor counts them (`anchor` readings in all)
        near = np.exp(-((zc[:, None] - zc[None]) ** 2).sum(-1) / (2 * s.width**2)) * (mc[:, None] == mc[None])
        room = np.exp(-((zc[:, None] - refs[None]) ** 2).sum(-1) / (2 * s.width**2)).sum(1) * s.anchor / len(refs)
        agree = near.sum(1)
        pulls *= (agree / (agree + room))[:, None]
    return Adjustment(b, zc, pulls, s.width, s.max_shift)


def learn(
    corrections: list[tuple[np.ndarray, int]],
    references: list[np.ndarray] | np.ndarray = (),
    settings: LearnerSettings | None = None,
    shown: list[int] | None = None,
) -> Learned:
    """Fit and guard an adjustment from corrections [(factory probabilities, true mood index)] and the newest
    uncorrected readings (factory probabilities). `shown`, for `uncorrected = "confirm"` only, is the mood the box
    showed for each reference."""
    s = settings or LearnerSettings()
    if not corrections:
        return NOTHING_LEARNED
    z = log_probabilities(np.array([p for p, _ in corrections]))
    moods = np.array([m for _, m in corrections], np.int64)
    weights = np.ones(len(moods))
    refs = log_probabilities(np.asarray(references, np.float64).reshape(-1, K)[-s.references :])
    if s.uncorrected == "confirm" and len(refs):
        shown_moods = np.asarray(shown if shown is not None else refs.argmax(1), np.int64)[-len(refs) :]
        z = np.vstack([z, refs])
        moods = np.concatenate([moods, shown_moods])
        weights = np.concatenate([weights, np.full(len(refs), s.confirm_weight)])
        refs = refs[:0]
    candidate = _adjustment(z, moods, weights, refs, s)

    n = len(corrections)
    right = factory = 0
    # The guard's refits see at most GUARD_REFERENCES of the everyday readings, evenly spread (the anchor weighs
    # them as `anchor` readings whatever their number), and hold out at most the newest GUARD_CORRECTIONS.
    sample = refs[np.linspace(0, len(refs) - 1, GUARD_REFERENCES).astype(int)] if len(refs) > GUARD_REFERENCES else refs
    for i in range(max(0, n - GUARD_CORRECTIONS), n):  # leave each correction out in turn
        keep = np.arange(len(moods)) != i
        if keep[:n].any():
            held = _adjustment(z[keep], moods[keep], weights[keep], sample, s, candidate.bias)
            read = held.shift(z[i : i + 1])[0] + z[i]
        else:
            read = z[i]
        right += int(np.argmax(read) == moods[i])
        factory += int(np.argmax(z[i]) == moods[i])
    n = min(n, GUARD_CORRECTIONS)
    used = right >= max(factory, s.at_least) or not s.guard
    if used and n == 1:
        reason = "one correction, used as it is: from the second on, each is checked against the others"
    elif used:
        reason = (
            f"leaving each correction out in turn, the others read {right} of {n} right (the model alone {factory})"
        )
    elif right < factory:
        reason = (
            f"leaving each correction out in turn, the others read {right} of {n} right, fewer than the model alone "
            f"({factory}): some corrections disagree, so Moodbox reads as it came until they agree"
        )
    else:
        reason = (
            f"leaving each correction out in turn, the others read {right} of {n} right, no more than the model "
            f"alone ({factory}): more corrections of the same kind will let it learn"
        )
    return Learned(candidate if used else NO_ADJUSTMENT, candidate, used, n, right, factory, reason)
