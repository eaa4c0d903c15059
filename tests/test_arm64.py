"""The device code as an arm64 process on Raspberry Pi OS's Debian releases, Bookworm and Trixie, under qemu.

The slow test runs deploy/arm64/check.py, which builds both userlands from Debian's packages, installs the runtime
dependencies as aarch64 wheels with setup.sh's pins, and compares `moodbox classify` and `moodbox replay` with this
machine's results. Downloads are cached in ${XDG_CACHE_HOME:-~/.cache}/moodbox-arm64: minutes cold, then quicker.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from deploy.arm64 import compare, debian, wheels
from deploy.arm64._run import CheckFailed
from tests.conftest import REPO


def major_minor(version: str) -> tuple[int, int]:
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_classify_and_replay_as_arm64_match_this_machine_on_bookworm_and_trixie(tmp_path):
    report = tmp_path / "arm64.json"
    r = subprocess.run(
        [sys.executable, "-m", "deploy.arm64.check", "--report", str(report)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1700,
    )
    print(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr
    result = json.loads(report.read_text())
    bookworm, trixie = result["releases"]["bookworm"], result["releases"]["trixie"]
    assert major_minor(bookworm["versions"]["python"]) == (3, 11)
    assert major_minor(trixie["versions"]["python"]) == (3, 13)
    # setup.sh's Bookworm pins hold on arm64; Trixie gets numpy 2 and the newest OpenCV 4.
    assert major_minor(bookworm["versions"]["numpy"]) < (2, 0)
    assert major_minor(bookworm["versions"]["opencv"]) <= (4, 11)
    assert major_minor(trixie["versions"]["numpy"]) >= (2, 0)
    x86 = result["x86_64"]
    for release in (bookworm, trixie):
        assert release["versions"]["machine"] == "aarch64"
        [justin] = release["classify"]
        [face] = justin["faces"]
        [face_x86] = x86["classify"][0]["faces"]
        assert face["emotion"] == "happy"
        assert face["box"] == face_x86["box"]
        assert compare.probability_gap(face, face_x86) <= 0.02
        assert release["replay"]["frames"] == x86["replay"]["frames"] > 0
        assert [c["mood"] for c in release["replay"]["timeline"]] == [c["mood"] for c in x86["replay"]["timeline"]]


def test_the_pins_are_read_from_setup_sh():
    assert wheels.setup_pins(REPO) == {"bookworm": ["numpy<2", "opencv-python-headless<=4.11.0.86"]}
    assert "ai-edge-litert>=1.2" in wheels.requirements(REPO)


def test_pins_written_another_way_in_setup_sh_are_refused_with_the_form_to_use(tmp_path):
    (tmp_path / "setup.sh").write_text('echo "numpy<2" >"$constraints"\n')
    with pytest.raises(CheckFailed, match=r'if \[ "\$codename" = RELEASE \]'):
        wheels.setup_pins(tmp_path)


def test_a_package_without_an_aarch64_wheel_fails_with_its_name(tmp_path):
    with pytest.raises(CheckFailed, match=r"no wheel of tensorflow-cpu==2\.21\.0 for Python 3\.11, aarch64"):
        wheels.resolve(["tensorflow-cpu==2.21.0"], [], "3.11", "2.36", "aarch64", tmp_path)


def test_every_manylinux_tag_up_to_the_glibc_is_offered():
    options = wheels.target_options("3.13", "2.41", "aarch64")
    platforms = {options[i + 1] for i, o in enumerate(options) if o == "--platform"}
    assert {"manylinux_2_17_aarch64", "manylinux_2_27_aarch64", "manylinux_2_41_aarch64"} <= platforms
    assert "manylinux_2_42_aarch64" not in platforms
    assert options[options.index("--abi") + 1] == "cp313"


def test_a_version_that_differs_from_x86_is_named():
    def resolved(**versions):
        return {n: wheels.Wheel(n, v, f"https://files/{n}-{v}.whl") for n, v in versions.items()}

    arm = resolved(numpy="1.26.4", **{"ai-edge-litert": "1.4.0"})
    x86 = resolved(numpy="1.26.4", **{"ai-edge-litert": "2.3.0", "ml-dtypes": "0.5.4"})
    assert wheels.differences(arm, x86) == [
        "ai-edge-litert: aarch64 1.4.0, x86-64 2.3.0",
        "ml-dtypes: aarch64 not installed, x86-64 0.5.4",
    ]


def test_results_that_drift_from_x86_are_problems():
    face = {"emotion": "happy", "box": [97, 106, 177, 177], "probabilities": {"happy": 0.76, "neutral": 0.24}}
    moved = {**face, "box": [101, 106, 177, 177], "probabilities": {"happy": 0.70, "neutral": 0.30}}
    problems = compare.classify([{"image": "j.jpg", "faces": [moved]}], [{"image": "j.jpg", "faces": [face]}])
    assert len(problems) == 2 and "box [101, 106, 177, 177]" in problems[0] and "0.060" in problems[1]
    replay = {"frames": 25, "frames_with_faces": 25, "final_mood": "sad", "timeline": [{"mood": "sad", "t": 1.21}]}
    late = {**replay, "timeline": [{"mood": "sad", "t": 1.9}]}
    assert compare.replay(replay, replay) == []
    assert compare.replay(late, replay) == ["replay: sad at 1.9 s on arm64, 1.21 s on x86-64"]


def test_the_arm64_apt_uses_this_machines_debian_mirrors(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n"
    )
    (tmp_path / "sources.list.d" / "vendor.list").write_text("deb https://packages.vendor.example/apt cloud-sdk main\n")
    assert debian.mirrors(tmp_path) == ("http://mirror.example/debian", "http://mirror.example/debian-security")
    assert debian.mirrors(tmp_path / "none") == (debian.DEBIAN, debian.SECURITY)


def test_the_readme_says_what_moodbox_replay_gives_on_the_arm64_check_clip(tmp_path):
    """The README quotes this machine's `moodbox replay` of the clip the arm64 check cuts: the sentence must say
    what the command says today, with the shipped model."""
    from deploy.arm64 import check

    clip = check.first_seconds(
        check.MEDIA / "phone_smile.mp4", check.CLIP_SECONDS, check.CLIP_STEP, tmp_path / "phone_smile_start.mp4"
    )
    env = check.command_env(tmp_path / "home")
    replay = check.json_from(check.moodbox([sys.executable], env, "replay", str(clip), "--json", what="replay"))
    said = f"x86-64 gives {replay['frames_with_faces']} frames with a face, {check.changes(replay)} on the same clip"
    readme = " ".join((REPO / "README.md").read_text().split())
    assert said in readme, f"README.md should say: {said}"
