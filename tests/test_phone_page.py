"""The phone page tells one clear story: real headless Chromium at 390x844 (and 1280x800) against a real daemon.

Each test gets its own signed-in browser context from a fixture and puts back what it changes, so any test passes
alone (`-k`) and in any order. axe-core (the npm package, fetched with `npm pack` into a cache the first time and
never shipped) audits every page, signed in and out, light and dark; the page's own measurements check sideways
scrolling, touch targets, titles and headings. Screenshots go to artifacts/screenshots/phone-*.png.
"""

from __future__ import annotations

import os
import re
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import ARTIFACTS, PASSWORD, DaemonProcess, free_port, isolated_env
from tests.fake_spotify import FakeSpotify
from tests.test_browser import COVER_PNG, api, sign_in_with_spotify

SHOTS = ARTIFACTS / "screenshots"
AXE_VERSION = "4.10.3"
AXE_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "moodbox-tests" / f"axe-core-{AXE_VERSION}"
CLIENT_ID = "0123456789abcdef0123456789abcdef"
PAGES = ("/", "/history", "/videos", "/settings", "/system")
PHONE = {"width": 390, "height": 844}
expect.set_options(timeout=15_000)


def axe_source() -> str:
    """axe.min.js from the npm registry, cached; a clear failure when it cannot be had."""
    script = AXE_CACHE / "package" / "axe.min.js"
    if not script.exists():
        AXE_CACHE.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["npm", "pack", f"axe-core@{AXE_VERSION}", "--silent"],
            cwd=AXE_CACHE,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"could not fetch axe-core with npm ({done.stderr.strip()}): is npm installed?"
        with tarfile.open(AXE_CACHE / f"axe-core-{AXE_VERSION}.tgz") as tar:
            tar.extract("package/axe.min.js", AXE_CACHE, filter="data")
    return script.read_text()


@pytest.fixture(scope="module")
def fake():
    with FakeSpotify() as f:
        f.client_id = CLIENT_ID  # a real Client ID's form, so the page accepts it
        yield f


def start_box(tmp: Path, fake: FakeSpotify, port: int | None = None, env: dict | None = None) -> DaemonProcess:
    cfg = tmp / "moodbox.toml"
    if not cfg.exists():  # no client_id: the household sets Spotify up on the page
        cfg.write_text(f"""
[camera]
source = "demo"
[spotify]
accounts_url = "{fake.url}"
api_url = "{fake.api_url}"
redirect_port = {free_port()}
""")
    d = DaemonProcess(tmp, ["--config", str(cfg)], env or isolated_env(tmp), port=port)
    d.wait_healthy()
    return d


@pytest.fixture(scope="module")
def box(tmp_path_factory, fake):
    d = start_box(tmp_path_factory.mktemp("phone"), fake)
    d.login().close()  # the password is set once; each test signs its own browser in
    yield d
    d.stop()


def signed_in(browser: Browser, base: str, viewport: dict = PHONE, scheme: str = "dark") -> Page:
    phone = viewport["width"] < 600
    context = browser.new_context(
        viewport=viewport,
        device_scale_factor=2 if phone else 1,
        is_mobile=phone,
        has_touch=phone,
        base_url=base,
        color_scheme=scheme,
    )
    context.route("https://i.scdn.co/**", lambda route: route.fulfill(body=COVER_PNG, content_type="image/png"))
    page = context.new_page()
    page.goto("/login")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("body")).to_have_attribute("data-page", "now")
    return page


@pytest.fixture
def phone(browser, box):
    page = signed_in(browser, box.base)
    yield page
    page.context.close()


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"phone-{name}.png"), full_page=True)


# -- what the page measures of itself -------------------------------------------------------------------------------
LAYOUT = """() => {
  const visible = (el) => { const r = el.getBoundingClientRect(); const st = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && st.visibility !== "hidden" && !el.closest("[hidden]"); };
  const small = [];
  document.querySelectorAll("a[href], button, input, select, textarea, summary").forEach((el) => {
    if (!visible(el) || el.type === "hidden") return;
    const target = el.type === "checkbox" && el.closest("label") ? el.closest("label") : el;
    const r = target.getBoundingClientRect();
    if (el.classList.contains("skip")) return;  // off screen until focused
    if (r.width < 44 || r.height < 44) small.push((el.id || el.name || el.textContent.trim()).slice(0, 40) + " " +
      Math.round(r.width) + "x" + Math.round(r.height));
  });
  const clipped = [];  // text fields too narrow for what they hold ("hard rock ant" for "hard rock anthems")
  document.querySelectorAll("input[type=text]").forEach((el) => {
    if (visible(el) && el.value && el.scrollWidth > el.clientWidth) clipped.push(el.id + " " + JSON.stringify(el.value));
  });
  return { sideways: document.documentElement.scrollWidth - document.documentElement.clientWidth, clipped,
    h1: document.querySelectorAll("h1").length, title: document.title,
    skip: !!document.querySelector("a.skip[href='#main']"), small };
}"""


