"""The household learner: the fit, its bounds and guard, undo and forget, the model-version reset, a restart, what
the database holds, the pipeline applying it, and `moodbox learn --simulate` on a small folder of real photos."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from device.events import EMOTIONS, Face, FaceEmotion, MoodChange, Reading
from device.learning import MAX_SHIFT, NO_ADJUSTMENT, Adjustment, LearnerSettings, learn
from device.learning._adjustment import BIAS_LIMIT, log_probabilities
from device.learning._household import CorrectionError, Household
from device.store import Store
from tests.conftest import DATA, REPO

ANGRY, DISGUST, FEAR, HAPPY, SAD, SURPRISE, NEUTRAL = range(7)


def reading(**shares: float) -> np.ndarray:
    """Seven probabilities: the named moods' shares, the rest spread evenly."""
    p = np.zeros(7)
    for mood, share in shares.items():
        p[EMOTIONS.index(mood)] = share
    rest = 1 - p.sum()
    p[p == 0] = rest / (7 - len(shares))
    return p


def jitter(p: np.ndarray, rng: np.random.Generator, k: float = 0.15) -> np.ndarray:
    q = np.exp(np.log(p) + rng.normal(0, k, 7))
    return q / q.sum()


# A household whose disgust reads as sad with some disgust in it, and whose real sadness reads as plain sad.
DISGUST_AS_SAD = reading(sad=0.62, disgust=0.22, angry=0.08)
REAL_SAD = reading(sad=0.9, neutral=0.05)


def everyday(rng: np.random.Generator, n: int = 120) -> np.ndarray:
    """The room's uncorrected readings: mostly happy, neutral and real sadness."""
    kinds = [reading(happy=0.9), reading(neutral=0.8, sad=0.1), REAL_SAD]
    return np.array([jitter(kinds[i % 3], rng) for i in range(n)])


def test_nothing_learned_reads_as_the_model_reads():
    p = reading(sad=0.5, disgust=0.3)
    assert not NO_ADJUSTMENT.active
    assert NO_ADJUSTMENT.apply(p) == tuple(p)  # exactly, not through a log and back
    learned = learn([])
    assert not learned.used and learned.adjustment is NO_ADJUSTMENT


def test_consistent_corrections_teach_and_stay_local():
    rng = np.random.default_rng(1)
    corrections = [(jitter(DISGUST_AS_SAD, rng), DISGUST) for _ in range(4)]
    learned = learn(corrections, everyday(rng))
    assert learned.used, learned.reason
    assert learned.held_out_right == 4 and learned.held_out_factory == 0  # each read right by the other three
    adjust = learned.adjustment
    # a new face read like the corrected ones now reads disgust ...
    assert np.argmax(adjust.apply(jitter(DISGUST_AS_SAD, rng))) == DISGUST
    # ... real sadness, a smile and a calm face still read as before
    for p, mood in ((REAL_SAD, SAD), (reading(happy=0.9), HAPPY), (reading(neutral=0.8, sad=0.1), NEUTRAL)):
        assert np.argmax(adjust.apply(p)) == mood
    # regularised towards no change: without the anchor of the room's readings the biases move further
    free = learn(corrections, (), LearnerSettings(uncorrected="ignore"))
    assert adjust.size() < free.adjustment.size()


def test_bounds_no_mood_becomes_impossible_or_certain():
    rng = np.random.default_rng(2)
    # thirty corrections all saying "angry", of every kind of face: the most one-sided household there can be
    corrections = [(jitter(reading(**{m: 0.8}), rng), ANGRY) for m in EMOTIONS if m != "angry" for _ in range(5)]
    learned = learn(corrections, ())
    b = learned.candidate.bias
    assert np.all(np.abs(b) <= 2 * BIAS_LIMIT + 1e-9) and np.all(np.abs(b - b.mean()) <= 2 * BIAS_LIMIT)
    z = log_probabilities(np.array([reading(happy=0.98), reading(surprise=0.97), reading(angry=0.01, sad=0.95)]))
    shift = learned.candidate.shift(z)
    assert np.all(np.abs(shift) <= MAX_SHIFT + 1e-9)
    # the odds of one mood against another move by at most e^(2 MAX_SHIFT): a clear smile still reads happy, and
    # angry is never certain for it
    out = learned.candidate.apply_many(np.exp(z))
    assert np.argmax(out[0]) == HAPPY and out[0][ANGRY] < 0.5
    assert np.all(out > 0) and np.all(out < 1)


