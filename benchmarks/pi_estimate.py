"""An estimate, not a measurement: frames per second on a Raspberry Pi 4 and a Pi 5.

    .venv/bin/python benchmarks/pi_estimate.py [--efficiency 0.4 0.8] [--threads 2]

No Pi was available to measure on. This counts the multiply-accumulates (MACs) of the shipped models from their
own layer shapes (every CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED in the .tflite files) and divides them by
each core's peak SIMD throughput from Arm's published core descriptions, scaled by how much of that peak a
kernel library reaches (the `--efficiency` range, 40-80% by default: XNNPACK's convolutions reach about 75% of
peak on this machine's AVX-512 VNNI cores, and small 3x3 convolutions on a Pi seldom do better):

- Pi 4: Cortex-A72 at 1.8 GHz (1.5 GHz on boards before 2020). Armv8.0 has no int8 dot product: int8 runs as
  widening multiplies (SMULL / SADALP), 8 int8 MACs a cycle per core at best; fp32 FMA on two 128-bit pipes,
  8 MACs a cycle.
- Pi 5: Cortex-A76 at 2.4 GHz. Armv8.2 SDOT on two 128-bit pipes: 32 int8 MACs a cycle per core; fp32 FMA
  8 MACs a cycle.

The classifier is int8; BlazeFace full-range has fp16 weights and computes in fp32. Both run on `--threads`
threads (the daemon's default is 2 each, one after the other), so a frame with one face costs
detect + classify. Overheads outside the networks (JPEG decode, resize, Python) are not counted.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from device.emotion import DEFAULT_MODEL  # noqa: E402
from device.faces._blazeface import ASSETS  # noqa: E402
from device.litert import load_interpreter  # noqa: E402

# name: (GHz, int8 MACs per cycle per core, fp32 MACs per cycle per core)
CORES = {"Pi 4 (Cortex-A72, 1.8 GHz)": (1.8, 8, 8), "Pi 5 (Cortex-A76, 2.4 GHz)": (2.4, 32, 8)}


def count_macs(path: Path) -> int:
    """Multiply-accumulates of one inference, from the layer shapes recorded in the model file."""
    interpreter = load_interpreter(path, 1)
    shapes = {t["index"]: t["shape"] for t in interpreter.get_tensor_details()}
    total = 0
    for op in interpreter._get_ops_details():
        name, inputs, outputs = op["op_name"], op["inputs"], op["outputs"]
        if name == "CONV_2D":  # output elements x (kh * kw * c_in)
            total += int(np.prod(shapes[outputs[0]])) * int(np.prod(shapes[inputs[1]][1:]))
        elif name == "DEPTHWISE_CONV_2D":  # output elements x (kh * kw)
            weights = shapes[inputs[1]]
            total += int(np.prod(shapes[outputs[0]])) * int(weights[1] * weights[2])
        elif name == "FULLY_CONNECTED":
            total += int(np.prod(shapes[inputs[1]]))
    return total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--efficiency", type=float, nargs=2, default=(0.4, 0.8), metavar=("LOW", "HIGH"))
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    classifier = count_macs(Path(DEFAULT_MODEL))
    detector = count_macs(ASSETS / "face_detection_full_range_sparse.tflite")
    result: dict = {
        "label": "ESTIMATE from operation counts and published peak throughput, not measured on a Pi",
        "classifier_gmac_per_face": round(classifier / 1e9, 3),
        "detector_gmac_per_frame": round(detector / 1e9, 3),
        "threads": args.threads,
        "efficiency_range": list(args.efficiency),
        "boards": {},
    }
    for board, (ghz, int8_macs, fp32_macs) in CORES.items():
        row = {}
        for label, eff in zip(("slow", "fast"), sorted(args.efficiency), strict=True):
            classify_ms = classifier / (ghz * 1e9 * int8_macs * args.threads * eff) * 1000
            detect_ms = detector / (ghz * 1e9 * fp32_macs * args.threads * eff) * 1000
            frame_ms = classify_ms + detect_ms
            row[label] = {
                "classify_ms_per_face": round(classify_ms, 1),
                "detect_ms_per_frame": round(detect_ms, 1),
                "fps_one_face": round(1000 / frame_ms, 1),
                "fps_five_faces_all_classified": round(1000 / (detect_ms + 5 * classify_ms), 1),
            }
        result["boards"][board] = row
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
