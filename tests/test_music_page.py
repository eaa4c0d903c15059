"""The music on the page, end to end: the real daemon against the loopback Spotify, its API over real HTTP, and
headless Chromium at 390x844 (the heart, the slider, "Try it", plays in History), audited by axe-core.

Screenshots of the Now card, History and the Settings music section, light and dark, go to artifacts/screenshots/music/.
"""

from __future__ import annotations

import sqlite3
import time

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import ARTIFACTS, DaemonProcess, free_port, isolated_env
from tests.fake_spotify import FakeSpotify, landing
from tests.test_phone_page import LAYOUT, audit, signed_in

SHOTS = ARTIFACTS / "screenshots" / "music"  # kept by CI; never /tmp, which the privacy test watches
PLAY_COLUMNS = {
    "id", "started", "mood", "uri", "track", "artist", "cover", "source", "source_key", "why", "preview", "ended",
    "ending", "listened",
}  # fmt: skip
expect.set_options(timeout=15_000)


def until(check, timeout: float = 20.0, every: float = 0.2):
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > end:
            return value
        time.sleep(every)


@pytest.fixture(scope="module")
def fake():
    with FakeSpotify() as f:
        yield f


@pytest.fixture(scope="module")
def box(tmp_path_factory, fake):
    """A daemon with Spotify connected (the page's paste-back flow) and the Living Room speaker chosen."""
    tmp = tmp_path_factory.mktemp("music")
    cfg = tmp / "moodbox.toml"
    cfg.write_text(
        f'[camera]\nsource = "demo"\n[spotify]\nclient_id = "{fake.client_id}"\nspeaker = "Living Room"\n'
        f'accounts_url = "{fake.url}"\napi_url = "{fake.api_url}"\nredirect_port = {free_port()}\n'
    )
    d = DaemonProcess(tmp, ["--config", str(cfg)], isolated_env(tmp))
    d.wait_healthy()
    http = d.login()
    url = http.post(d.base + "/api/spotify/connect", timeout=10).json()["url"]

    landed = landing(url)
    assert http.post(d.base + "/api/spotify/finish", json={"url": landed}, timeout=10).json()["state"] == "connected"
    d.http = http
    yield d
    assert d.stop() == 0, d.log()[-3000:]


def state(box) -> dict:
    return box.http.get(box.base + "/api/state", timeout=5).json()


def plays(box) -> list[dict]:
    return box.http.get(box.base + "/api/plays?limit=100", timeout=5).json()["plays"]


def try_music(box, mood: str) -> dict:
    """Settings' "Try it", and the music it starts (the state once a track of that mood plays)."""
    before = (state(box)["playing"] or {}).get("started_at")
    assert box.http.post(box.base + "/api/music/try", json={"mood": mood}, timeout=5).json() == {
        "ok": True,
        "mood": mood,
    }
    playing = until(
        lambda: (p := state(box)["playing"]) and p["mood"] == mood and p["uri"] and p["started_at"] != before and p
    )
    assert playing, f"no {mood} music started: {state(box)['autoplay']}"
    return playing


