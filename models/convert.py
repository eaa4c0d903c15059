"""Convert a trained checkpoint to the full-integer int8 TFLite model the device runs, plus its metadata.

    python -m models.convert [--checkpoint models/checkpoints/best.pt] [--out models/emotion_vgg16_int8.tflite]

Calibration uses real Training faces (stratified by class), never random data. Input and output tensors are
int8; their scale and zero point are read back from the converted file and written into the metadata.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from models.fer import CLASS_NAMES, load_split

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "emotion_vgg16_int8.tflite"
DEFAULT_FRAMING = {"margin": 1.137, "shift_x": 0.0, "shift_y": -0.055, "align_eyes": True}


def representative_faces(n: int, seed: int = 0) -> np.ndarray:
    """n Training faces, the same number from each class where the class has enough."""
    train = load_split("Training")
    rng = np.random.default_rng(seed)
    per_class = n // len(CLASS_NAMES)
    picks = [rng.choice(np.nonzero(train.labels == c)[0], per_class, replace=False) for c in range(len(CLASS_NAMES))]
    idx = np.concatenate(picks)
    rng.shuffle(idx)
    return train.images[idx]


def convert(keras_model, faces: np.ndarray) -> bytes:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    def samples():
        for face in faces:
            yield [face.astype(np.float32)[None, :, :, None]]

    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = samples
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def tensor_quantisation(model: bytes) -> tuple[dict, dict]:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]

    def q(d: dict) -> dict:
        return {
            "dtype": np.dtype(d["dtype"]).name,
            "scale": float(d["quantization"][0]),
            "zero_point": int(d["quantization"][1]),
        }

    return q(inp), q(out)


def framing() -> dict:
    path = HERE / "framing.json"
    if not path.exists():
        return dict(DEFAULT_FRAMING)
    f = json.loads(path.read_text())
    return {"margin": f["margin"], "shift_x": f["shift_x"], "shift_y": f["shift_y"], "align_eyes": True}


def training_stages(path: Path, checkpoint: dict) -> list[dict]:
    """The training runs that made this checkpoint, oldest first, from the log beside each checkpoint.

    A run started with `train --init` is a second stage; its first stage is read from the checkpoint it started
    from. The stages go into the metadata, so the model card can describe the training on any clone.
    """
    import torch

    if "recovered_from" in checkpoint:  # rebuilt from a shipped model by models.recover: its history came along
        return list(checkpoint.get("stages", []))
    if "head_only" in checkpoint:  # models.head: the head retrained on the frozen features of its init
        h = checkpoint["head_only"]
        init = Path(h["init"])
        stages = (
            training_stages(init, torch.load(init, map_location="cpu", weights_only=False)) if init.exists() else []
        )
        return [
            *stages,
            {
                "started_from": "the previous stage's checkpoint",
                "head_only": True,
                "block5": h.get("block5", False),
                "schedule_epochs": h["epochs"],
                "peak_lr": h["lr"],
                "soft_weight": h["soft_weight"],
                "la_tau": h.get("la_tau"),
                "epochs_run": h["epochs"],
                "checkpoint_epoch": h["epochs"],
                "minutes": h.get("minutes", 0.0),
                "device": "cpu",
                "precision": "fp32",
                "public_test_by_epoch": [],
            },
        ]
    args = checkpoint.get("args") or {}
    stages: list[dict] = []
    if args.get("init"):
        init = Path(args["init"])
        init = init if init.is_absolute() else HERE.parent / init
        if init.exists():
            stages = training_stages(init, torch.load(init, map_location="cpu", weights_only=False))
        else:
            print(f"warning: {init}, the checkpoint this run started from, is gone; its history is not recorded")
    log = path.with_name(path.stem + ".train_log.jsonl")  # models.gpu unpack: the log of this checkpoint's run
    if not log.exists():  # models.train: one log for the run's folder
        log = path.parent / ("smoke_log.jsonl" if path.name.startswith("smoke") else "train_log.jsonl")
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []
    rows = list({r["epoch"]: r for r in rows}.values())  # an epoch re-run after a kill is counted once
    stages.append(
        {
            "started_from": "the previous stage's checkpoint" if args.get("init") else "random weights",
            "schedule_epochs": args.get("epochs"),
            "schedule_minutes": args.get("minutes") or None,  # a time-budgeted run: the cosine spans the clock
            "peak_lr": args.get("lr"),
            "soft_weight": args.get("soft_weight"),
            "epochs_run": len(rows),
            "checkpoint_epoch": checkpoint["epoch"] + 1,
            "minutes": round(sum(r["seconds"] for r in rows) / 60, 1),
            "device": rows[-1]["device"] if rows else None,
            "precision": rows[-1]["precision"] if rows else None,
            "public_test_by_epoch": [round(r["public_test"]["acc"], 4) for r in rows],
            "kept_public_test": (checkpoint.get("public_test") or {}).get("acc"),
            "kept_average": bool(checkpoint.get("ema")),  # the weights' moving average, not the epoch's weights
        }
    )
    return stages


def write_model(
    model: bytes,
    out: Path,
    checkpoint: dict,
    interim: bool,
    calibration_faces: int,
    stages: list[dict],
    checkpoint_name: str,
) -> dict:
    q_in, q_out = tensor_quantisation(model)
    out.write_bytes(model)
    epochs = sum(st["checkpoint_epoch"] for st in stages if not st.get("head_only"))
    head = "-head" if any(st.get("head_only") for st in stages) else ""  # the head retrained on frozen features
    meta = {
        "format": "moodbox-emotion/1",
        "name": "VGG16 FER2013 emotion classifier",
        "version": f"vgg16-e{epochs}{head}-{dt.date.today().isoformat()}",
        "interim": interim,
        "labels": list(CLASS_NAMES),
        "input": {
            "size": [48, 48],
            "channels": 1,
            "preprocessing": "grey uint8 pixels 0..255, quantised with the input scale and zero point; "
            "mean/std normalisation is inside the model",
            "quantization": q_in,
        },
        "output": {"kind": "softmax probabilities", "quantization": q_out},
        "crop": framing(),
        "calibration": f"{calibration_faces} FER2013 Training faces, stratified by class",
        "training": {
            "epochs_trained": epochs,
            "public_test_accuracy_float": checkpoint.get("public_test", {}).get("acc"),
            "stages": stages,
            "checkpoint": checkpoint_name,
        },
        "sha256": hashlib.sha256(model).hexdigest(),
        "size_bytes": len(model),
    }
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, default=HERE / "checkpoints" / "best.pt")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--calibration-faces", type=int, default=700)
    p.add_argument("--interim", action="store_true", help="mark the model as interim in its metadata")
    p.add_argument(
        "--logit-adjust",
        type=float,
        default=0.0,
        help="post-hoc logit adjustment tau: subtract tau * log(Training class prior) from the logits",
    )
    args = p.parse_args(argv)

    import torch

    from models.keras_port import keras_from_checkpoint

    checkpoint = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    from models.fer import logit_adjustment

    shift = logit_adjustment(args.logit_adjust) if args.logit_adjust else None
    model = convert(keras_from_checkpoint(args.checkpoint, shift), representative_faces(args.calibration_faces))
    stages = training_stages(args.checkpoint, checkpoint)
    path = args.checkpoint.resolve()
    name = str(path.relative_to(HERE.parent)) if path.is_relative_to(HERE.parent) else str(path)
    meta = write_model(model, args.out, checkpoint, args.interim, args.calibration_faces, stages, name)
    if args.logit_adjust:
        meta["training"]["logit_adjustment_tau"] = args.logit_adjust
        args.out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps({k: meta[k] for k in ("version", "interim", "size_bytes", "sha256")}, indent=2))
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")
    return meta


if __name__ == "__main__":
    main()
