"""setup.sh and the firmware block it shares with Ansible."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

SCRIPT = REPO / "deploy" / "firmware_block.py"


def block(target, source):
    return subprocess.run([sys.executable, str(SCRIPT), str(target), str(source)], capture_output=True, text=True)


def test_firmware_block_is_idempotent_and_keeps_the_rest(tmp_path):
    cfg = tmp_path / "config.txt"
    cfg.write_text("# user settings\ndtparam=i2c_arm=on\n[pi4]\narm_boost=1\n[all]\n")
    first = block(cfg, REPO / "firmware_config" / "config.txt")
    assert first.returncode == 10 and "reboot" in first.stdout
    text = cfg.read_text()
    assert text.startswith("# user settings\ndtparam=i2c_arm=on\n[pi4]\narm_boost=1\n[all]\n# BEGIN MOODBOX\n")
    assert "camera_auto_detect=1" in text and text.endswith("# END MOODBOX\n")
    second = block(cfg, REPO / "firmware_config" / "config.txt")
    assert second.returncode == 0 and cfg.read_text() == text
    newer = tmp_path / "newer.txt"
    newer.write_text("camera_auto_detect=0\ndtoverlay=imx708,cam0\n")
    assert block(cfg, newer).returncode == 10
    updated = cfg.read_text()
    assert updated.count("# BEGIN MOODBOX") == 1 and "dtoverlay=imx708,cam0" in updated
    assert "camera_auto_detect=1" not in updated and updated.startswith("# user settings")
    assert (tmp_path / "config.txt.bak").read_text() == text


def test_setup_sh_is_valid_bash_and_refuses_unknown_modes():
    assert subprocess.run(["bash", "-n", str(REPO / "setup.sh")]).returncode == 0
    r = subprocess.run([str(REPO / "setup.sh"), "bogus"], capture_output=True, text=True)
    assert r.returncode == 64 and "usage:" in r.stderr


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    readme = (REPO / "README.md").read_text()
    assert "./setup.sh test" in ci and "./setup.sh test" in readme and "./setup.sh run" in readme


def test_setup_left_the_moodbox_command():
    r = subprocess.run([str(REPO / ".venv" / "bin" / "moodbox"), "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "classify" in r.stdout and "replay" in r.stdout and "run" in r.stdout


def test_readme_numbers_are_filled_in():
    readme = (REPO / "README.md").read_text()
    assert "MEASURED_" not in readme, "a measured number is missing from the README"