def test_plays_likes_volume_and_delete_my_history_over_the_api(box, fake):
    http, base = box.http, box.base
    playing = try_music(box, "happy")
    assert (
        playing["why"] == "try"
        and playing["why_line"] == "Because you tapped Try it for happy {ago} · from “feel good pop”"
    )
    first = plays(box)[0]
    assert (first["mood"], first["why"], first["uri"], first["ended"]) == ("happy", "try", playing["uri"], None)

    assert http.post(base + "/api/skip", timeout=10).json() == {"ok": True}
    newest, skipped = plays(box)[:2]
    assert skipped["ending"] == "skipped-page" and skipped["ended_as"] == "skipped on the page"
    assert skipped["listened"] < 30 and newest["why"] == "skip" and newest["ended"] is None

    liked = http.post(base + "/api/like", json={"liked": True}, timeout=10).json()
    assert liked == {
        "liked": True,
        "mood": "happy",
        "track": newest["track"],
        "saved": "saved to “Moodbox · Happy” in Spotify",
    }
    (made,) = [p for p in fake.playlists.values() if p["name"] == "Moodbox · Happy"]
    assert [t["uri"] for t in made["tracks"]] == [newest["uri"]] and made["public"] is False
    shown = until(lambda: (p := state(box)["playing"])["liked"] and p)
    assert shown["why_line"].endswith("· after a skip · you liked this")

    assert http.post(base + "/api/volume", json={"percent": 30}, timeout=10).json() == {"percent": 30}
    assert fake.devices[1]["volume_percent"] == 30 and state(box)["volume"]["percent"] == 30

    music = http.get(base + "/api/music", timeout=5).json()
    assert music["playlists"] == "saving"
    assert music["moods"]["happy"] == {
        "music": 'Spotify search "feel good pop"',
        "likes": 1,
        "skipped": 1,
        "suggest": None,
        "playlist": "Moodbox · Happy",
    }
    assert http.post(base + "/api/music/forget-skips", json={"mood": "happy"}, timeout=5).json()["forgotten"] == 1

    # Privacy: a play is a track's names, cover address and times, nothing else; "Delete my history" takes them all.
    with sqlite3.connect(box.state_dir / "moodbox.db") as db:
        assert {r[1] for r in db.execute("PRAGMA table_info(plays)")} == PLAY_COLUMNS
        assert {r[1] for r in db.execute("PRAGMA table_info(taste)")} == {
            "mood",
            "uri",
            "track",
            "artist",
            "liked",
            "skipped",
        }
    assert http.delete(base + "/api/history", timeout=10).json()["deleted"] >= 2
    assert http.get(base + "/api/music", timeout=5).json()["moods"]["happy"]["likes"] == 0
    with sqlite3.connect(box.state_dir / "moodbox.db") as db:
        assert db.execute("SELECT count(*) FROM plays WHERE started < ?", (time.time() - 2,)).fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM taste").fetchone()[0] == 0
    assert not state(box)["playing"]["liked"]
    fake.devices[1]["volume_percent"] = 35
    # Still followed after the delete: a skip in the Spotify app is the next play.
    fake.skip_in_app()
    now = fake.now_playing()["uri"]
    assert until(lambda: plays(box) and plays(box)[0]["uri"] == now and plays(box)[0]["why"] == "skip")
    assert http.post(base + "/api/music/forget-skips", json={"mood": "happy"}, timeout=5).json()["forgotten"] == 1


@pytest.mark.parametrize(
    ("method", "path", "payload", "problem"),
    [
        ("POST", "/api/volume", {"percent": 101}, "from 0 to 100"),
        ("POST", "/api/volume", {"percent": "30"}, "whole number"),
        ("POST", "/api/volume", {"percent": True}, "whole number"),
        ("POST", "/api/volume", {"percent": 30.5}, "whole number"),
        ("POST", "/api/volume", {}, "percent"),
        ("POST", "/api/like", {"liked": "yes"}, '"liked": true'),
        ("POST", "/api/like", {"liked": True, "mood": "sad"}, '"liked": true'),
        ("POST", "/api/music/try", {"mood": "ecstatic"}, "one of angry, disgust"),
        ("POST", "/api/music/forget-skips", {}, "one of angry, disgust"),
        ("GET", "/api/plays?limit=0", None, "from 1 to 100"),
        ("GET", "/api/plays?limit=abc", None, "whole numbers"),
        ("GET", "/api/plays?before=-3", None, "at least 0"),
    ],
)
def test_bad_music_requests_are_refused_by_name(box, method, path, payload, problem):
    r = box.http.request(method, box.base + path, json=payload, timeout=5)
    assert r.status_code == 400 and problem in r.json()["error"], r.text


# -- in the browser, at 390x844 -------------------------------------------------------------------------------------
def shot(page: Page, section: str, name: str) -> None:
    """The phone's screen (390x844) with the section at its top."""
    page.evaluate("document.getElementById('toast').hidden = true")
    page.locator(section).evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(100)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def check_layout(page: Page, where: str) -> list[str]:
    layout = page.evaluate(LAYOUT)
    problems = [f"{where}: {v}" for v in audit(page)]
    problems += [f"{where}: target {s}" for s in layout["small"]]
    if layout["sideways"] > 0:
        problems.append(f"{where}: scrolls sideways by {layout['sideways']} px")
    return problems


