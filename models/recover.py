"""Rebuild a trainable PyTorch checkpoint from the shipped int8 TFLite model.

    python -m models.recover [--model models/emotion_vgg16_int8.tflite] [--out DIR/recovered.pt]

Training checkpoints are not committed (they are 60 MB each and live outside the work tree), so a fresh
machine has only the int8 file. This reads its weights back: per-channel int8 weights and int32 biases are
dequantised; each convolution carries its batch normalisation folded in, so the rebuilt network keeps the fold
in the convolution and sets every BatchNorm to pass the activations through plus the folded bias. The BatchNorm
statistics are then re-measured on Training faces, so that in training mode (batch statistics) each BatchNorm
starts out as the same function. The result is a float model within int8 rounding of the shipped one, a
starting point for a warm restart (`models.train --init`). The post-hoc logit adjustment that the conversion
put in the last bias (the metadata's `logit_adjustment_tau`) is taken back out, so the checkpoint holds the
trained weights alone, like a training run's. The script checks the rebuilt model, with the adjustment added back,
against the TFLite file on PublicTest and prints the agreement.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _dequantised(it, index: int) -> np.ndarray:
    detail = next(t for t in it.get_tensor_details() if t["index"] == index)
    q = detail["quantization_parameters"]
    raw = it.get_tensor(index).astype(np.float32)
    scales, zeros = q["scales"], q["zero_points"]
    if len(scales) == 0:
        return raw
    axis = q.get("quantized_dimension", 0)
    shape = [1] * raw.ndim
    if len(scales) > 1:
        shape[axis] = len(scales)
    return (raw - zeros.reshape(shape)) * scales.reshape(shape)


def tflite_layers(model: Path) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[tuple[np.ndarray, np.ndarray]]]:
    """The (weight, bias) pairs of the convolutions (OHWI) and fully connected layers (out, in), in order."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(
        model_path=str(model),
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    it.allocate_tensors()
    convs, dense = [], []
    for op in it._get_ops_details():
        if op["op_name"] not in ("CONV_2D", "FULLY_CONNECTED"):
            continue
        w, b = _dequantised(it, op["inputs"][1]), _dequantised(it, op["inputs"][2])
        (convs if op["op_name"] == "CONV_2D" else dense).append((w, b))
    return convs, dense


def rebuild(model: Path, calibration: np.ndarray):
    """A VGG16 whose function matches the TFLite model's, with BatchNorm statistics measured on `calibration`."""
    import torch
    from torch import nn

    from models.fer import PIXEL_MEAN, PIXEL_STD
    from models.vgg16_torch import VGG16

    convs, dense = tflite_layers(model)
    net = VGG16()
    conv_layers = [m for m in net.features if isinstance(m, nn.Conv2d)]
    bn_layers = [m for m in net.features if isinstance(m, nn.BatchNorm2d)]
    fc_layers = [m for m in net.head if isinstance(m, nn.Linear)]
    if len(conv_layers) != len(convs) or len(fc_layers) != len(dense):
        raise SystemExit(f"{model}: {len(convs)} convolutions and {len(dense)} dense layers; VGG16 has 13 and 3")
    with torch.no_grad():
        for conv, bn, (w, b) in zip(conv_layers, bn_layers, convs):
            conv.weight.copy_(torch.from_numpy(w.transpose(0, 3, 1, 2)))
            bn.weight.fill_(1.0)
            bn.bias.copy_(torch.from_numpy(b))
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
        for fc, (w, b) in zip(fc_layers, dense):
            fc.weight.copy_(torch.from_numpy(w))
            fc.bias.copy_(torch.from_numpy(b))
        # Measure each convolution's output statistics, then let BN normalise and restore them exactly.
        x = torch.from_numpy(calibration).float().unsqueeze(1)
        h = (x - PIXEL_MEAN) / PIXEL_STD
        net.eval()
        for layer in net.features:
            if isinstance(layer, nn.BatchNorm2d):
                mean = h.mean(dim=(0, 2, 3))
                var = h.var(dim=(0, 2, 3), unbiased=False)
                std = torch.sqrt(var + layer.eps)
                bias = layer.bias.clone()
                layer.running_mean.copy_(mean)
                layer.running_var.copy_(var)
                layer.weight.copy_(std)
                layer.bias.copy_(mean + bias)
            h = layer(h)
    return net


def without_logit_shift(net, model: Path) -> float:
    """Take the post-hoc logit adjustment that `models.convert --logit-adjust` put in the last bias back out, so
    the checkpoint holds the trained weights alone (a warm restart, `models.head` and `models.experiments
    --logit-adjust` all add it themselves). Returns the tau removed (0.0 if the file had none)."""
    import torch

    from models.fer import logit_adjustment

    meta_path = model.with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    tau = float(meta.get("training", {}).get("logit_adjustment_tau") or 0.0)
    if tau:
        with torch.no_grad():
            net.head[-1].bias -= torch.from_numpy(logit_adjustment(tau))
    return tau


def agreement(net, model: Path, n: int = 600, tau: float = 0.0) -> dict:
    """How often the float `net` (with the logit adjustment `tau` added back) and the int8 file agree."""
    import torch

    from device.emotion import EmotionClassifier
    from models.fer import load_split, logit_adjustment

    split = load_split("PublicTest").subset(n, 7)
    clf = EmotionClassifier(model, threads=2)
    p8 = np.stack([clf.probabilities(img) for img in split.images])
    net.eval()
    shift = torch.from_numpy(logit_adjustment(tau)) if tau else 0.0
    with torch.no_grad():
        pf = torch.softmax(net(torch.from_numpy(split.images).float().unsqueeze(1)) + shift, 1).numpy()
    return {
        "faces": n,
        "same_top_emotion": round(float((p8.argmax(1) == pf.argmax(1)).mean()), 4),
        "max_abs_probability_difference": round(float(np.abs(p8 - pf).max()), 4),
        "int8_accuracy": round(float((p8.argmax(1) == split.labels).mean()), 4),
        "rebuilt_accuracy": round(float((pf.argmax(1) == split.labels).mean()), 4),
    }


def main(argv: list[str] | None = None) -> dict:
    import torch

    from models.convert import representative_faces

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=HERE / "emotion_vgg16_int8.tflite")
    p.add_argument("--out", type=Path, required=True, help="where to write the checkpoint (outside the work tree)")
    args = p.parse_args(argv)
    net = rebuild(args.model, representative_faces(2100, seed=11))
    tau = without_logit_shift(net, args.model)
    check = agreement(net, args.model, tau=tau)
    print(json.dumps(check))
    if check["same_top_emotion"] < 0.95:
        raise SystemExit(f"the rebuilt model agrees with {args.model} on only {check['same_top_emotion']:.1%} of faces")
    meta = json.loads(args.model.with_suffix(".json").read_text())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "model": net.state_dict(),
            "epoch": meta.get("training", {}).get("epochs_trained", 0) - 1,
            "public_test": {"acc": check["rebuilt_accuracy"]},
            "stages": meta.get("training", {}).get("stages", []),
            "recovered_from": {"model": str(args.model), "version": meta.get("version"), "check": check},
            "logit_adjustment_removed": tau,
        },
        args.out,
    )
    print(f"wrote {args.out}")
    return check


if __name__ == "__main__":
    main()
