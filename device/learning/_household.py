"""The learner on the box: the household's corrections and the room's everyday readings, kept in the store, and
the guarded adjustment fitted from them and handed to the pipeline.

- A **correction** ("Moodbox read the room as sad; it was really angry") records the readings the mood was based
  on: each face's seven probabilities as the model gave them, with the face's size and the detector's score, over
  the last `CORRECTION_SECONDS`, plus the mood shown, the mood given and the time. Never a picture, a crop, a box
  position, a landmark or anything else that could picture or identify a face.
- An **everyday reading** is the average of the model's readings when a mood settles, and every
  `EVERYDAY_EVERY_SECONDS` while someone is in view: numbers only, the newest `LearnerSettings.references` kept,
  deleted with the history. They anchor the fit (see `_learner`).
- Both are tied to the model version. A new model starts from no adjustment, and `state()` says so; what was
  recorded for the old model is kept until the household forgets it, but never used.
- The fit takes a few milliseconds, so it is redone whenever a correction is made, undone or forgotten, and after
  every `REFIT_EVERY` everyday readings.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from device.events import EMOTIONS, MoodChange, mood_word
from device.learning._adjustment import BIAS_LIMIT, Adjustment
from device.learning._learner import NOTHING_LEARNED, Learned, LearnerSettings, learn
from device.learning._recent import RecentReadings, weighted_average
from device.store import Store

log = logging.getLogger(__name__)
CORRECTION_SECONDS = 10.0  # the readings a correction records: the last this many seconds with a face
SEEN_WITHIN_SECONDS = 60.0  # ... if a face was read at most this long ago
MAX_FACE_READINGS = 60  # per correction: spread evenly over those seconds
EVERYDAY_EVERY_SECONDS = 120.0
REFIT_EVERY = 10


class CorrectionError(ValueError):
    """A correction that cannot be used; the message says why, in the page's words."""


