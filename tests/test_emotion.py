"""The emotion classifier: quantisation handling, metadata checks, refusal of wrong or corrupt models."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest

from device.emotion import EmotionClassifier, Framing
from device.events import EMOTIONS, Face
from device.litert import ModelError, load_interpreter

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _tiny_int8_model(tmp_path_factory, input_offset: float) -> tuple[object, bytes]:
    """A real (small) Keras model quantised to int8 by the TFLite converter, with a chosen input range, so its
    input scale/zero point differ from the shipped model's."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(1)
    inputs = keras.Input((48, 48, 1))
    x = keras.layers.Rescaling(1 / 64.0, offset=-2.0)(inputs)
    x = keras.layers.Conv2D(4, 5, strides=4, activation="relu")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(7)(x)
    model = keras.Model(inputs, keras.layers.Softmax()(x))
    rng = np.random.default_rng(0)
    rep = [rng.uniform(input_offset, input_offset + 255, (1, 48, 48, 1)).astype(np.float32) for _ in range(50)]
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([r] for r in rep)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return model, conv.convert()


def _write_with_metadata(path, model_bytes: bytes) -> None:
    it = load_interpreter_bytes(model_bytes)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]

    def q(d):
        return {
            "dtype": np.dtype(d["dtype"]).name,
            "scale": float(d["quantization"][0]),
            "zero_point": int(d["quantization"][1]),
        }

    path.write_bytes(model_bytes)
    meta = {
        "format": "moodbox-emotion/1",
        "version": "test",
        "labels": list(EMOTIONS),
        "input": {"size": [48, 48], "quantization": q(inp)},
        "output": {"quantization": q(out)},
        "crop": {"margin": 1.0, "shift_x": 0, "shift_y": 0, "align_eyes": False},
        "sha256": hashlib.sha256(model_bytes).hexdigest(),
    }
    path.with_suffix(".json").write_text(json.dumps(meta))