def test_the_guard_keeps_the_household_from_teaching_it_worse():
    rng = np.random.default_rng(3)
    room = everyday(rng)
    one = learn([(DISGUST_AS_SAD, DISGUST)], room)
    assert one.used and "one correction" in one.reason  # nothing to hold it against yet: used as it is
    # Corrections that disagree: one kind of reading said to be disgust three times and, once the adjustment read
    # it so, put back to sad three times (the model had read those right). Leaving each out, the others read
    # fewer right than the model alone: the model reads as it came.
    mixed = [(jitter(DISGUST_AS_SAD, rng, 0.05), m) for m in (DISGUST, SAD) for _ in range(3)]
    refused = learn(mixed, room)
    assert refused.held_out_right < refused.held_out_factory, refused
    assert not refused.used and refused.adjustment is NO_ADJUSTMENT
    assert "fewer than the model alone" in refused.reason and "disagree" in refused.reason
    assert refused.candidate.active  # what the corrections would give is kept for the page to describe
    # A household "teaching" that clear smiles are angry, consistently: the bound keeps a clear smile happy even
    # for the fit with all three, so nothing is read angry that the model read happy
    smiles = learn([(jitter(reading(happy=0.95), rng), ANGRY) for _ in range(3)], room)
    assert np.argmax(smiles.candidate.apply(reading(happy=0.95))) == HAPPY
    assert np.argmax(smiles.adjustment.apply(reading(happy=0.95))) == HAPPY


def test_the_fit_takes_milliseconds():
    import time

    rng = np.random.default_rng(4)
    corrections = [(jitter(DISGUST_AS_SAD, rng), DISGUST) for _ in range(20)]
    room = everyday(rng, 500)
    t0 = time.perf_counter()
    learn(corrections, room)  # the fit and the guard's 20 refits, with the most everyday readings kept
    assert time.perf_counter() - t0 < 2.0  # about 0.1 s here; benchmarks/learner.py measures it


# -- the learner on the box: the store, undo, forget, the model version, a restart ----------------------------------
class Feed:
    """Hands readings to a Household as the pipeline would, on a fake clock."""

    def __init__(self, household: Household, clock: list[float]) -> None:
        self.household, self.clock = household, clock

    def faces(self, p: np.ndarray, seconds: float = 3.0, fps: float = 5.0) -> None:
        for _ in range(int(seconds * fps)):
            self.clock[0] += 1 / fps
            face = FaceEmotion(Face(200, 100, 160, 160, 0.9, ((250, 150), (310, 150))), tuple(p))
            self.household.recent.heard(Reading(self.clock[0], (face,), (640, 480)))


def box(tmp_path, model: str = "model-a", store: Store | None = None):
    applied: list[Adjustment] = []
    clock = [1000.0]
    store = store or Store(tmp_path / "moodbox.db")
    h = Household(store, model, applied.append, clock=lambda: clock[0], wall=lambda: 1.7e9 + clock[0])
    h.start()
    return h, Feed(h, clock), applied, store


def teach(h: Household, feed: Feed, n: int = 3, seed: int = 5) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(40):  # the room's everyday readings first: moods settling, some faces in between
        feed.faces(everyday(rng, 1)[0], seconds=1)
        h.on_mood(MoodChange("happy", None, 0.9, feed.clock[0], 0.0))
    for _ in range(n):
        feed.faces(jitter(DISGUST_AS_SAD, rng))
        h.correct("sad", "disgust")


