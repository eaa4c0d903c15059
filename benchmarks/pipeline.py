"""Pipeline speed and memory on 640x480 frames with one face, as a USB webcam delivers them (MJPEG).

    .venv/bin/python benchmarks/pipeline.py [--frames 600] [--threads 2] [--detector-threads 2]

Frames come from ../shared/media/phone_smile.mp4, scaled to 640x480 and JPEG-encoded in memory (never on disk).
Prints the median latency of each stage (decode, detect, classify, mood), the sustained frames per second of
the whole loop, and the peak resident memory of this process. Targets: detect + classify <= 5 ms median,
>= 30 frames/s on 2 cores, peak RSS <= 250 MB.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from device.config import Config  # noqa: E402
from device.emotion import EmotionClassifier  # noqa: E402
from device.events import Frame  # noqa: E402
from device.faces import make_detector  # noqa: E402
from device.mood import MoodEngine, MoodSettings  # noqa: E402
from device.pipeline import Pipeline  # noqa: E402

VIDEO = REPO.parent / "shared" / "media" / "phone_smile.mp4"


def mjpeg_frames() -> list:
    cap = cv2.VideoCapture(str(VIDEO))
    out = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frame = cv2.resize(frame, (640, 480), interpolation=cv2.INTER_AREA)
        out.append(cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])[1])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=600)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--detector", default="blazeface")
    p.add_argument("--detector-threads", type=int, default=2)
    p.add_argument("--model", type=Path, help="an int8 emotion model other than the configured one, to compare")
    args = p.parse_args()

    config = Config()
    pipeline = Pipeline(
        make_detector(args.detector, threads=args.detector_threads),
        EmotionClassifier(args.model or config.emotion.model_path, args.threads),
        MoodEngine(MoodSettings(**config.mood.model_dump())),
    )
    jpegs = mjpeg_frames()
    for i in range(20):  # warm-up
        pipeline.process(Frame(cv2.imdecode(jpegs[i], cv2.IMREAD_GRAYSCALE), i / 15, i))

    stages: dict[str, list[float]] = {"decode": [], "detect": [], "classify": [], "mood": [], "detect+classify": []}
    faces = 0
    start = time.perf_counter()
    for i in range(args.frames):
        t0 = time.perf_counter()
        grey = cv2.imdecode(jpegs[i % len(jpegs)], cv2.IMREAD_GRAYSCALE)
        decode_ms = (time.perf_counter() - t0) * 1000
        reading, _ = pipeline.process(Frame(grey, i / 15, i))
        faces += len(reading.faces)
        stages["decode"].append(decode_ms)
        for stage in ("detect", "classify", "mood"):
            stages[stage].append(reading.timings_ms[stage])
        stages["detect+classify"].append(reading.timings_ms["detect"] + reading.timings_ms["classify"])
    elapsed = time.perf_counter() - start

    result = {
        "frames": args.frames,
        "frame_size": "640x480",
        "faces_per_frame": round(faces / args.frames, 3),
        "median_ms": {k: round(statistics.median(v), 2) for k, v in stages.items()},
        "p95_ms": {k: round(sorted(v)[int(0.95 * len(v))], 2) for k, v in stages.items()},
        "sustained_fps": round(args.frames / elapsed, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "detector": pipeline.detector.name,
        "model": pipeline.classifier.version,
        "threads": args.threads,
        "detector_threads": args.detector_threads,
    }
    print(json.dumps(result, indent=2))
    ok = result["median_ms"]["detect+classify"] <= 5 and result["sustained_fps"] >= 30 and result["peak_rss_mb"] <= 250
    print("targets (detect+classify <= 5 ms, >= 30 fps, RSS <= 250 MB):", "met" if ok else "NOT met")


if __name__ == "__main__":
    main()