def audit(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now."""
    page.evaluate(axe_source())  # evaluated by the browser's debugger protocol: the page's CSP stays as it is
    found = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".filter((v) => v.impact === 'serious' || v.impact === 'critical')"
        ".map((v) => v.id + ': ' + v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', '))"
    )
    return found


def test_every_page_passes_the_audit_signed_in_and_out_light_and_dark(browser, box):
    problems: list[str] = []
    titles: set[str] = set()
    for scheme in ("dark", "light"):
        page = signed_in(browser, box.base, scheme=scheme)
        for path in PAGES:
            page.goto(path)
            page.wait_for_timeout(700)  # live state and settings arrive
            problems += [f"{scheme} {path} {v}" for v in audit(page)]
            layout = page.evaluate(LAYOUT)
            titles.add(layout["title"])
            problems += [f"{scheme} {path}: {n} h1" for n in [layout["h1"]] if n != 1]
            problems += [f"{scheme} {path}: no skip link" for ok in [layout["skip"]] if not ok]
            problems += [f"{scheme} {path}: target {s}" for s in layout["small"]]
            for width in (320, 390, 1280):
                page.set_viewport_size({"width": width, "height": 844})
                page.wait_for_timeout(100)
                at_width = page.evaluate(LAYOUT)
                if at_width["sideways"] > 0:
                    problems.append(f"{scheme} {path} scrolls sideways by {at_width['sideways']} px at {width} px")
                problems += [f"{scheme} {path} at {width} px: text cut off in {c}" for c in at_width["clipped"]]
            page.set_viewport_size(PHONE)
            if scheme == "light":
                shot(page, f"light{path.replace('/', '-') if path != '/' else '-now'}")
        # signed out: the sign-in page
        page.context.clear_cookies()
        page.goto("/login")
        problems += [f"{scheme} /login {v}" for v in audit(page)]
        layout = page.evaluate(LAYOUT)
        problems += [f"{scheme} /login: target {s}" for s in layout["small"]]
        titles.add(layout["title"])
        page.context.close()
    assert problems == []
    assert len(titles) == len(PAGES) + 1, f"page titles are not distinct: {sorted(titles)}"


def test_a_desktop_uses_its_width_with_the_tabs_at_the_side(browser, box):
    """At 1280 px the page is no phone-width column with a floating tab bar: the tabs are a rail at the left edge and
    the cards sit in two columns."""
    page = signed_in(browser, box.base, viewport={"width": 1280, "height": 800})
    for path in PAGES:
        page.goto(path)
        tabs = page.locator("nav.tabs").bounding_box()
        main = page.locator("main").bounding_box()
        assert tabs["x"] == 0 and tabs["height"] == 800 and tabs["width"] <= 220, f"{path}: tabs at {tabs}"
        assert main["x"] >= tabs["width"] and main["width"] >= 900, f"{path}: main at {main}"
    page.goto("/")
    expect(page.locator("#mood-card")).to_have_attribute("data-live", "live", timeout=40_000)
    mood, playing = page.locator("#mood-card").bounding_box(), page.locator("#playing").bounding_box()
    assert playing["x"] > mood["x"] + mood["width"] and playing["y"] < mood["y"] + mood["height"], (mood, playing)
    expect(page.locator("#mood-card .bar span")).not_to_have_css("width", "0px")
    shot(page, "desktop-now")
    page.goto("/settings")
    spotify, ignore = page.locator("#spotify").bounding_box(), page.locator("#ignore").bounding_box()
    assert ignore["x"] > spotify["x"] + spotify["width"], (spotify, ignore)  # the second column
    shot(page, "desktop-settings")
    page.context.close()


def test_the_now_page_reads_as_one_sentence(phone):
    expect(phone.locator("#mood-card")).to_have_attribute("data-live", "live", timeout=40_000)
    story = phone.locator("#story")
    expect(story).to_contain_text("Room: ")
    expect(phone.locator("#mood-why")).to_be_hidden()
    assert "Nobody Here" not in story.text_content()
    expect(phone.locator("#skip")).to_be_disabled()  # nothing to skip in the preview
    expect(phone.locator("#controls-why")).to_contain_text("Spotify")
    expect(phone).to_have_title("Now · Moodbox")
    shot(phone, "now-live")


def test_privacy_mode_greys_the_mood_and_says_why(phone):
    try:
        assert api(phone, "PATCH", "/api/settings", {"privacy_mode": True}).ok
        card = phone.locator("#mood-card")
        expect(card).to_have_attribute("data-live", "privacy")
        expect(phone.locator("#mood")).to_have_text("Camera off")
        expect(phone.locator("#mood-why")).to_contain_text("Privacy mode")
        expect(phone.locator("#confidence")).to_have_text("")  # no "73% sure" while the camera is off
        expect(phone.locator("#story")).to_contain_text("Camera off (privacy mode)")
        shot(phone, "now-privacy")
    finally:
        assert api(phone, "PATCH", "/api/settings", {"privacy_mode": False}).ok
    expect(phone.locator("#mood-card")).not_to_have_attribute("data-live", "privacy")


def test_a_failing_camera_greys_the_mood_and_says_why(phone):
    try:  # no webcam on this machine: the USB camera fails and is retried
        assert api(phone, "PATCH", "/api/settings", {"camera_source": "v4l2"}).ok
        expect(phone.locator("#mood-card")).to_have_attribute("data-live", "failing", timeout=30_000)
        expect(phone.locator("#mood")).to_have_text("No picture")
        expect(phone.locator("#mood-why")).to_contain_text("The camera is not working")
        expect(phone.locator("#faces")).to_have_text("not looking")
        shot(phone, "now-camera-failing")
    finally:
        assert api(phone, "PATCH", "/api/settings", {"camera_source": "demo"}).ok
    expect(phone.locator("#mood-card")).not_to_have_attribute("data-live", "failing", timeout=30_000)


def test_the_page_says_starting_until_the_camera_gives_a_picture(browser, fake, tmp_path):
    """A camera that has not delivered its first frame yet (here a stream whose writer has sent its header and
    holds back the frames until the test lets them go): the page says Moodbox is starting, not that the room is
    empty or that the camera failed, and turns live with the first frames."""
    import threading

    from benchmarks.pi_speed import FPS, HEIGHT, WIDTH, crowd_frames

    fifo = tmp_path / "camera.y4m"
    os.mkfifo(fifo)
    (tmp_path / "moodbox.toml").write_text(
        f'[camera]\nsource = "replay"\nreplay_path = "{fifo}"\nreplay_pace = "realtime"\nreplay_loop = false\n'
        f'[spotify]\naccounts_url = "{fake.url}"\napi_url = "{fake.api_url}"\nredirect_port = {free_port()}\n'
    )
    stop, first_frame = threading.Event(), threading.Event()

    def camera() -> None:  # a 640x480 stream at 15 fps, written like a camera delivers it
        grey, chroma = crowd_frames("happy", variants=1)[0].tobytes(), bytes([128]) * (WIDTH * HEIGHT // 2)
        try:
            with open(fifo, "wb") as f:  # returns once the daemon opens its end
                f.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
                f.flush()  # the stream has begun; OpenCV's open now waits for its first frame
                first_frame.wait()
                while not stop.is_set():
                    f.write(b"FRAME\n" + grey + chroma)
                    time.sleep(1 / FPS)
        except BrokenPipeError:
            pass  # the daemon stopped first

    writer = threading.Thread(target=camera, daemon=True)
    writer.start()
    d = start_box(tmp_path, fake)
    try:
        d.login().close()
        page = signed_in(browser, d.base)
        card = page.locator("#mood-card")
        expect(card).to_have_attribute("data-live", "starting")
        expect(page.locator("#mood-why")).to_contain_text("The camera is opening")
        expect(page.locator("#player-state")).not_to_contain_text("nobody")  # unknown yet, not an empty room
        expect(page.locator("#faces")).to_have_text("not looking")
        expect(page.locator("#camera")).to_have_text("starting")
        shot(page, "now-starting")
        first_frame.set()
        expect(card).not_to_have_attribute("data-live", "starting", timeout=30_000)
        expect(page.locator("#camera")).to_contain_text("live")
        expect(page.locator("#faces")).to_contain_text("5: ", timeout=30_000)
        page.context.close()
    finally:
        stop.set()
        first_frame.set()
        d.stop()


def test_the_countdown_to_the_next_change(phone):
    """After a change, the cooldown holds the next one: the sentence counts down to it, second by second."""
    read = (
        "() => { const c = document.querySelector('#story .count');"
        " return [document.querySelector('#story').textContent, c ? c.textContent : null]; }"
    )

    def secs(t: str) -> int:
        m, s = t.split(":")
        return int(m) * 60 + int(s)

    # The demo room changes its mood within a minute or so, and may change it back before the cooldown ends, which
    # rightly cancels the pending switch. So the line and its countdown are read together, and a countdown that is
    # cancelled before the second reading sends the test looking for the next one.
    seen, deadline = [], time.monotonic() + 180
    while time.monotonic() < deadline:
        line, first = phone.evaluate(read)
        if first is None or secs(first) < 5:
            phone.wait_for_timeout(500)
            continue
        assert " → " in line and line.endswith(first), line
        phone.wait_for_timeout(2200)
        line_later, later = phone.evaluate(read)
        if later is None:
            seen.append((line, line_later))  # cancelled or replaced: the room changed its mind
            continue
        assert " → " in line_later, line_later
        assert secs(later) < secs(first), (first, later)
        shot(phone, "now-countdown")
        return
    pytest.fail(f"no countdown of 5 s or more that lasted 2 s within 3 minutes; cancelled ones: {seen}")


def test_settings_refuse_an_empty_search_and_hide_what_cannot_work(phone):
    phone.goto("/settings")
    form = phone.locator("#behaviour-form")
    expect(form.locator("option[value=replay]")).to_have_count(0)  # no replay without a path field
    quiet = form.locator("input[name=quiet_enabled]")
    if quiet.is_checked():
        quiet.uncheck()
    expect(form.locator("input[name=quiet_start]")).to_be_disabled()
    quiet.check()
    expect(form.locator("input[name=quiet_start]")).to_be_enabled()
    quiet.uncheck()
    row = phone.locator('.music-row[data-mood="happy"]')
    row.locator(".music-value").fill("   ")
    phone.click("#music-save")
    expect(row.locator(".field-error")).to_contain_text("Type what to search for")
    expect(phone.locator("#toast")).to_contain_text("Not saved")
    shot(phone, "settings-empty-search")
    refused = api(phone, "PATCH", "/api/settings", {"music": {"happy": {"kind": "search", "value": " "}}})
    assert refused.status == 400 and "search" in refused.json()["problems"]["music.happy"]
    row.locator(".music-value").fill("sunny funk")
    phone.click("#music-save")
    expect(phone.locator("#toast")).to_contain_text("Music saved")
    assert api(phone, "GET", "/api/settings").json()["music"]["happy"]["value"] == "sunny funk"
    api(phone, "PATCH", "/api/settings", {"music": {"happy": {"kind": "search", "value": "feel good pop"}}})


def test_a_face_that_is_not_a_person_is_ignored_from_the_settings_page(phone):
    """A TV or a poster: tap its face on the Settings page's view, and the box stops reading it; remove the area
    and it reads it again. The view is boxes from the live state, never a picture."""
    phone.goto("/settings")
    try:
        face = phone.locator("#room-map button.face").first
        face.wait_for(timeout=30000)  # the demo feed shows a face within its first scene
        expect(phone.locator("#room-map img, #room-map canvas")).to_have_count(0)
        face.click()
        expect(phone.locator("#toast")).to_contain_text("Faces there will be ignored")
        areas = api(phone, "GET", "/api/settings").json()["ignored_areas"]
        assert len(areas) == 1 and 0.05 < areas[0]["w"] < 0.9, areas
        expect(phone.locator("#map-faces")).to_contain_text("ignored", timeout=10000)
        state = api(phone, "GET", "/api/state").json()
        assert state["ignored_faces"] and state["faces"] == [], state["faces"]
        shot(phone, "settings-ignored-area")
        phone.goto("/")  # the Now page says a face is there but not read
        expect(phone.locator("#faces")).to_contain_text("none (+1 ignored)", timeout=10000)
        phone.goto("/settings")  # saved on the box, not in the page
        expect(phone.locator("#ignored-list")).to_contain_text("Area 1: ")
        expect(phone.locator("#room-map .area")).to_have_count(1)
        # dragging across the view marks a second area
        phone.locator("#room-map").scroll_into_view_if_needed()
        box = phone.locator("#room-map").bounding_box()
        phone.mouse.move(box["x"] + 4, box["y"] + 4)
        phone.mouse.down()
        phone.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3, steps=6)
        phone.mouse.up()
        expect(phone.locator("#room-map .area")).to_have_count(2)
        drawn = api(phone, "GET", "/api/settings").json()["ignored_areas"][1]
        assert drawn["x"] < 0.05 and drawn["y"] < 0.05 and 0.2 < drawn["w"] < 0.35, drawn
        phone.get_by_role("button", name="Remove area 1").click()
        phone.get_by_role("button", name="Remove area 1").click()
        expect(phone.locator("#ignored-list")).to_contain_text("No area is ignored")
        expect(phone.locator("#map-faces")).not_to_contain_text("ignored", timeout=15000)
    finally:
        api(phone, "PATCH", "/api/settings", {"ignored_areas": []})


def test_the_music_pauses_in_an_empty_room_and_plays_again_when_someone_is_back(phone):
    """Set on the Settings page; the room is emptied by ignoring the whole view (every demo face is "a poster")."""
    phone.goto("/settings")
    form = phone.locator("#behaviour-form")
    field = form.locator("input[name=pause_when_empty_minutes]")
    expect(field).to_have_value("0")  # off until the household asks for it
    field.fill("20")
    form.locator("button[type=submit]").click()
    expect(phone.locator("#toast")).to_have_text("Saved")
    assert api(phone, "GET", "/api/settings").json()["pause_when_empty_minutes"] == 20
    try:
        phone.goto("/")
        expect(phone.locator("#playing")).to_contain_text("Would play", timeout=60_000)
        everything = [{"x": 0, "y": 0, "w": 1, "h": 1}]
        assert api(phone, "PATCH", "/api/settings", {"ignored_areas": everything}).ok
        # "Nobody in view" after 30 s without a face; the 20 minutes count from then
        why = phone.locator("#mood-why")
        expect(why).to_contain_text("the music pauses in 19:", timeout=60_000)
        assert api(phone, "PATCH", "/api/settings", {"pause_when_empty_minutes": 0.02}).ok
        expect(phone.locator("#story")).to_have_text(
            "Nobody in view · would have paused the music: the room was empty", timeout=15_000
        )
        expect(why).to_have_text("Nobody in view: the music would be paused until someone is back.")
        expect(phone.locator("#playing")).to_contain_text("Would have paused ")
        shot(phone, "now-paused-empty-room")
        assert api(phone, "PATCH", "/api/settings", {"ignored_areas": []}).ok
        expect(phone.locator("#playing")).to_contain_text("Would play", timeout=60_000)
        expect(phone.locator("#story")).not_to_contain_text("paused")
    finally:
        api(phone, "PATCH", "/api/settings", {"pause_when_empty_minutes": 0, "ignored_areas": []})


def test_a_room_too_dark_to_read_says_so_and_holds_the_mood(browser, fake, tmp_path, media):
    """A replayed room: 10 s with the lights off (the face there, too dark to read), then 3 s lit, over and over."""
    import cv2
    import numpy as np

    grey = cv2.imread(str(media / "justin.jpg"), cv2.IMREAD_GRAYSCALE)
    noise = np.random.default_rng(0).normal(0.0, 4.0, grey.shape)
    dark = tmp_path / "lights-off.png"
    cv2.imwrite(str(dark), np.clip(np.rint(grey * 0.05 + noise), 0, 255).astype(np.uint8))
    room = tmp_path / "room"
    room.mkdir()
    for i in range(50):  # 5 frames a second
        (room / f"a{i:03d}.png").symlink_to(dark)
    for i in range(15):
        (room / f"b{i:03d}.jpg").symlink_to(media / "justin.jpg")
    (tmp_path / "moodbox.toml").write_text(f"""
[camera]
source = "replay"
replay_path = "{room}"
[spotify]
accounts_url = "{fake.url}"
api_url = "{fake.api_url}"
redirect_port = {free_port()}
""")
    d = start_box(tmp_path, fake)
    try:
        d.login().close()
        phone = signed_in(browser, d.base)
        # Dark from the start: someone is there, so not "Nobody here", and nothing is read.
        expect(phone.locator("#mood")).to_have_text("Too dark")
        expect(phone.locator("#mood-why")).to_have_text(
            "Someone is in view, but it is too dark to read a face. Moodbox reads the room again once there is more "
            "light."
        )
        expect(phone.locator("#faces")).to_have_text("none (+1 too dark)")
        expect(phone.locator("#story")).to_contain_text("Too dark to read faces")
        expect(phone.locator("#player-state")).not_to_contain_text("nobody")
        shot(phone, "now-too-dark")
        # The lights come on: the face is read; then off again, and the mood holds.
        expect(phone.locator("#mood")).to_have_text("happy", timeout=30_000)
        expect(phone.locator("#mood-why")).to_have_text(
            "Too dark to read the faces in view: the mood stays happy until there is more light.", timeout=15_000
        )
        expect(phone.locator("#mood")).to_have_text("happy")
        expect(phone.locator("#faces")).to_have_text("none (+1 too dark)")
        shot(phone, "now-too-dark-mood-holds")
        phone.context.close()
    finally:
        d.stop()


def test_spotify_is_set_up_on_the_page_and_the_cover_shows(phone, box, fake):
    api(phone, "POST", "/api/spotify/disconnect")
    assert api(phone, "PATCH", "/api/settings", {"spotify_client_id": "", "speaker": ""}).ok
    phone.goto("/settings")
    expect(phone.locator("#spotify-state")).to_contain_text("Not set up")
    expect(phone.locator("#speaker-refresh")).to_be_hidden()  # no "Find speakers" before Spotify is connected
    expect(phone.locator("#speaker-why")).to_contain_text("Connect Spotify first")
    redirect = api(phone, "GET", "/api/spotify").json()["redirect_uri"]
    expect(phone.locator("#redirect-uri")).to_have_text(redirect)
    phone.fill("#client-id", "not-an-id")
    phone.click("#client-id-form button[type=submit]")
    expect(phone.locator("#client-id-error")).to_contain_text("32 letters")
    shot(phone, "spotify-setup")
    phone.fill("#client-id", CLIENT_ID)
    phone.click("#client-id-form button[type=submit]")
    expect(phone.locator("#spotify-state")).to_contain_text("Not connected")
    sign_in_with_spotify(phone)
    phone.click("#speaker-refresh")
    phone.locator("#speaker-list .pick").filter(has_text="Living Room (Speaker)").click()
    expect(phone.locator("#speaker-chosen")).to_have_text("Living Room")
    api(phone, "POST", "/api/not-my-mood", {"mood": "happy"})  # plays at once
    phone.goto("/")
    expect(phone.locator("#cover")).to_be_visible(timeout=30_000)
    assert phone.locator("#cover").get_attribute("src").startswith("https://i.scdn.co/image/300")
    expect(phone.locator("#track")).to_contain_text("Artist")
    expect(phone.locator("#skip")).to_be_enabled()
    shot(phone, "now-spotify-cover")
    # Disconnected, Moodbox no longer drives the speaker: the page drops Spotify's track and cover at once.
    api(phone, "POST", "/api/spotify/disconnect")
    expect(phone.locator("#cover")).to_be_hidden()
    expect(phone.locator("#track")).not_to_contain_text("Artist")
    expect(phone.locator("#skip")).to_be_disabled()
    shot(phone, "now-after-disconnect")
    api(phone, "POST", "/api/not-my-mood", {"mood": None})
    api(phone, "PATCH", "/api/settings", {"spotify_client_id": "", "speaker": ""})


def test_history_says_what_its_numbers_cover(phone):
    phone.goto("/history")
    expect(phone.locator("#history-covers")).to_contain_text("Based on", timeout=20_000)
    expect(phone.locator("#shares li").first).to_contain_text("·")  # time spent and share
    shot(phone, "history")


def test_losing_the_daemon_says_so_and_reconnecting_says_so(browser, fake, tmp_path):
    d = start_box(tmp_path, fake)
    d.login().close()
    page = signed_in(browser, d.base)
    try:
        expect(page.locator("#live")).to_have_text("Live")
        d.stop()
        expect(page.locator("#live")).to_have_text("Lost connection, retrying…")
        expect(page.locator("#mood-card")).to_have_attribute("data-live", "lost")
        expect(page.locator("#autoplay-toggle")).to_be_disabled()
        expect(page.locator("#controls-why")).to_contain_text("once Moodbox is back")
        shot(page, "now-connection-lost")
        d = start_box(tmp_path, fake, port=d.port, env=d.env)
        expect(page.locator("#live")).to_have_text("Reconnected", timeout=30_000)
        expect(page.locator("#mood-card")).not_to_have_attribute("data-live", "lost")
        shot(page, "now-reconnected")
        assert "Failed to fetch" not in page.content()
    finally:
        page.context.close()
        d.stop()


def test_csp_allows_covers_from_spotifys_image_host_only(box):
    import requests

    csp = requests.get(box.base + "/healthz", timeout=5).headers["Content-Security-Policy"]
    img = next(part for part in csp.split(";") if part.strip().startswith("img-src")).split()
    assert img == ["img-src", "'self'", "data:", "blob:", "https://i.scdn.co"]
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp
    assert requests.get(box.base + "/api/state", timeout=5).status_code == 401  # sign-in on all but /healthz


def test_the_first_run_setup_page_passes_the_audit(browser, fake, tmp_path):
    """The signed-out page a new owner meets first: no serious or critical findings, light and dark, no overflow."""
    d = start_box(tmp_path, fake)
    try:
        for scheme in ("dark", "light"):
            context = browser.new_context(viewport=PHONE, is_mobile=True, base_url=d.base, color_scheme=scheme)
            page = context.new_page()
            page.goto("/")
            expect(page).to_have_url(d.base + "/setup")
            assert audit(page) == [], scheme
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            assert page.locator("h1").count() == 1
            expect(page.locator("#password-rule")).to_have_text(
                "At least 8 characters; a few words are easy to type on a phone."
            )
            context.close()
    finally:
        d.stop()


# -- issue 32: every screen says what it means -----------------------------------------------------------------------
def in_view(page: Page, locator) -> None:
    """Wholly inside the viewport, and not under the tab bar."""
    box, tabs = locator.bounding_box(), page.locator("nav.tabs").bounding_box()
    height = page.viewport_size["height"]
    assert box and box["y"] >= 0 and box["y"] + box["height"] <= min(height, tabs["y"]), (box, tabs)


def show_state(page: Page, state: dict) -> None:
    """The Now page, fed one state of the room as the box sends it: /api/state answers it and the live stream is
    held open with nothing on it (the page's own code renders it; only the numbers are chosen)."""
    page.unroute("**/api/state")
    page.route("**/api/state", lambda route: route.fulfill(json=state))
    page.route("**/api/events", lambda route: None)  # never answered: no event, and no error either
    page.goto("/")


def test_the_mood_card_says_what_the_faces_read_during_a_change_and_what_is_held(phone):
    """ "Happy · 0% sure" was the shown mood's share while the faces already read sad: the card now says so."""
    expect(phone.locator("#mood-card")).to_have_attribute("data-live", "live", timeout=40_000)
    room = api(phone, "GET", "/api/state").json()
    room["autoplay"] = {**room["autoplay"], "override": None, "enabled": True}
    room["camera"] = {**room["camera"], "state": "live", "privacy_mode": False}
    room["dark_faces"], room["ignored_faces"] = [], []
    now = time.time()
    card, line = phone.locator("#mood-card"), phone.locator("#confidence")

    changing = {"name": "happy", "confidence": 0.02, "since": now - 24, "leader": "sad"}
    show_state(phone, {**room, "mood": {**changing, "leaning": {"mood": "sad", "share": 0.61}}})
    expect(phone.locator("#mood")).to_have_text("happy")
    expect(line).to_have_text("Changing to sad · the faces read 61% sad, 2% happy")
    assert "sure" not in card.text_content()
    shot(phone, "now-changing")

    holding = {**changing, "confidence": 0.2, "leader": None, "leaning": {"mood": "neutral", "share": 0.35}}
    show_state(phone, {**room, "mood": holding})
    expect(line).to_have_text("Holding happy · the faces read 35% neutral, 20% happy: not clear enough to change")

    steady = {"name": "surprise", "confidence": 0.72, "since": now - 24, "leader": None}
    show_state(phone, {**room, "mood": {**steady, "leaning": {"mood": "surprise", "share": 0.72}}})
    expect(phone.locator("#mood")).to_have_text("surprised")
    expect(line).to_have_text(re.compile(r"^The faces read 72% surprised · for 2\d s$"))

    held = {"mood": "sad", "until": now + 600}
    show_state(phone, {**room, "mood": {**steady, "name": "happy"}, "autoplay": {**room["autoplay"], "override": held}})
    expect(card).to_have_attribute("data-live", "held")
    expect(phone.locator("#mood-title")).to_have_text("You chose")
    expect(phone.locator("#mood")).to_have_text("sad")
    expect(line).to_contain_text("Music for sad until ")
    expect(phone.locator("#mood-why")).to_have_text("The faces read happy.")
    expect(phone.locator("#release-hold")).to_be_visible()
    shot(phone, "now-held")


def test_pausing_auto_play_is_said_in_the_headline_and_the_toast_leaves_it_free(phone):
    expect(phone.locator("#mood-card")).to_have_attribute("data-live", "live", timeout=40_000)
    try:
        phone.click("#autoplay-toggle")
        expect(phone.locator("#story")).to_have_text(re.compile(r"^Room: .+ · auto-play is paused$"))
        toast = phone.locator("#toast")
        expect(toast).to_have_text("Auto-play paused")
        t = toast.bounding_box()
        for covered in ("header.top", "#story"):
            b = phone.locator(covered).bounding_box()
            assert t["y"] >= b["y"] + b["height"] or t["y"] + t["height"] <= b["y"], (covered, b, t)
        in_view(phone, toast)
        shot(phone, "now-auto-play-paused")
    finally:
        assert api(phone, "PATCH", "/api/settings", {"autoplay": True}).ok
    expect(phone.locator("#story")).not_to_contain_text("auto-play is paused")


def test_settings_errors_sit_under_their_fields_in_view_with_the_rule(phone):
    phone.goto("/settings")
    form = phone.locator("#behaviour-form")
    dwell, hands = form.locator("input[name=dwell_seconds]"), form.locator("input[name=hands_off_minutes]")
    expect(dwell).not_to_have_value("")
    saved = api(phone, "GET", "/api/settings").json()
    dwell.fill("-3")
    hands.fill("2.5")
    form.locator("button[type=submit]").click()
    error = phone.locator("#behaviour-form-dwell_seconds-error")
    expect(error).to_have_text("Use 0 to 120 seconds, in steps of 0.5.")
    expect(dwell).to_have_attribute("aria-invalid", "true")
    assert "behaviour-form-dwell_seconds-error" in dwell.get_attribute("aria-describedby").split()
    expect(dwell).to_be_focused()
    in_view(phone, dwell)
    in_view(phone, error)
    red = "(e) => getComputedStyle(e).borderTopColor"
    assert dwell.evaluate(red) != form.locator("input[name=cooldown_minutes]").evaluate(red)
    expect(phone.locator("#behaviour-form-hands_off_minutes-error")).to_have_text("Use whole minutes from 0 to 720.")
    expect(phone.locator("#behaviour-error")).to_be_hidden()  # not one message far below, under Save
    assert audit(phone) == []
    shot(phone, "settings-field-errors")
    assert api(phone, "GET", "/api/settings").json()["dwell_seconds"] == saved["dwell_seconds"]  # nothing sent
    dwell.fill("2")
    expect(error).to_be_hidden()
    expect(dwell).not_to_have_attribute("aria-invalid", "true")
    hands.fill(str(saved["hands_off_minutes"]))
    form.locator("button[type=submit]").click()
    expect(phone.locator("#toast")).to_have_text("Saved")
    api(phone, "PATCH", "/api/settings", {"dwell_seconds": saved["dwell_seconds"]})
    # the password's rule is said before it is broken, and a short one is refused under its field
    expect(phone.locator("#new-password-rule")).to_contain_text("At least 8 characters")
    account = phone.locator("#password-form")
    account.locator("input[name=old]").fill(PASSWORD)
    account.locator("input[name=new]").fill("short")
    account.locator("button[type=submit]").click()
    expect(phone.locator("#password-form-new-error")).to_have_text("Use at least 8 characters.")
    in_view(phone, phone.locator("#password-form-new-error"))


def test_not_my_mood_opens_in_view_above_the_tab_bar_and_the_card_says_what_is_held(phone):
    expect(phone.locator("#mood-card")).to_have_attribute("data-live", "live", timeout=40_000)
    opener, sheet = phone.locator("#not-my-mood"), phone.locator("#mood-picker")
    try:
        opener.click()
        expect(sheet).to_be_visible()
        expect(opener).to_have_attribute("aria-expanded", "true")
        chips = phone.evaluate("""() => Array.from(document.querySelectorAll("#mood-picker .chip")).map((el) => {
            const r = el.getBoundingClientRect(), top = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
            return { text: el.textContent, top: r.top, bottom: r.bottom, reachable: el.contains(top) }; })""")
        assert len(chips) == 8
        for chip in chips:  # all in the viewport and none under the tab bar
            assert chip["top"] >= 0 and chip["bottom"] <= PHONE["height"] and chip["reachable"], chip
        assert audit(phone) == []
        assert phone.evaluate(LAYOUT)["small"] == []
        shot(phone, "now-mood-picker")
        phone.keyboard.press("Escape")
        expect(sheet).to_be_hidden()
        expect(opener).to_have_attribute("aria-expanded", "false")
        expect(opener).to_be_focused()
        opener.click()
        sheet.locator('.chip[data-mood="surprise"]').click()
        expect(sheet).to_be_hidden()
        expect(phone.locator("#mood-title")).to_have_text("You chose")
        expect(phone.locator("#mood")).to_have_text("surprised")
        expect(phone.locator("#confidence")).to_contain_text("Music for surprised until ")
        phone.locator("#release-hold").click()
        expect(phone.locator("#mood-title")).not_to_have_text("You chose")
    finally:
        api(phone, "POST", "/api/not-my-mood", {"mood": None})


def test_every_page_has_one_word_for_each_mood(phone):
    """Now says "surprised": so do the picker, History, Settings and Videos (they said "surprise")."""
    words = {"angry", "disgusted", "afraid", "happy", "sad", "surprised", "neutral"}
    chips = phone.locator("#mood-picker .chip").all_text_contents()
    assert set(chips) == words | {"Let Moodbox decide"}
    assert set(phone.locator("#correct-sheet .chip").all_text_contents()) == words  # "Read wrong?"
    phone.goto("/settings")
    assert set(phone.locator("#music legend").all_text_contents()) == words
    phone.goto("/videos")
    assert set(phone.locator("#video-mood-pick option").all_text_contents()[1:]) == words
    phone.goto("/history")
    expect(phone.locator("#shares li").first).to_be_visible(timeout=20_000)
    assert set(phone.locator("#shares .name").all_text_contents()) <= words | {"nobody here"}


def test_spotify_set_up_keeps_its_steps_says_copied_and_keeps_errors_by_their_fields(phone, box, fake):
    api(phone, "POST", "/api/spotify/disconnect")
    assert api(phone, "PATCH", "/api/settings", {"spotify_client_id": ""}).ok
    phone.context.grant_permissions(["clipboard-read", "clipboard-write"])
    phone.goto("/settings")
    try:
        steps = phone.locator("#spotify-steps")
        expect(steps).to_have_attribute("open", "")
        # before Spotify is connected, only a search can be chosen for a mood's music
        expect(phone.locator("#music-needs-spotify")).to_be_visible()
        assert phone.locator('#music-kind-happy option[value="playlist"]').is_disabled()
        copy = phone.locator("#copy-redirect")
        copy.click()
        expect(copy).to_have_text("Copied ✓")
        expect(phone.locator("#copy-done")).to_have_text("Copied. Paste it under Redirect URIs.")
        redirect = api(phone, "GET", "/api/spotify").json()["redirect_uri"]
        assert phone.evaluate("navigator.clipboard.readText()") == redirect
        phone.fill("#client-id", f"  {CLIENT_ID}\n")  # pasted with a space before it: still the ID
        phone.click("#client-id-form button[type=submit]")
        expect(phone.locator("#spotify-state")).to_contain_text("Not connected")
        assert api(phone, "GET", "/api/settings").json()["spotify_client_id"] == CLIENT_ID
        # the steps, the redirect address and Copy stay on the page once a Client ID is saved; folded next time
        expect(copy).to_be_visible()
        phone.reload()
        expect(phone.locator("#spotify-state")).to_contain_text("Not connected")
        expect(steps).not_to_have_attribute("open", "")
        steps.locator("summary").click()
        expect(phone.locator("#redirect-uri")).to_have_text(redirect)
        expect(copy).to_be_visible()
        # an address pasted without its end says so, under the field, until it is changed
        with phone.context.expect_page() as popup:
            phone.click("#spotify-start")
        popup.value.close()
        phone.fill("#spotify-url", redirect + "?code=abc")
        phone.click("#spotify-finish button[type=submit]")
        url_error = phone.locator("#spotify-url-error")
        expect(url_error).to_contain_text("That address is cut off")
        expect(phone.locator("#spotify-url")).to_have_attribute("aria-invalid", "true")
        in_view(phone, url_error)
        shot(phone, "spotify-cut-off-address")
        phone.fill("#spotify-url", redirect + "?error=access_denied&state=x")
        expect(url_error).to_be_hidden()  # a new address: the old message goes
        phone.click("#spotify-finish button[type=submit]")
        expect(url_error).to_contain_text("Spotify did not give access: “Cancel” was chosen")
        sign_in_with_spotify(phone)
        expect(phone.locator("#music-needs-spotify")).to_be_hidden()
        assert not phone.locator('#music-kind-happy option[value="playlist"]').is_disabled()
    finally:
        api(phone, "POST", "/api/spotify/disconnect")
        api(phone, "PATCH", "/api/settings", {"spotify_client_id": ""})


def test_the_home_assistant_form_keeps_what_is_typed_and_tests_it_without_saving(phone):
    phone.clock.install()  # the page's timers run only when the test says: the old refill came 2 s after a save
    phone.goto("/settings")
    form = phone.locator("#mqtt-form")
    host, port, room = (form.locator(f"input[name={n}]") for n in ("host", "port", "room"))
    status = phone.locator("#mqtt-status")
    expect(status).to_have_text("Off: Moodbox is not connected to Home Assistant.")
    try:
        host.fill("bad host name!")
        form.locator("button[type=submit]").click()
        error = phone.locator("#mqtt-form-host-error")
        expect(error).to_contain_text("Not a broker name or address: use letters, digits, dots and hyphens")
        expect(host).to_have_attribute("aria-invalid", "true")
        in_view(phone, error)
        assert api(phone, "GET", "/api/mqtt").json()["host"] == ""  # refused, not saved
        closed = free_port()
        form.locator("input[name=enabled]").check()
        host.fill("127.0.0.1")
        port.fill(str(closed))
        phone.click("#mqtt-test")
        expect(phone.locator("#mqtt-test-result")).to_have_text(
            f"It did not work: cannot reach the MQTT broker at 127.0.0.1:{closed}: connection refused; is it "
            "running, and is the port right?"
        )
        assert api(phone, "GET", "/api/mqtt").json()["enabled"] is False  # a test saves nothing
        form.locator("button[type=submit]").click()
        expect(status).to_contain_text(f"Not connected: cannot reach the MQTT broker at 127.0.0.1:{closed}")
        room.fill("Kitchen")  # typed after the save, not yet saved
        host.fill("192.168.1.20")
        phone.clock.run_for(10_000)
        expect(room).to_have_value("Kitchen")
        expect(host).to_have_value("192.168.1.20")
        assert "[mqtt]" not in status.text_content() and "ca_file" not in status.text_content()
        shot(phone, "settings-home-assistant")
    finally:
        api(phone, "PATCH", "/api/mqtt", {"enabled": False, "host": "", "port": 1883})


def test_signing_in_says_what_to_do_about_a_forgotten_password(browser, box):
    context = browser.new_context(viewport=PHONE, is_mobile=True, base_url=box.base)
    page = context.new_page()
    page.goto("/login")
    page.get_by_text("Forgot the password?").click()
    expect(page.locator(".forgot")).to_contain_text("moodbox pairing-code --reset")
    assert audit(page) == []
    context.close()
