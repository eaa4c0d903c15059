"""Evaluate the emotion model and write models/MODEL_CARD.md from the measured numbers.

    python -m models.evaluate [--checkpoint CHECKPOINT] [--model models/emotion_vgg16_int8.tflite]

Prints float (PyTorch checkpoint) and int8 (the shipped TFLite file, run exactly as the device runs it) accuracy
on PublicTest and PrivateTest, per-class recall and macro-F1, the int8 latency on this machine, writes the
confusion matrix image, the accuracy block of the model metadata, and the model card.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from device.photos import confusion, scores
from models.fer import CLASS_NAMES, Split, load_split

HERE = Path(__file__).resolve().parent
FACE_CROP_MARGINS = (1.3, 1.1, 0.9)  # realval photos cut to the face: loose, tight, and the chin cut off
SUBSET_SEED, SUBSET_SIZE = 2013, 500


def private_subset_indices(n: int) -> np.ndarray:
    """The fixed 500-face PrivateTest subset the tests use to guard against preprocessing regressions."""
    return np.sort(np.random.default_rng(SUBSET_SEED).permutation(n)[:SUBSET_SIZE])


def int8_probabilities(model: Path, split: Split, flip: bool = False) -> np.ndarray:
    from device.emotion import EmotionClassifier

    clf = EmotionClassifier(model, threads=2)
    images = split.images[:, :, ::-1] if flip else split.images
    return np.stack([clf.probabilities(np.ascontiguousarray(img)) for img in images])


def float_net(checkpoint: Path, logit_shift: np.ndarray | None = None):
    """The float PyTorch model of a checkpoint (models.vgg16_torch.float_net; looked up here so tests can swap it)."""
    from models.vgg16_torch import float_net as load

    return load(checkpoint, logit_shift)


def float_probabilities(
    checkpoint: Path, split: Split, flip: bool = False, logit_shift: np.ndarray | None = None
) -> np.ndarray:
    import torch

    net = float_net(checkpoint, logit_shift)
    images = split.images[:, :, ::-1] if flip else split.images
    out = []
    with torch.no_grad():
        for i in range(0, len(images), 256):
            x = torch.from_numpy(np.ascontiguousarray(images[i : i + 256])).float().unsqueeze(1)
            out.append(torch.softmax(net(x), 1).numpy())
    return np.concatenate(out)


def int8_latency_ms(model: Path, runs: int = 500) -> dict:
    from device.emotion import EmotionClassifier

    clf = EmotionClassifier(model, threads=2)
    crop = load_split("PrivateTest").images[0]
    for _ in range(30):
        clf.probabilities(crop)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        clf.probabilities(crop)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {"median": round(statistics.median(times), 3), "p95": round(times[int(0.95 * runs)], 3), "runs": runs}


def save_confusion_image(m: np.ndarray, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    norm = m / np.maximum(m.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=110)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(7), CLASS_NAMES, rotation=35)
    ax.set_yticks(range(7), CLASS_NAMES)
    for i in range(7):
        for j in range(7):
            ax.text(
                j,
                i,
                f"{norm[i, j]:.2f}\n({m[i, j]})",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if norm[i, j] > 0.5 else "black",
            )
    ax.set_xlabel("predicted")
    ax.set_ylabel("FER2013 label")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def machine() -> str:
    import os

    name, flags = "", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = (part.strip() for part in line.partition(":"))
            if key == "model name" and not name:
                name = value
            elif key in ("flags", "Features"):
                flags |= set(value.split())
    except OSError:
        pass
    # int8 speed hangs on the widest vector instructions more than on the CPU's name: the same network took 2.2 ms
    # on the build machine of November (AVX-512) and about 10 ms on its AVX2 successor
    vector = next((f", {label}" for flag, label in VECTOR_UNITS if flag in flags), "")
    name = name or platform.processor() or "cpu"
    return f"{name}{vector}, {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"


VECTOR_UNITS = (  # the first a CPU has is named in `machine()`
    ("avx512_vnni", "AVX-512 VNNI"),
    ("avx512f", "AVX-512"),
    ("avx2", "AVX2"),
    ("asimddp", "NEON with dot product"),
    ("asimd", "NEON"),
)


def face_crop_results(model: Path) -> dict:
    """The realval photos cut to the face, as many expression photo sets are: does the pipeline still find and
    read them? With the device's detector, and with BlazeFace full-range alone (the device's before)."""
    from models.realval import evaluate_realval

    out: dict = {}
    for margin in FACE_CROP_MARGINS:
        for name, detector in (("device", "auto"), ("full_range_alone", "blazeface-full")):
            r = evaluate_realval(model, face_crop=margin, detector=detector)["int8"]
            out.setdefault(str(margin), {})[name] = {k: r[k] for k in ("accuracy_all", "detection_misses")}
    return out


def condition_results(model: Path) -> dict:
    """The realval photos changed as a living room changes a face (distance, low light, compression, focus, side
    light; models.realval.CONDITIONS), through the device pipeline with the int8 model."""
    from models.realval import CONDITIONS, evaluate_realval

    out: dict = {}
    for name, (what, _) in CONDITIONS.items():
        r = evaluate_realval(model, condition=name)["int8"]
        keep = ("accuracy_all", "macro_f1", "detection_misses", "recall", "face_width_median")
        out[name] = {"what": what, **{k: r[k] for k in keep}}
    return out


def evaluate(checkpoint: Path | None, model: Path, logit_shift: np.ndarray | None = None) -> dict:
    from models.realval import evaluate_realval

    splits = {name: load_split(name) for name in ("PublicTest", "PrivateTest")}
    results: dict = {"int8": {}, "float": {}}
    for name, split in splits.items():
        p = int8_probabilities(model, split)
        pf = int8_probabilities(model, split, flip=True)
        results["int8"][name] = {
            **scores(split.labels, p.argmax(1)),
            "accuracy_flip_tta": float(((p + pf).argmax(1) == split.labels).mean()),
        }
        if name == "PrivateTest":
            sub = private_subset_indices(len(split))
            results["int8"]["PrivateTest500"] = float((p[sub].argmax(1) == split.labels[sub]).mean())
            results["confusion_int8_private"] = confusion(split.labels, p.argmax(1)).tolist()
        if checkpoint is not None and checkpoint.exists():
            q = float_probabilities(checkpoint, split, logit_shift=logit_shift)
            qf = float_probabilities(checkpoint, split, flip=True, logit_shift=logit_shift)
            results["float"][name] = {
                **scores(split.labels, q.argmax(1)),
                "accuracy_flip_tta": float(((q + qf).argmax(1) == split.labels).mean()),
            }
    results["realval"] = evaluate_realval(model, checkpoint, logit_shift=logit_shift)
    results["realval_face_crop"] = face_crop_results(model)
    results["realval_conditions"] = condition_results(model)
    results["latency_ms"] = int8_latency_ms(model)
    results["size_bytes"] = model.stat().st_size
    results["machine"] = machine()
    results["measured_on"] = time.strftime("%Y-%m-%d")
    return results


def keep_float_results(results: dict, previous: dict) -> None:
    """Without the float checkpoint on this machine (`models.recover` rebuilds float weights from the int8 file, but
    not the original ones), the float numbers stay those the last evaluation of the same model measured with it."""
    if results["float"] or previous.get("model_version") != results["model_version"] or not previous.get("float"):
        return
    results["float"] = previous["float"]
    if "float" in previous.get("realval", {}):
        results["realval"]["float"] = previous["realval"]["float"]
    results["float_measured_on"] = previous.get("float_measured_on") or "an earlier run, with the float checkpoint"
    print("no float checkpoint here: the float numbers are kept from the last evaluation of this model")


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--checkpoint", type=Path, help="float checkpoint (default: the one the model's metadata names, if present)"
    )
    p.add_argument("--model", type=Path, default=HERE / "emotion_vgg16_int8.tflite")
    p.add_argument("--no-card", action="store_true", help="print only; do not write the card, image or metadata")
    args = p.parse_args(argv)
    meta_path = args.model.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    recorded = meta.get("training", {}).get("checkpoint")
    checkpoint = args.checkpoint or (HERE.parent / recorded if recorded else HERE / "checkpoints" / "best.pt")
    tau = meta.get("training", {}).get("logit_adjustment_tau")
    from models.fer import logit_adjustment

    results = evaluate(checkpoint, args.model, logit_adjustment(tau) if tau else None)
    results["model_version"] = meta["version"]
    if (HERE / "evaluation.json").exists():
        keep_float_results(results, json.loads((HERE / "evaluation.json").read_text()))
    print(json.dumps({k: v for k, v in results.items() if k != "confusion_int8_private"}, indent=2))
    if not args.no_card:
        from models.model_card import write_card

        save_confusion_image(
            np.array(results["confusion_int8_private"]),
            HERE / "confusion_matrix.png",
            f"int8 {meta['version']} on FER2013 PrivateTest (row-normalised)",
        )
        meta["accuracy"] = {
            "private_test_int8": round(results["int8"]["PrivateTest"]["accuracy"], 4),
            "public_test_int8": round(results["int8"]["PublicTest"]["accuracy"], 4),
            "private_test_float": round(results["float"].get("PrivateTest", {}).get("accuracy", float("nan")), 4),
            "macro_f1_private_int8": round(results["int8"]["PrivateTest"]["macro_f1"], 4),
            "realval_int8": results["realval"]["int8"]["accuracy_all"],
            "realval_int8_faces_found": results["realval"]["int8"]["accuracy"],
            "realval_macro_f1_int8": results["realval"]["int8"]["macro_f1"],
            "realval_min_class_recall_int8": min(results["realval"]["int8"]["recall"].values()),
            "realval_detection_misses": results["realval"]["int8"]["detection_misses"],
        }
        meta_path.write_text(json.dumps(meta, indent=2) + "\n")
        (HERE / "evaluation.json").write_text(json.dumps(results, indent=2) + "\n")
        write_card(results, meta, HERE / "MODEL_CARD.md")
        print(f"wrote {HERE / 'MODEL_CARD.md'}, confusion_matrix.png, evaluation.json and the metadata's accuracy")
    return results


if __name__ == "__main__":
    main()
