"""The `moodbox` command on real photos, the real video and the built-in demo feed."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO, isolated_env


def moodbox(tmp_path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "device", *args],
        cwd=REPO,
        env=isolated_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_classify_finds_one_happy_face_and_none_in_the_cartoon(tmp_path, media):
    r = moodbox(tmp_path, "classify", str(media / "justin.jpg"), str(media / "no-faces.jpg"), "--json")
    assert r.returncode == 0, r.stderr
    justin, cartoon = json.loads(r.stdout)
    assert len(justin["faces"]) == 1
    face = justin["faces"][0]
    assert set(face["probabilities"]) == {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
    assert abs(sum(face["probabilities"].values()) - 1) < 0.01
    assert len(face["box"]) == 4
    assert face["emotion"] == "happy"
    assert cartoon["faces"] == [] and justin["too_dark"] == cartoon["too_dark"] == []
    assert "XNNPACK" not in r.stderr, r.stderr  # LiteRT's "INFO: Created ... delegate" is not news to a user


def test_only_litert_routine_line_is_held_back_from_stderr(capfd):
    """The runtime's native code writes to fd 2: the INFO line is dropped, anything else comes through in order."""
    import os

    from device.litert import _without_chatter

    with _without_chatter():
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        os.write(2, b"ERROR: a real problem\n")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "ERROR: a real problem\nafter\n"


def test_classify_says_a_face_is_too_dark_to_read(tmp_path, media):
    import cv2
    import numpy as np

    grey = cv2.imread(str(media / "justin.jpg"), cv2.IMREAD_GRAYSCALE)
    noise = np.random.default_rng(0).normal(0.0, 4.0, grey.shape)
    dark = tmp_path / "justin-lights-off.png"
    cv2.imwrite(str(dark), np.clip(np.rint(grey * 0.05 + noise), 0, 255).astype(np.uint8))
    r = moodbox(tmp_path, "classify", str(dark), "--json")
    assert r.returncode == 0, r.stderr
    [result] = json.loads(r.stdout)
    assert result["faces"] == [] and len(result["too_dark"]) == 1 and len(result["too_dark"][0]["box"]) == 4
    r = moodbox(tmp_path, "classify", str(dark))
    assert "0 face(s), 1 too dark to read" in r.stdout and "too dark to read; more light on it" in r.stdout


def test_classify_reports_an_unreadable_image(tmp_path, media):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes((media / "justin.jpg").read_bytes()[:100])
    paths = [bad, truncated, tmp_path / "missing.jpg", tmp_path, media / "justin.jpg"]
    r = moodbox(tmp_path, "classify", *map(str, paths), "--json")
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert "not an image OpenCV can read" in out[0]["error"] and "damaged" in out[1]["error"]
    assert out[2]["error"].endswith("missing.jpg does not exist")
    assert "is a folder" in out[3]["error"] and "moodbox replay" in out[3]["error"]
    assert len(out[4]["faces"]) == 1
    assert "imread" not in r.stderr  # no OpenCV warning on top of the message


def test_replay_of_the_smile_video_settles_on_happy(tmp_path, media):
    r = moodbox(tmp_path, "replay", str(media / "phone_smile.mp4"), "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["frames"] == 115 and result["frames_with_faces"] >= 100
    assert result["final_mood"] == "happy"
    assert result["timeline"][-1]["mood"] == "happy"


def test_replay_demo_shows_at_least_three_moods(tmp_path):
    r = moodbox(tmp_path, "replay", "demo", "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert len(set(result["moods_seen"]) - {"nobody"}) >= 3, result["timeline"]
    times = [c["t"] for c in result["timeline"]]
    assert times == sorted(times)


def test_replay_of_a_missing_video_is_a_clear_error(tmp_path):
    r = moodbox(tmp_path, "replay", str(tmp_path / "missing.mp4"))
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a picture")
    r = moodbox(tmp_path, "replay", str(bad))
    assert r.returncode == 2 and "gave no frames" in r.stderr and "damaged" in r.stderr, r.stderr


def test_python_dash_m_and_the_entry_point_agree(tmp_path, media):
    exe = REPO / ".venv" / "bin" / "moodbox"
    r = subprocess.run(
        [str(exe), "classify", str(media / "no-faces.jpg"), "--json"],
        cwd=REPO,
        env=isolated_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and json.loads(r.stdout)[0]["faces"] == []


def test_config_and_log_level_are_taken_before_or_after_the_command():
    from pathlib import Path

    from device.cli import _parser

    def parsed(*argv: str) -> tuple[Path | None, str]:
        args = _parser().parse_args(argv)
        return args.config, args.log_level

    assert parsed("run") == (None, "INFO")
    assert parsed("--config", "a.toml", "run") == (Path("a.toml"), "INFO")
    assert parsed("run", "--config", "b.toml", "--log-level", "DEBUG") == (Path("b.toml"), "DEBUG")
    assert parsed("--config", "a.toml", "--log-level", "ERROR", "run", "--config", "b.toml") == (
        Path("b.toml"),
        "ERROR",
    )
    assert parsed("classify", "x.jpg", "--config", "c.toml")[0] == Path("c.toml")
