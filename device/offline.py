"""`moodbox classify` and `moodbox replay`: the pipeline on photos and recordings, without the daemon."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2

from device.camera import CameraError
from device.camera._demo import DemoCamera
from device.camera._replay import ReplayCamera
from device.config import Config
from device.emotion import EmotionClassifier
from device.events import EMOTIONS, Frame, Reading
from device.faces import make_detector
from device.mood import MoodEngine, MoodSettings
from device.pipeline import Pipeline


def _pipeline(config: Config) -> Pipeline:
    classifier = EmotionClassifier(config.emotion.model_path, config.emotion.threads, config.emotion.mirror)
    detector = make_detector(config.faces.detector, config.faces.min_score, config.faces.max_faces)
    return Pipeline(detector, classifier, MoodEngine(MoodSettings(**config.mood.model_dump())))


def _faces(reading: Reading) -> list[dict[str, Any]]:
    return [
        {
            "box": list(f.face.box),
            "score": round(f.face.score, 3),
            "probabilities": {e: round(p, 4) for e, p in zip(EMOTIONS, f.probabilities)},
            "emotion": f.emotion,
        }
        for f in reading.faces
    ]


def unreadable(path: Path) -> str:
    """Why OpenCV could not read `path` as an image, and what to do instead."""
    if path.is_dir():
        return f"{path} is a folder: give its image files, or `moodbox replay {path}` for the folder as a sequence"
    if not path.exists():
        return f"{path} does not exist"
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        return f"{path} cannot be opened ({exc.strerror}); check its permissions"
    return f"{path} is not an image OpenCV can read (JPEG, PNG, WebP, BMP or TIFF), or it is damaged"


def classify(config: Config, images: list[Path]) -> list[dict[str, Any]]:
    pipeline = _pipeline(config)
    out = []
    for path in images:
        # only files go to OpenCV, which would print a warning of its own for a missing one
        grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) if path.is_file() else None
        if grey is None:
            out.append({"image": str(path), "error": unreadable(path)})
            continue
        reading, _ = pipeline.process(Frame(grey, 0.0, 0))
        too_dark = [{"box": list(f.box), "score": round(f.score, 3)} for f in reading.dark]
        out.append({"image": str(path), "faces": _faces(reading), "too_dark": too_dark})
    return out


def replay(config: Config, source: str, pace: str = "fast") -> dict[str, Any]:
    pipeline = _pipeline(config)
    if source == "demo":
        camera = DemoCamera(max_fps=config.camera.max_fps, realtime=pace == "realtime", cycles=1)
    else:
        camera = ReplayCamera(source, pace=pace, loop=False)
    camera.open()
    timeline, frames, with_faces, last_t = [], 0, 0, 0.0
    try:
        while (frame := camera.read()) is not None:
            reading, change = pipeline.process(frame)
            frames += 1
            with_faces += bool(reading.faces)
            last_t = frame.t
            if change is not None:
                timeline.append(
                    {
                        "t": round(change.t, 2),
                        "mood": change.mood,
                        "previous": change.previous,
                        "confidence": change.confidence,
                    }
                )
    finally:
        camera.close()
    if frames == 0:
        raise CameraError(
            f"{source} gave no frames: OpenCV opened it but decoded no picture (an empty or damaged file?); "
            "`moodbox classify` reads a single photo"
        )
    return {
        "source": source,
        "frames": frames,
        "frames_with_faces": with_faces,
        "duration_s": round(last_t, 2),
        "timeline": timeline,
        "final_mood": pipeline.engine.mood,
        "moods_seen": sorted({c["mood"] for c in timeline}),
        "latency_ms": pipeline.latency_ms(),
        "model": {"version": pipeline.classifier.version, "interim": pipeline.classifier.interim},
    }


def describe_classify(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        if "error" in r:
            lines.append(f"{r['image']}: {r['error']}")
            continue
        dark = f", {len(r['too_dark'])} too dark to read" if r.get("too_dark") else ""
        lines.append(f"{r['image']}: {len(r['faces'])} face(s){dark}")
        for f in r["faces"]:
            p = f["probabilities"][f["emotion"]]
            lines.append(f"  box {f['box']}: {f['emotion']} ({p:.0%})")
        for f in r.get("too_dark", []):
            lines.append(f"  box {f['box']}: a face too dark to read; more light on it, and Moodbox reads it")
    return "\n".join(lines)


def describe_replay(result: dict[str, Any]) -> str:
    lines = [f"{result['source']}: {result['frames']} frames, {result['duration_s']} s"]
    lines += [f"  {c['t']:7.2f} s  {c['previous']} -> {c['mood']} ({c['confidence']:.0%})" for c in result["timeline"]]
    lines.append(f"final mood: {result['final_mood']}")
    return "\n".join(lines)
