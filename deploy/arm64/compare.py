"""What counts as "the same result" for the emulated arm64 run and this machine's run of one `moodbox` command."""

from __future__ import annotations

from typing import Any

PROBABILITY_TOLERANCE = 0.02
# A mood change may land a frame or two later when the averaged probabilities differ in the third decimal.
CHANGE_TOLERANCE_S = 0.25


def classify(arm: list[dict[str, Any]], x86: list[dict[str, Any]]) -> list[str]:
    """Problems, if any: each image must give the same faces, emotions and boxes, and probabilities within 0.02."""
    problems = []
    for a, x in zip(arm, x86, strict=True):
        image = x["image"]
        if "error" in a or "error" in x:
            problems.append(f"{image}: arm64 {a.get('error', 'ok')}, x86-64 {x.get('error', 'ok')}")
            continue
        if len(a["faces"]) != len(x["faces"]):
            problems.append(f"{image}: {len(a['faces'])} face(s) on arm64, {len(x['faces'])} on x86-64")
            continue
        for n, (fa, fx) in enumerate(zip(a["faces"], x["faces"], strict=True), 1):
            if fa["emotion"] != fx["emotion"]:
                problems.append(f"{image} face {n}: {fa['emotion']} on arm64, {fx['emotion']} on x86-64")
            if fa["box"] != fx["box"]:
                problems.append(f"{image} face {n}: box {fa['box']} on arm64, {fx['box']} on x86-64")
            gap = probability_gap(fa, fx)
            if gap > PROBABILITY_TOLERANCE:
                problems.append(f"{image} face {n}: probabilities differ by up to {gap:.3f} (allowed 0.02)")
    return problems


def probability_gap(a: dict[str, Any], x: dict[str, Any]) -> float:
    return max(abs(a["probabilities"][k] - x["probabilities"][k]) for k in x["probabilities"])


def replay(arm: dict[str, Any], x86: dict[str, Any]) -> list[str]:
    """Problems, if any: the same frames and faces, and the same mood changes at (nearly) the same times."""
    problems = []
    for key in ("frames", "frames_with_faces", "final_mood"):
        if arm[key] != x86[key]:
            problems.append(f"replay {key}: {arm[key]} on arm64, {x86[key]} on x86-64")
    moods_a = [c["mood"] for c in arm["timeline"]]
    moods_x = [c["mood"] for c in x86["timeline"]]
    if moods_a != moods_x:
        problems.append(f"replay mood changes: {moods_a} on arm64, {moods_x} on x86-64")
    else:
        for ca, cx in zip(arm["timeline"], x86["timeline"], strict=True):
            if abs(ca["t"] - cx["t"]) > CHANGE_TOLERANCE_S:
                problems.append(f"replay: {ca['mood']} at {ca['t']} s on arm64, {cx['t']} s on x86-64")
    return problems
