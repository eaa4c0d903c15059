"""Pick the faces for the built-in demo feed and write device/assets/demo/{faces.png,script.json}.

Candidates are FER2013 Training faces whose label the FER+ crowd agrees with (at least 7 of 10 votes). Each is
rendered into the demo room and run through the device's own detector and classifier; the faces read most
surely as their label are kept. Re-run after shipping a new model.

    python -m models.demo_faces
"""

from __future__ import annotations

import argparse
import json

import cv2
import numpy as np

from device.camera._demo import ASSETS, DemoRoom, Scene
from device.emotion import EmotionClassifier
from device.faces import make_detector
from models.fer import CLASS_NAMES, data_dir

PER_CLASS = 2
EXPRESSIONS = ("happy", "surprise", "sad", "neutral", "angry")


def candidates(per_class: int = 60) -> dict[str, np.ndarray]:
    d = np.load(data_dir() / "fer2013.npz")
    votes = np.load(data_dir() / "ferplus_votes.npz")["votes"]
    plus_cols = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear"]
    plus_of = {"neutral": "neutral", "happy": "happiness", "surprise": "surprise", "sad": "sadness", "angry": "anger"}
    out = {}
    rng = np.random.default_rng(3)
    for name in EXPRESSIONS:
        label = CLASS_NAMES.index(name)
        agree = votes[:, plus_cols.index(plus_of[name])] >= 7
        ok = (d["usage"] == 0) & (d["labels"] == label) & agree & (d["exact"] == 1)
        ok &= d["images"].reshape(len(ok), -1).std(1) > 35
        idx = np.nonzero(ok)[0]
        out[name] = d["images"][rng.choice(idx, min(per_class, len(idx)), replace=False)]
    return out


def score(face: np.ndarray, label: str, detector, classifier) -> float:
    """Mean probability of `label` over a few demo frames showing this face alone; 0 if ever missed."""
    room = DemoRoom(face[None], [Scene(10, (0,), label)], seed=0)
    probs = []
    for t in (0.0, 2.3, 4.1, 6.7):
        grey = room.render(t)
        found = detector.detect(cv2.resize(grey, (320, 240), interpolation=cv2.INTER_AREA))
        if len(found) != 1:
            return 0.0
        probs.append(classifier.classify(grey, found[0].scaled(2.0))[CLASS_NAMES.index(label)])
    return float(np.mean(probs))


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    detector, classifier = make_detector("blazeface"), EmotionClassifier()
    chosen: dict[str, list[tuple[float, np.ndarray]]] = {}
    for name, faces in candidates().items():
        scored = sorted(((score(f, name, detector, classifier), f) for f in faces), key=lambda s: -s[0])
        chosen[name] = scored[:PER_CLASS]
        print(name, [round(s, 3) for s, _ in scored[:PER_CLASS]], "of", len(faces))
    strip, order = [], {}
    for name in EXPRESSIONS:
        order[name] = []
        for _, face in chosen[name]:
            order[name].append(len(strip))
            strip.append(face)
    cv2.imwrite(str(ASSETS / "faces.png"), np.hstack(strip))
    scenes = [{"seconds": 4, "faces": [], "expression": "nobody"}]
    scenes += [{"seconds": 10, "faces": [order[n][0]], "expression": n} for n in EXPRESSIONS]
    scenes.append({"seconds": 10, "faces": [order["happy"][0], order["happy"][1]], "expression": "happy"})
    script = {
        "note": "written by models/demo_faces.py",
        "model": classifier.version,
        "scores": {n: [round(s, 3) for s, _ in chosen[n]] for n in EXPRESSIONS},
        "scenes": scenes,
    }
    (ASSETS / "script.json").write_text(json.dumps(script, indent=2) + "\n")
    print(f"wrote {ASSETS / 'faces.png'} and script.json")


if __name__ == "__main__":
    main()