def load_interpreter_bytes(data: bytes):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=data)
    it.allocate_tensors()
    return it


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(keras model, path) for an int8 model whose input is quantised with scale != 1, zero point != -128."""
    model, data = _tiny_int8_model(tmp_path_factory, input_offset=-40.0)
    path = tmp_path_factory.mktemp("tiny") / "tiny.tflite"
    _write_with_metadata(path, data)
    return model, path


def test_shipped_model_matches_its_metadata(classifier):
    meta = classifier.meta
    assert meta["labels"] == list(EMOTIONS)
    assert meta["input"]["size"] == [48, 48]
    assert meta["input"]["quantization"]["dtype"] == "int8"
    assert classifier.path.stat().st_size == meta["size_bytes"] <= 16 * 1024 * 1024
    assert 1.0 <= classifier.framing.margin <= 1.5


def test_quantised_input_and_output_are_handled(tiny):
    """Probabilities from the int8 model agree with the float Keras model it came from, for a model whose
    input quantisation is not the identity: the classifier must apply scale and zero point both ways."""
    model, path = tiny
    clf = EmotionClassifier(path, threads=1)
    q = clf.meta["input"]["quantization"]
    assert q["scale"] != 1.0 and q["zero_point"] != -128
    rng = np.random.default_rng(3)
    gaps = []
    for _ in range(20):
        crop = rng.integers(0, 256, (48, 48), dtype=np.uint8)
        p_int8 = clf.probabilities(crop)
        p_float = model.predict(crop[None, :, :, None].astype(np.float32), verbose=0)[0]
        assert p_int8.shape == (7,) and p_int8.sum() == pytest.approx(1, abs=1e-6)
        gaps.append(np.abs(p_int8 - p_float).max())
    assert np.median(gaps) < 0.03, gaps


def test_ignoring_the_zero_point_would_be_caught(tiny):
    """The same check fails if the input is fed without quantising: the test can fail."""
    model, path = tiny
    clf = EmotionClassifier(path, threads=1)
    crop = np.random.default_rng(4).integers(0, 256, (48, 48), dtype=np.uint8)
    clf._in_q = type(clf._in_q)("int8", 1.0, -128)  # pretend the input were raw pixels - 128
    wrong = clf.probabilities(crop)
    right = model.predict(crop[None, :, :, None].astype(np.float32), verbose=0)[0]
    assert np.abs(wrong - right).max() > 0.03


def test_shipped_model_reads_a_real_face(classifier, detector, justin_grey):
    import cv2

    small = cv2.resize(justin_grey, (320, 322))
    face = detector.detect(small)[0].scaled(justin_grey.shape[1] / 320)
    p = classifier.classify(justin_grey, face)
    assert p.shape == (7,) and p.sum() == pytest.approx(1, abs=1e-6) and (p >= 0).all()
    # justin.jpg smiles: the shipped model reads happy, and surely (0.71 today; neutral is next at 0.28).
    assert EMOTIONS[int(p.argmax())] == "happy" and p[EMOTIONS.index("happy")] > 0.6, dict(zip(EMOTIONS, p))


def test_crop_follows_the_framing(classifier):
    grey = np.zeros((200, 200), np.uint8)
    grey[50:150, 50:150] = 255  # a bright square "face" box
    face = Face(50, 50, 100, 100, 0.9)
    crop = classifier.crop(grey, face)
    assert crop.shape == (48, 48)
    clf_tight = object.__new__(EmotionClassifier)
    clf_tight.framing, clf_tight.size = Framing(margin=1.0, align_eyes=False), (48, 48)
    assert clf_tight.crop(grey, face).mean() > 240  # margin 1.0: all box
    clf_wide = object.__new__(EmotionClassifier)
    clf_wide.framing, clf_wide.size = Framing(margin=2.0, align_eyes=False), (48, 48)
    assert 50 < clf_wide.crop(grey, face).mean() < 80  # margin 2.0: a quarter of the area is box


def test_crop_levels_tilted_eyes(classifier):
    grey = np.zeros((200, 200), np.uint8)
    face = Face(50, 50, 100, 100, 0.9, keypoints=((80, 90), (120, 110)))  # eyes tilted by ~26.6 degrees
    grey[95:105, :] = 255  # a horizontal line through the face centre
    clf = object.__new__(EmotionClassifier)
    clf.framing, clf.size = Framing(margin=1.0, align_eyes=True), (48, 48)
    crop = clf.crop(grey, face)
    ys, xs = np.nonzero(crop > 128)
    slope = np.polyfit(xs, ys, 1)[0]
    assert slope == pytest.approx(-np.tan(np.radians(26.57)), abs=0.1)  # rotated with the eyes


def copy_model(classifier, tmp_path):
    dst = tmp_path / "m.tflite"
    shutil.copy(classifier.path, dst)
    shutil.copy(classifier.path.with_suffix(".json"), dst.with_suffix(".json"))
    return dst


def test_truncated_model_is_refused_with_the_fix(classifier, tmp_path):
    path = copy_model(classifier, tmp_path)
    path.write_bytes(path.read_bytes()[:100_000])
    with pytest.raises(ModelError, match=r"does not match its metadata .* restore both from git"):
        EmotionClassifier(path)


def test_garbage_file_is_not_a_tflite_model(tmp_path):
    path = tmp_path / "x.tflite"
    path.write_bytes(b"<html>404 Not Found</html>" * 10)
    with pytest.raises(ModelError, match="not a TFLite model"):
        load_interpreter(path)


def test_missing_metadata_is_refused(classifier, tmp_path):
    path = copy_model(classifier, tmp_path)
    path.with_suffix(".json").unlink()
    with pytest.raises(ModelError, match=r"metadata file .* is missing"):
        EmotionClassifier(path)


def test_metadata_of_another_model_is_refused(classifier, tiny, tmp_path):
    _, tiny_path = tiny
    path = copy_model(classifier, tmp_path)
    meta = json.loads(path.with_suffix(".json").read_text())
    tiny_meta = json.loads(tiny_path.with_suffix(".json").read_text())
    meta["input"]["quantization"] = tiny_meta["input"]["quantization"]
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match=r"input tensor .* disagrees with the metadata"):
        EmotionClassifier(path)


def test_wrong_labels_are_refused(classifier, tmp_path):
    path = copy_model(classifier, tmp_path)
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["labels"] = ["happy", "sad"]
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="lists labels"):
        EmotionClassifier(path)


def test_corrupt_model_stops_the_cli_with_exit_78(classifier, tmp_path, media):
    import subprocess
    import sys

    from tests.conftest import REPO, isolated_env

    path = copy_model(classifier, tmp_path)
    path.write_bytes(b"\0" * 64)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[emotion]\nmodel = "{path}"\n')
    r = subprocess.run(
        [sys.executable, "-m", "device", "--config", str(cfg), "classify", str(media / "justin.jpg")],
        cwd=REPO,
        env=isolated_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 78 and "does not match its metadata" in r.stderr and "Traceback" not in r.stderr


def test_mirror_averaging_runs_the_model_on_both_sides(justin_grey, detector):
    import cv2

    from device.emotion import EmotionClassifier

    plain, mirrored = EmotionClassifier(), EmotionClassifier(mirror=True)
    face = detector.detect(cv2.resize(justin_grey, (320, 322)))[0].scaled(justin_grey.shape[1] / 320)
    crop = plain.crop(justin_grey, face)
    expected = (plain.probabilities(crop) + plain.probabilities(np.ascontiguousarray(crop[:, ::-1]))) / 2
    assert np.allclose(mirrored.classify(justin_grey, face), expected)
    assert not np.allclose(plain.classify(justin_grey, face), expected)
