"""A normal, non-editable install: build the wheel, install it into a fresh venv, run `moodbox classify` from a
folder far from the checkout. The model, its metadata, the detector and the demo feed must come from the wheel.

Nothing is downloaded: the wheel is built with the checkout's own setuptools (--no-build-isolation), installed
with --no-deps --no-index, and the fresh venv borrows the checkout venv's site-packages for the dependencies
through a .pth line (which adds the folder to sys.path without running the editable install's hooks in it).
"""

from __future__ import annotations

import json
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import REPO, isolated_env

SKIP = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "artifacts", "checkpoints", "__pycache__", ".*_cache", ".whl"
)


def run(*args: str, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=120, **kw)
    assert r.returncode == 0, f"{args} exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def test_the_installed_wheel_classifies_a_photo_without_the_source_tree(tmp_path, media):
    source = tmp_path / "source"  # a copy, so the build's own build/ folder never lands in the shared checkout
    shutil.copytree(REPO, source, ignore=SKIP)
    wheels = tmp_path / "wheels"
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source))
    (wheel,) = wheels.glob("moodbox-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in (
        "device/assets/model/emotion_vgg16_int8.tflite",
        "device/assets/model/emotion_vgg16_int8.json",
        "device/assets/blazeface/face_detection_full_range_sparse.tflite",
        "device/assets/blazeface/face_detection_short_range.tflite",
        "device/assets/demo/faces.png",
        "web_ui/templates/now.html",
    ):
        assert shipped in names, f"{shipped} is not in the wheel"
    assert not any(n.startswith("models/") for n in names), "training code must not be installed"

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", str(venv))
    python = venv / "bin" / "python"
    purelib = Path(run(str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").stdout.strip())
    (purelib / "checkout-dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    run(sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel))

    away = tmp_path / "elsewhere"
    away.mkdir()
    env = {k: v for k, v in isolated_env(tmp_path).items() if k != "PYTHONPATH"}
    where = run(
        str(python),
        "-c",
        "import device, device.config; print(device.__file__); print(device.config.Emotion().model_path)",
        cwd=away,
        env=env,
    ).stdout.split()
    assert Path(where[0]).is_relative_to(purelib), f"device was imported from {where[0]}, not the installed wheel"
    assert Path(where[1]) == purelib / "device" / "assets" / "model" / "emotion_vgg16_int8.tflite"

    r = subprocess.run(
        [str(venv / "bin" / "moodbox"), "classify", str(media / "justin.jpg"), "--json"],
        cwd=away,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    (justin,) = json.loads(r.stdout)
    assert [f["emotion"] for f in justin["faces"]] == ["happy"]
