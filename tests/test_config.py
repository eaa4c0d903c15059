"""The config file: strict validation with errors that name the key and the allowed values."""

from __future__ import annotations

import subprocess
import sys

import pytest

from device.config import Config, ConfigError, load
from tests.conftest import REPO, isolated_env


def write(tmp_path, text: str):
    p = tmp_path / "moodbox.toml"
    p.write_text(text)
    return p


def test_no_config_file_means_defaults(tmp_path, monkeypatch):
    monkeypatch.delenv("MOODBOX_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setattr("device.config.SYSTEM_CONFIG", tmp_path / "absent.toml")
    config = load()
    assert config == Config()
    assert config.camera.source == "auto" and config.web.port == 8080 and config.player.kind == "auto"


def test_valid_file_is_read(tmp_path):
    config = load(write(tmp_path, '[camera]\nsource = "demo"\n[mood]\ndwell_seconds = 5\n[web]\nport = 9000\n'))
    assert (config.camera.source, config.mood.dwell_seconds, config.web.port) == ("demo", 5.0, 9000)


def test_unknown_key_is_named_with_the_allowed_keys(tmp_path):
    with pytest.raises(ConfigError) as err:
        load(write(tmp_path, '[camera]\nsorce = "demo"\n'))
    msg = str(err.value)
    assert "[camera] sorce: unknown key" in msg
    assert "source" in msg and "replay_path" in msg
    assert str(tmp_path / "moodbox.toml") in msg


def test_unknown_section_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"speakers: unknown key; allowed here: camera, faces"):
        load(write(tmp_path, "[speakers]\nname = 1\n"))


def test_bad_choice_lists_the_allowed_values(tmp_path):
    with pytest.raises(ConfigError) as err:
        load(write(tmp_path, '[camera]\nsource = "webcam"\n'))
    assert "[camera] source = 'webcam'" in str(err.value)
    assert "'auto', 'picamera2', 'v4l2', 'replay' or 'demo'" in str(err.value)


def test_out_of_range_number_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"\[mood\] dwell_seconds = -1: Input should be greater than or equal to 0"):
        load(write(tmp_path, "[mood]\ndwell_seconds = -1\n"))


def test_wrong_type_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"\[web\] port = 'eighty'"):
        load(write(tmp_path, '[web]\nport = "eighty"\n'))


def test_all_problems_are_reported_at_once(tmp_path):
    with pytest.raises(ConfigError, match="2 problem"):
        load(write(tmp_path, '[camera]\nsource = "x"\n[faces]\nmax_faces = 0\n'))


def test_broken_toml_names_the_line(tmp_path):
    with pytest.raises(ConfigError, match=r"not valid TOML .*line 2"):
        load(write(tmp_path, '[camera]\nsource = "demo\n'))


def test_explicit_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load(tmp_path / "nope.toml")


def test_environment_variable_points_at_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("MOODBOX_CONFIG", str(write(tmp_path, "[web]\nport = 9123\n")))
    assert load().web.port == 9123


@pytest.mark.parametrize("where", ["before the command", "after the command"])
def test_cli_refuses_bad_config_with_exit_78_and_the_key(tmp_path, where):
    bad = write(tmp_path, "[mood]\nhysterisis = 0.2\n")
    option = ["--config", str(bad)]
    argv = [*option, "replay", "demo"] if where == "before the command" else ["replay", "demo", *option]
    result = subprocess.run(
        [sys.executable, "-m", "device", *argv],
        cwd=REPO,
        env=isolated_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 78
    assert "[mood] hysterisis: unknown key" in result.stderr
    assert "hysteresis" in result.stderr
    assert "Traceback" not in result.stderr


def test_extra_page_names_must_be_host_names(tmp_path):
    assert load(write(tmp_path, '[web]\nextra_names = ["moodbox.lan"]\n')).web.extra_names == ["moodbox.lan"]
    with pytest.raises(ConfigError, match=r"\[web\] extra_names, entry 2 = 'evil example/': not a host name"):
        load(write(tmp_path, '[web]\nextra_names = ["moodbox.lan", "evil example/"]\n'))


def test_the_spotify_client_id_has_one_rule_for_the_file_and_the_page(tmp_path):
    """`client_id = "abc"` is refused in the file as on the page; a pasted ID with spaces around it is taken."""
    from device.settings import Settings, SettingsBook, SettingsError
    from device.store import Store

    good = "0123456789abcdef0123456789ABCDEF"
    assert load(write(tmp_path, f'[spotify]\nclient_id = " {good}\\n"\n')).spotify.client_id == good
    for bad in ("abc", good[:-1], good + "0", "0123456789abcdef0123456789abcdeg"):
        with pytest.raises(ConfigError, match=r"\[spotify\] client_id = .*: not a Spotify Client ID: it is 32 letters"):
            load(write(tmp_path, f'[spotify]\nclient_id = "{bad}"\n'))
        book = SettingsBook(Store(tmp_path / f"{bad}.db"), Config())
        with pytest.raises(SettingsError) as refused:
            book.update({"spotify_client_id": bad})
        assert refused.value.problems["spotify_client_id"].startswith("not a Spotify Client ID: it is 32 letters")
    assert Settings(spotify_client_id=f"  {good} ").spotify_client_id == good  # pasted with a leading space


def test_the_mqtt_client_id_is_explained_as_itself(tmp_path):
    with pytest.raises(ConfigError, match=r"\[mqtt\] client_id = 'a b': use at most 64 letters, digits"):
        load(write(tmp_path, "[mqtt]\nclient_id = 'a b'\n"))