def test_a_correction_records_numbers_and_teaches_the_pipeline(tmp_path):
    h, feed, applied, _store = box(tmp_path)
    assert applied == [NO_ADJUSTMENT]
    with pytest.raises(CorrectionError, match="not read a face in the last minute"):
        h.correct("sad", "disgust")
    feed.faces(DISGUST_AS_SAD)
    with pytest.raises(CorrectionError, match="already"):
        h.correct("sad", "sad")
    with pytest.raises(CorrectionError, match="nobody is in view"):
        h.correct("nobody", "sad")
    feed.clock[0] += 61  # the faces left a minute ago: nothing to learn from
    with pytest.raises(CorrectionError, match="last minute"):
        h.correct("sad", "disgust")
    teach(h, feed)
    assert h.learned.used and applied[-1] is h.learned.adjustment
    state = h.state()
    assert state["corrections"] == 3 and state["used"]
    assert state["summary"].startswith("Learned from 3 corrections:")
    assert state["recent"][0]["shown"] == "sad" and state["recent"][0]["mood"] == "disgust"
    assert state["size"]["largest_bias"] > 0 and state["size"]["everyday_readings"] == 40


def test_undo_forget_and_a_restart_keep_what_they_should(tmp_path):
    h, feed, _applied, store = box(tmp_path)
    teach(h, feed, n=3)
    learned = h.learned.adjustment
    store.close()
    # a restart: the same database, a new learner: the same adjustment, to the last bit
    h2, _feed2, applied2, store2 = box(tmp_path)
    assert applied2[-1].active
    np.testing.assert_array_equal(applied2[-1].bias, learned.bias)
    np.testing.assert_array_equal(applied2[-1].examples, learned.examples)
    undone = h2.undo()
    assert undone["mood"] == "disgust" and h2.state()["corrections"] == 2
    assert h2.forget() == 2
    assert h2.state()["corrections"] == 0 and applied2[-1] is NO_ADJUSTMENT
    assert store2.room_readings("model-a", 500) == []  # forgetting everything forgets the everyday readings too
    assert h2.undo() is None


def test_a_new_model_starts_from_no_adjustment_and_says_so(tmp_path):
    h, feed, _applied, store = box(tmp_path, "model-a")
    teach(h, feed)
    assert h.learned.used
    h2, _, applied2, _ = box(tmp_path, "model-b", store)
    assert applied2[-1] is NO_ADJUSTMENT
    state = h2.state()
    assert state["corrections"] == 0 and not state["used"]
    assert state["older_model"] == {"corrections": 3, "versions": ["model-a"]}
    assert h2.undo() is None  # undo acts on this model's corrections only
    assert h2.forget() == 3 and h2.state()["older_model"] is None


def test_deleting_the_history_deletes_the_everyday_readings_not_the_corrections(tmp_path):
    h, feed, _, store = box(tmp_path)
    teach(h, feed)
    store.delete_history()
    assert store.room_readings("model-a", 500) == [] and len(store.corrections("model-a")) == 3


def assert_learner_keeps_numbers_only(db_path) -> int:
    """The learner's tables hold moods, times and short lists of numbers: no image, crop, box, landmark or feature
    vector. Returns how many face readings the corrections hold."""
    db = sqlite3.connect(db_path)
    try:
        for table, allowed in (
            ("corrections", {"id", "at", "model", "shown", "mood", "readings"}),
            ("room_readings", {"id", "at", "model", "shown", "probabilities"}),
        ):
            columns = {row[1]: row[2] for row in db.execute(f"PRAGMA table_info({table})")}
            assert set(columns) == allowed, columns
            assert "BLOB" not in columns.values()
            blobs = " OR ".join(f"typeof({c}) = 'blob'" for c in columns)
            assert db.execute(f"SELECT count(*) FROM {table} WHERE {blobs}").fetchone()[0] == 0
        n, size = 0, 0
        for shown, mood, readings in db.execute("SELECT shown, mood, readings FROM corrections"):
            assert shown in EMOTIONS and mood in EMOTIONS
            faces = json.loads(readings)
            assert 1 <= len(faces) <= 60
            for face in faces:
                assert set(face) == {"p", "size", "score", "age"}  # no box, no landmark, no crop
                assert len(face["p"]) == 7 and all(isinstance(v, float | int) for v in face["p"])
                assert all(isinstance(face[k], float | int) for k in ("size", "score", "age"))
            n += len(faces)
            size += len(readings)
        for (p,) in db.execute("SELECT probabilities FROM room_readings"):
            assert len(json.loads(p)) == 7
        # at most 10 numbers a face reading: no field anywhere could hold even a 4x4 crop
        assert n == 0 or size / n < 120, size / n
        return n
    finally:
        db.close()