def test_the_heart_the_slider_try_it_and_plays_in_history(browser, box, fake):
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    for scheme in ("light", "dark"):
        page = signed_in(browser, box.base, scheme=scheme)
        try:
            # Settings: each mood's music with its likes and skips, and "Try it".
            page.goto("/settings#music")
            happy = page.locator('.music-row[data-mood="happy"]')
            expect(happy.locator(".taste-line")).to_contain_text("No likes or early skips yet")
            before = len(fake.calls("PUT", "/v1/me/player/play"))
            happy.locator(".try").click()
            expect(page.locator("#toast")).to_contain_text("Playing the happy music now")
            assert until(lambda before=before: len(fake.calls("PUT", "/v1/me/player/play")) > before, 10)
            shot(page, "#volume-night", f"settings-volume-{scheme}")

            # Now: the song, why it plays, the heart and the slider.
            page.goto("/")
            expect(page.locator("#why-song")).to_contain_text("Because you tapped Try it for happy")
            heart = page.locator("#like")
            expect(heart).to_have_attribute("aria-pressed", "false")
            heart.click()
            expect(heart).to_have_attribute("aria-pressed", "true")
            expect(page.locator("#why-song")).to_contain_text("you liked this")
            expect(page.locator("#toast")).to_contain_text("Liked for happy")
            page.locator("#volume").fill("25")
            assert until(lambda: fake.devices[1]["volume_percent"] == 25, 10), fake.devices[1]
            expect(page.locator("#volume-out")).to_have_text("25%")
            expect(page.locator("#volume-cap")).to_contain_text(
                "From 21:00 to 07:00 Moodbox starts music no louder than 40%"
            )
            problems += check_layout(page, f"{scheme} /")
            shot(page, "section[aria-labelledby=playing-title]", f"now-{scheme}")

            # History: the plays, newest first, with why they started.
            page.goto("/history")
            first = page.locator("#plays li").first
            expect(first).to_contain_text("happy")
            expect(first).to_contain_text("you tapped Try it for happy")
            problems += check_layout(page, f"{scheme} /history")
            shot(page, "section[aria-labelledby=plays-title]", f"history-{scheme}")

            # Settings again: the like is counted for happy, and in its playlist.
            page.goto("/settings#music")
            expect(happy.locator(".taste-line")).to_have_text("1 song liked (also in “Moodbox · Happy” in Spotify)")
            problems += check_layout(page, f"{scheme} /settings")
            shot(page, '.music-row[data-mood="happy"]', f"settings-music-{scheme}")
            page.goto("/")
            heart.click()  # unliked again: the next run of the loop starts as this one did
            expect(heart).to_have_attribute("aria-pressed", "false")
        finally:
            page.context.close()
    assert problems == []


def test_a_speaker_that_refuses_volume_is_said_so_once(browser, box, fake):
    page = signed_in(browser, box.base)
    try:
        try_music(box, "sad")
        page.goto("/")
        expect(page.locator("#volume-row")).to_be_visible()
        fake.refuse_volume.add("dev-living")
        page.locator("#volume").fill("60")
        expect(page.locator("#volume-note")).to_have_text(
            "Living Room does not let apps change its volume: use its own buttons or the Spotify app."
        )
        expect(page.locator("#volume-row")).to_be_hidden()
        asked = len(fake.calls("PUT", "/v1/me/player/volume"))
        loud = {"kind": "search", "value": "hard rock anthems", "volume": 50}  # angry starts at its own volume...
        assert box.http.patch(box.base + "/api/settings", json={"music": {"angry": loud}}, timeout=5).ok
        try_music(box, "angry")
        assert len(fake.calls("PUT", "/v1/me/player/volume")) == asked  # ...but this speaker is not asked again
        assert not [e for e in state(box)["errors"] if "volume" in e["message"]]  # a fact, not an error
        shot(page, "section[aria-labelledby=playing-title]", "now-no-volume-control")
    finally:
        fake.refuse_volume.clear()
        box.http.patch(
            box.base + "/api/settings", json={"music": {"angry": {"kind": "search", "value": "hard rock anthems"}}}
        )
        page.context.close()


def test_without_spotify_likes_and_the_volume_say_why(box):
    """Last in this file: it disconnects Spotify. The preview player records what it would play."""
    http, base = box.http, box.base
    http.post(base + "/api/spotify/disconnect", timeout=5)
    for path, payload in (("/api/like", {"liked": True}), ("/api/volume", {"percent": 20})):
        r = http.post(base + path, json=payload, timeout=5)
        assert r.status_code == 409 and r.json()["state"] in ("nothing-to-like", "preview"), r.text
    assert "Spotify" in http.post(base + "/api/like", json={"liked": True}, timeout=5).json()["error"]
    http.post(base + "/api/music/try", json={"mood": "fear"}, timeout=5)
    # The disconnect's own preview of the room's mood may be recorded first: wait for the newest to be the one tried.
    would = until(lambda: (p := plays(box)[0])["preview"] and p["mood"] == "fear" and p) or plays(box)[0]
    assert would["mood"] == "fear" and would["uri"] == "" and would["source"] == 'Spotify search "calm ambient piano"'
    assert http.get(base + "/api/music", timeout=5).json()["playlists"] == "off"