class Household:
    def __init__(
        self,
        store: Store,
        model_version: str,
        apply: Callable[[Adjustment], None],
        settings: LearnerSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.model, self._apply = store, model_version, apply
        self.settings = settings or LearnerSettings()
        self._clock, self._wall = clock, wall
        self.recent = RecentReadings(clock=clock)
        self.learned: Learned = NOTHING_LEARNED
        self._lock = threading.RLock()
        self._new_everyday = 0
        self._everyday_at = -EVERYDAY_EVERY_SECONDS
        self._listeners: list[Callable[[], None]] = []
        self.fit_ms = 0.0

    # -- what changes it -----------------------------------------------------------------------------------------
    def start(self) -> None:
        self.refit()

    def on_change(self, listener: Callable[[], None]) -> None:
        """Called after every refit (the page, Home Assistant)."""
        self._listeners.append(listener)

    def correct(self, shown: str, mood: str) -> dict[str, Any]:
        """The household says the room's mood `shown` was really `mood`. Raises CorrectionError with the reason."""
        if mood not in EMOTIONS:
            raise CorrectionError(f"'{mood}' is not a mood: pick one of {', '.join(EMOTIONS)}")
        if shown not in EMOTIONS:
            raise CorrectionError("Moodbox has not read a mood to correct: nobody is in view")
        if mood == shown:
            raise CorrectionError(f"Moodbox reads the room as {mood_word(shown)} already: pick the mood it really is")
        faces = self.recent.last(CORRECTION_SECONDS, SEEN_WITHIN_SECONDS)
        if not faces:
            raise CorrectionError(
                "Moodbox has not read a face in the last minute, so there is nothing to learn from: correct it "
                "while the faces are in view"
            )
        if len(faces) > MAX_FACE_READINGS:
            faces = [faces[int(i)] for i in np.linspace(0, len(faces) - 1, MAX_FACE_READINGS)]
        now = self._clock()
        records = [f.as_record(now) for f in faces]
        with self._lock:
            cid = self.store.add_correction(self._wall(), self.model, shown, mood, records)
            self.refit()
        log.info("correction: the room read %s was %s (%d face readings)", shown, mood, len(records))
        return {"id": cid, "faces": len(records), "used": self.learned.used, "reason": self.learned.reason}

    def undo(self) -> dict[str, Any] | None:
        """Forget the newest correction for this model; None when there is none."""
        with self._lock:
            gone = self.store.delete_last_correction(self.model)
            if gone is not None:
                self.refit()
        return gone

    def forget(self, everyday: bool = True) -> int:
        """Forget every correction (of every model) and, with `everyday`, the everyday readings; returns how many
        corrections were forgotten."""
        with self._lock:
            n = self.store.delete_corrections()
            if everyday:
                self.store.delete_room_readings()
            self.refit()
        return n

    def on_mood(self, change: MoodChange) -> None:
        """A mood settled: what the faces read then is one of the room's everyday readings."""
        if change.mood in EMOTIONS:
            self._everyday(change.mood)

    def due(self) -> bool:
        """Whether an everyday reading is due (cheap: called for every frame)."""
        return self._clock() - self._everyday_at >= EVERYDAY_EVERY_SECONDS

    def on_reading(self, _reading: Any = None, shown: str | None = None) -> None:
        """A frame while an everyday reading is due: take one if someone is in view."""
        if self.due():
            self._everyday(shown or "")

    def _everyday(self, shown: str) -> None:
        faces = self.recent.last(3.0, 5.0)
        average = weighted_average(faces)
        if average is None:
            return
        self._everyday_at = self._clock()
        try:
            self.store.add_room_reading(
                self._wall(), self.model, shown, [round(float(p), 4) for p in average], self.settings.references
            )
        except Exception:  # a full disk is reported by the store; the mood and the music carry on
            log.debug("an everyday reading was not saved", exc_info=True)
            return
        self._new_everyday += 1
        if self._new_everyday >= REFIT_EVERY:
            self.refit()

    def refit(self) -> Learned:
        with self._lock:
            self._new_everyday = 0
            corrections = [
                (weighted_average(c["readings"]), EMOTIONS.index(c["mood"]))
                for c in self.store.corrections(self.model)
                if c["readings"] and c["mood"] in EMOTIONS
            ]
            rows = self.store.room_readings(self.model, self.settings.references)
            everyday = np.array([r["probabilities"] for r in rows], np.float64).reshape(-1, len(EMOTIONS))
            shown = [EMOTIONS.index(r["shown"]) if r["shown"] in EMOTIONS else -1 for r in rows]
            t0 = time.perf_counter()
            learned = learn(corrections, everyday, self.settings, shown if -1 not in shown else None)
            self.fit_ms = (time.perf_counter() - t0) * 1000
            self.learned = learned
            self._apply(learned.adjustment)
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:
                log.exception("a listener of the learner failed")
        return learned

    # -- what the page, /healthz and Home Assistant show ---------------------------------------------------------
    def state(self, recent: int = 20) -> dict[str, Any]:
        with self._lock:
            learned = self.learned
            rows = self.store.corrections(None)
            everyday = self.store.room_readings(self.model, self.settings.references)
        mine = [r for r in rows if r["model"] == self.model]
        older = [r for r in rows if r["model"] != self.model]
        p = np.array([r["probabilities"] for r in everyday], np.float64).reshape(-1, len(EMOTIONS))
        shares = reading_shares(learned.candidate, p)
        return {
            "model": self.model,
            "corrections": len(mine),
            "used": learned.used,
            "reason": learned.reason,
            "summary": summary(learned, shares),
            "changes": shares,
            "size": {
                "largest_bias": round(learned.adjustment.size(), 3),
                "bias_limit": BIAS_LIMIT,
                "changed_share": changed_share(learned.adjustment, p),
                "everyday_readings": len(p),
            },
            "older_model": {"corrections": len(older), "versions": sorted({r["model"] for r in older})}
            if older
            else None,
            "recent": [
                {"id": r["id"], "at": r["at"], "shown": r["shown"], "mood": r["mood"], "faces": len(r["readings"])}
                for r in reversed(mine[-recent:])
            ],
        }


def reading_shares(adjustment: Adjustment, p: np.ndarray) -> dict[str, float]:
    """How the share of everyday readings read as each mood would change with this adjustment (moods that change)."""
    if not len(p) or not adjustment.active:
        return {}
    before = np.bincount(p.argmax(1), minlength=len(EMOTIONS)) / len(p)
    after = np.bincount(adjustment.apply_many(p).argmax(1), minlength=len(EMOTIONS)) / len(p)
    return {m: round(float(a - b), 3) for m, a, b in zip(EMOTIONS, after, before) if abs(a - b) >= 0.005}


def changed_share(adjustment: Adjustment, p: np.ndarray) -> float:
    """The share of everyday readings whose mood the adjustment changes."""
    if not len(p) or not adjustment.active:
        return 0.0
    return round(float((adjustment.apply_many(p).argmax(1) != p.argmax(1)).mean()), 3)


def summary(learned: Learned, shares: dict[str, float]) -> str:
    """In words, with the page's word for each mood: "Learned from 9 corrections: reads sad less readily, angry more
    readily"."""
    n = learned.corrections
    if not n:
        return "Nothing learned yet: when Moodbox reads the room wrong, tell it what the mood really was."
    of = f"{n} correction{'s' if n != 1 else ''}"
    if not learned.used:
        return f"Not using {of} yet: {learned.reason}."
    if shares:  # what changes in the room's everyday readings: the two largest changes each way
        ranked = sorted(shares.items(), key=lambda kv: -abs(kv[1]))
        less = [mood_word(m) for m, d in ranked if d < 0][:2]
        more = [mood_word(m) for m, d in ranked if d > 0][:2]
    else:  # no everyday readings yet: the biases that matter (half a unit of log-odds or more), two each way
        b = learned.adjustment.bias
        ranked = sorted(zip(EMOTIONS, b), key=lambda kv: -abs(kv[1]))
        less = [mood_word(m) for m, v in ranked if v <= -0.5][:2]
        more = [mood_word(m) for m, v in ranked if v >= 0.5][:2]
    parts = ([f"reads {', '.join(less)} less readily"] if less else []) + (
        [f"{', '.join(more)} more readily" if less else f"reads {', '.join(more)} more readily"] if more else []
    )
    return f"Learned from {of}: " + (", ".join(parts) if parts else "faces like the ones you corrected read your way")
