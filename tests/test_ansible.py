"""Provisioning without hardware: ansible-lint (production profile), a syntax check, a --check --diff run of
the whole playbook against this machine, and a real, repeated run of the firmware role on a copy of
config.txt to show it is idempotent and reboots only on change."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import REPO

ANSIBLE = REPO / "deploy" / "ansible"
BIN = REPO / ".venv" / "bin"


def run(args: list[str], tmp_path, **extra_env) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "MOODBOX_TEST_DIR": str(tmp_path),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        **extra_env,
    }
    return subprocess.run(args, cwd=ANSIBLE, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture
def pi_config(tmp_path):
    (tmp_path / "config.txt").write_text("# Raspberry Pi config\narm_64bit=1\n")
    return tmp_path / "config.txt"


def test_ansible_lint_production_profile_passes(tmp_path):
    r = run([str(BIN / "ansible-lint"), "--profile", "production", "--nocolor", "site.yml"], tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Profile 'production' was required, and it passed" in r.stdout + r.stderr


def test_syntax_check(tmp_path):
    r = run([str(BIN / "ansible-playbook"), "-i", "tests/inventory.yml", "site.yml", "--syntax-check"], tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


def test_check_diff_run_against_localhost_has_no_failed_tasks(tmp_path, pi_config):
    r = run([str(BIN / "ansible-playbook"), "-i", "tests/inventory.yml", "site.yml", "--check", "--diff"], tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "failed=0" in out and "unreachable=0" in out
    assert "+# BEGIN MOODBOX" in out and "+camera_auto_detect=1" in out  # the diff shows the firmware block
    assert pi_config.read_text() == "# Raspberry Pi config\narm_64bit=1\n"  # --check changed nothing


def test_pinned_camera_on_a_pi5_connector(tmp_path, pi_config):
    r = run(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            "tests/inventory.yml",
            "site.yml",
            "--check",
            "--diff",
            "--tags",
            "camera",
            "-e",
            "moodbox_camera=imx708",
            "-e",
            "moodbox_camera_connector=cam0",
        ],
        tmp_path,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "+camera_auto_detect=0" in r.stdout and "+dtoverlay=imx708,cam0" in r.stdout


def test_firmware_role_is_idempotent_and_reboots_only_on_change(tmp_path, pi_config):
    cmd = [str(BIN / "ansible-playbook"), "-i", "tests/inventory.yml", "site.yml", "--tags", "camera"]
    first = run(cmd, tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "RUNNING HANDLER [camera : Reboot for firmware settings]" in first.stdout
    text = pi_config.read_text()
    assert text.startswith("# Raspberry Pi config\narm_64bit=1\n# BEGIN MOODBOX\n") and text.endswith("# END MOODBOX\n")
    assert (tmp_path / "system.conf.d" / "moodbox-watchdog.conf").exists()
    second = run(cmd, tmp_path)
    assert second.returncode == 0 and "changed=0" in second.stdout, second.stdout
    assert "RUNNING HANDLER" not in second.stdout
    assert pi_config.read_text() == text


def test_no_plain_secrets_in_the_repository():
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True).stdout.split()
    assert "deploy/ansible/group_vars/all/vault.yml" not in tracked
    main = (ANSIBLE / "group_vars" / "all" / "main.yml").read_text()
    assert "vault_spotify_client_id" in main and "vault_youtube_api_key" in main
    assert "vault_mqtt_password" in main  # the MQTT broker's password too