def test_nothing_image_like_is_stored(tmp_path):
    """Inspect the database itself after four corrections and forty everyday readings."""
    h, feed, _, store = box(tmp_path)
    teach(h, feed, n=4)
    store.close()
    assert assert_learner_keeps_numbers_only(tmp_path / "moodbox.db") == 4 * 50  # 10 s of faces at 5 a second


def test_the_pipeline_applies_it_before_the_mood_engine(justin_grey, detector, classifier):
    from device.mood import MoodEngine, MoodSettings
    from device.pipeline import Pipeline

    engine = MoodEngine(MoodSettings(dwell_seconds=0, window_seconds=0.5))
    heard: list[Reading] = []
    pipeline = Pipeline(detector, classifier, engine)
    pipeline.heard = heard.append
    from device.events import Frame

    reading, _ = pipeline.process(Frame(justin_grey, 0.0, 0))
    assert reading.faces[0].emotion == "happy" and reading.faces[0].model == ()
    # an adjustment that reads this household's smiles as surprise (a strong bias, for the test)
    pipeline.adjustment = Adjustment(bias=np.array([0, 0, 0, -2.5, 0, 2.5, 0.0]))
    reading, _change = pipeline.process(Frame(justin_grey, 0.6, 1))
    face = reading.faces[0]
    assert face.model_probabilities[HAPPY] > 0.6  # the model's own reading is kept beside ...
    assert face.probabilities[SURPRISE] > face.model_probabilities[SURPRISE]  # ... the adjusted one
    assert heard[-1].faces[0] is face  # what the engine heard: the adjusted reading, with the model's
    # the engine's 0.5 s window holds this frame only: its average is the adjusted reading, not the model's
    np.testing.assert_allclose(engine.average, face.probabilities, rtol=1e-6)


@pytest.mark.slow
def test_learn_simulate_on_a_small_folder(tmp_path):
    """`moodbox learn --simulate` on 3 real photos of each mood (symlinks into ../shared), with a README, an
    unknown folder and a stray file that must be ignored."""
    source = DATA / "households" / "taiwanese"
    folder = tmp_path / "household"
    for mood in EMOTIONS:
        (folder / mood).mkdir(parents=True)
        for photo in sorted((source / mood).iterdir())[:3]:
            (folder / mood / photo.name).symlink_to(photo)
    (folder / "README.txt").write_text("not a photo")
    (folder / "contempt").mkdir()
    (folder / "contempt" / "x.jpg").symlink_to(sorted((source / "happy").iterdir())[5])
    (folder / "happy" / "notes.txt").write_text("not a photo either")

    def run(*args: str) -> dict:
        r = subprocess.run(
            [sys.executable, "-m", "device", "learn", "--simulate", str(folder), "--seeds", "3", "--json", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    natural = run("--corrections", "3")
    assert natural["photos"] == 21 and natural["protocol"] == "natural" and natural["seeds"] == 3
    assert 0 < natural["corrections"] <= 3
    for key in ("before", "after", "after_sd", "per_class_before", "per_class_after"):
        assert key in natural
    assert set(natural["per_class_before"]) == set(EMOTIONS)
    balanced = run("--per-class", "1")
    assert balanced["protocol"] == "per-class 1" and balanced["corrections"] == 7
    bad = subprocess.run(
        [sys.executable, "-m", "device", "learn", "--simulate", str(tmp_path / "nowhere")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1 and "is not a folder" in bad.stderr
