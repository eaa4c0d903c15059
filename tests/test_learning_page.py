"""The household learner on the page (issue 31): "Read wrong?" on Now, What Moodbox has learned in Settings, the
learner on System, and History's "also forget". One real daemon on the demo feed for the module, its API over real
HTTP, and headless Chromium at 390x844 (and 1280x800), audited by axe-core in light and dark.

The demo room shows happy, surprised, sad, neutral and angry faces, never afraid or disgusted ones, and its empty
scenes are shorter than the 30 s the mood engine waits before "nobody": so a correction to afraid or disgusted can
always be made there, and every test can make one when it needs it. Whether the learner uses a correction is the
learner's business (tests/test_learning.py): the page is checked to say what the box answered, either way. Each test
starts by forgetting what earlier tests taught the box. Screenshots go to artifacts/screenshots/learning/.
"""

from __future__ import annotations

import dataclasses
import re
import sqlite3
import time

import pytest
from playwright.sync_api import Page, expect

from device.events import EMOTIONS, mood_word
from device.learning._household import summary
from device.learning._learner import NOTHING_LEARNED
from tests.conftest import ARTIFACTS, DaemonProcess, isolated_env
from tests.test_browser import api
from tests.test_phone_page import LAYOUT, PHONE, audit, show_state, signed_in

SHOTS = ARTIFACTS / "screenshots" / "learning"  # kept by CI; never /tmp, which the privacy test watches
WORDS = {mood_word(m) for m in EMOTIONS}
expect.set_options(timeout=15_000)


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("learning")
    cfg = tmp / "moodbox.toml"
    cfg.write_text('[camera]\nsource = "demo"\n')  # no Spotify: the preview player, nothing leaves the machine
    d = DaemonProcess(tmp, ["--config", str(cfg)], isolated_env(tmp))
    d.wait_healthy()
    d.http = d.login()
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield d
    assert d.stop() == 0, d.log()[-3000:]


def learning(box) -> dict:
    return box.http.get(box.base + "/api/learning", timeout=5).json()


def forget(box) -> None:
    assert box.http.delete(box.base + "/api/corrections", timeout=10).status_code == 200


def correct(box, mood: str = "fear") -> dict:
    """A correction the demo room allows (its faces never read afraid or disgusted, unless what it learned makes them
    so: then the other one), once a mood is shown."""
    deadline, other = time.monotonic() + 60, {"fear": "disgust", "disgust": "fear"}
    while time.monotonic() < deadline:
        r = box.http.post(box.base + "/api/corrections", json={"mood": mood}, timeout=10)
        if r.status_code == 200:
            return r.json()
        assert r.status_code == 409, r.text  # while the box starts (no mood read yet), or the mood it reads now
        mood = other[mood] if "already" in r.json()["error"] else mood
        time.sleep(0.5)
    pytest.fail(f"no correction could be made within 60 s: {r.text}")


def told(answer: dict) -> str:
    """What the sheet says after a correction, from the box's answer: used, or why not."""
    return (
        f"Saved and used now. {answer['learning']['summary']}."
        if answer["used"]
        else (f"Saved, not used yet: {answer['reason']}.")
    )


@pytest.fixture
def phone(browser, box):
    forget(box)
    page = signed_in(browser, box.base)
    yield page
    page.context.close()


def in_sheet(page: Page, locator) -> None:
    """Wholly inside the viewport and on top there: a sheet lies above the tab bar, so nothing covers it."""
    box = locator.bounding_box()
    assert box and box["y"] >= 0 and box["y"] + box["height"] <= page.viewport_size["height"], box
    assert locator.evaluate(
        "(el) => { const r = el.getBoundingClientRect();"
        " return el.contains(document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2)); }"
    ), "covered"


def shot(page: Page, name: str, locator=None) -> None:
    """What the phone shows (the viewport), or one element of the page."""
    (locator or page).screenshot(path=str(SHOTS / f"{name}.png"))


# -- the API --------------------------------------------------------------------------------------------------------
def test_the_summary_uses_the_pages_word_for_each_mood():
    learned = dataclasses.replace(NOTHING_LEARNED, used=True, corrections=3)
    assert summary(learned, {"sad": -0.04, "fear": 0.03, "surprise": 0.01}) == (
        "Learned from 3 corrections: reads sad less readily, afraid, surprised more readily"
    )


def test_corrections_over_the_api_say_why_not_and_undo_only_what_they_name(box):
    http, base = box.http, box.base
    forget(box)
    r = http.post(base + "/api/corrections", json={"mood": "elated"}, timeout=5)
    assert r.status_code == 400 and "mood must be one of" in r.json()["error"]
    # the mood Moodbox reads already: refused, and the reason names it in the page's word
    deadline, refused = time.monotonic() + 60, None
    while refused is None and time.monotonic() < deadline:
        shown = http.get(base + "/api/state", timeout=5).json()["mood"]["name"]
        if shown not in EMOTIONS:
            time.sleep(0.5)
            continue
        r = http.post(base + "/api/corrections", json={"mood": shown}, timeout=5)
        if r.status_code == 409:
            refused = (shown, r.json()["error"])
        else:  # the room changed its mood in between: a real correction, taken back
            assert r.status_code == 200 and http.delete(base + "/api/corrections/last", timeout=5).ok
    assert refused, "the box never read a mood"
    assert refused[1] == f"Moodbox reads the room as {mood_word(refused[0])} already: pick the mood it really is"
    r = http.delete(base + "/api/corrections/last", timeout=5)
    assert r.status_code == 404 and r.json()["error"] == "there is no correction to undo"

    first = correct(box)
    state = first["learning"]
    assert first["faces"] > 0 and first["used"] == state["used"] and first["reason"] == state["reason"]
    assert state["corrections"] == 1 and state["summary"].startswith(
        "Learned from 1 correction: " if first["used"] else f"Not using 1 correction yet: {first['reason']}"
    )
    (newest,) = state["recent"]
    assert newest["id"] == first["id"] and newest["mood"] == "fear" and newest["shown"] in EMOTIONS
    second = correct(box, "disgust")
    # Undo names the correction it means: once another one was made since, it is refused and nothing is undone
    r = http.delete(base + f"/api/corrections/last?id={first['id']}", timeout=5)
    assert r.status_code == 409 and "no longer the newest" in r.json()["error"]
    for bad in ("x", "-1", "1.5", "١"):
        r = http.delete(base + f"/api/corrections/last?id={bad}", timeout=5)
        assert r.status_code == 400 and "id must be" in r.json()["error"], bad
    assert learning(box)["corrections"] == 2
    r = http.delete(base + f"/api/corrections/last?id={second['id']}", timeout=5)
    assert r.status_code == 200 and r.json()["undone"]["id"] == second["id"]
    assert r.json()["learning"]["corrections"] == 1

    # Delete my history keeps the corrections unless asked; corrections=true forgets them too
    assert http.delete(base + "/api/history", timeout=10).status_code == 200
    assert learning(box)["corrections"] == 1
    r = http.delete(base + "/api/history?corrections=yes", timeout=5)
    assert r.status_code == 400 and "corrections must be true or false" in r.json()["error"]
    assert http.delete(base + "/api/history?corrections=true", timeout=10).status_code == 200
    assert learning(box)["corrections"] == 0

    # the live state and /healthz carry the learner's state and size (System shows them)
    for live in (http.get(base + "/api/state", timeout=5).json()["learning"], box.wait_healthy()["learning"]):
        assert set(live) == {"corrections", "used", "summary", "size", "fit_ms", "new_model"}
        assert set(live["size"]) == {"largest_bias", "bias_limit", "changed_share", "everyday_readings"}


# -- Now: "Read wrong?" ----------------------------------------------------------------------------------------------
SHEET = """() => {
  const title = document.querySelector("#correct-title").textContent;
  const chips = Array.from(document.querySelectorAll("#correct-sheet .chip")).map((el) => {
    const r = el.getBoundingClientRect(), top = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
    return { text: el.textContent, hidden: el.hidden, top: r.top, bottom: r.bottom, reachable: el.contains(top) };
  });
  return { title, chips };
}"""


def test_read_wrong_is_a_correction_in_two_taps_that_says_what_happened_and_undo_takes_it_back(phone, box):
    opener, sheet = phone.locator("#read-wrong"), phone.locator("#correct-sheet")
    expect(phone.locator("#mood-card")).to_have_attribute("data-live", "live", timeout=40_000)
    expect(opener).to_be_enabled()
    opener.click()  # tap 1
    expect(sheet).to_be_visible()
    expect(opener).to_have_attribute("aria-expanded", "true")
    seen = phone.evaluate(SHEET)
    asked = re.fullmatch(r"Moodbox read the room as (\w+)\. What is it really\?", seen["title"])
    assert asked and asked[1] in WORDS, seen["title"]
    offered = [c for c in seen["chips"] if not c["hidden"]]
    assert {c["text"] for c in offered} == WORDS - {asked[1]}  # the six other moods
    for chip in offered:  # all in the viewport, above everything
        assert chip["top"] >= 0 and chip["bottom"] <= PHONE["height"] and chip["reachable"], chip
    expect(sheet).to_contain_text("never a picture")
    expect(sheet).to_contain_text("To just change the music, use Not my mood.")
    assert audit(phone) == []
    assert phone.evaluate(LAYOUT)["small"] == []
    shot(phone, "now-sheet-dark")

    sheet.locator('.chip[data-mood="fear"]').click()  # tap 2
    title = phone.locator("#correct-title")
    expect(title).to_have_text(re.compile(r"^Thanks: it is afraid, not \w+$"))
    was = title.text_content().rsplit(" ", 1)[1]
    result = phone.locator("#correct-result")
    made = learning(box)
    answer = {"used": made["used"], "reason": made["reason"], "learning": made}
    expect(result).to_have_text(told(answer))
    expect(result).to_be_focused()
    assert made["corrections"] == 1 and made["recent"][0]["mood"] == "fear"
    assert mood_word(made["recent"][0]["shown"]) == was  # what the sheet asked about is what was recorded
    faces = made["recent"][0]["faces"]
    expect(phone.locator("#correct-detail")).to_have_text(
        f"Moodbox kept {faces} readings of the faces from the last few seconds: numbers only, never a picture."
    )
    in_sheet(phone, phone.locator("#correct-undo"))
    assert audit(phone) == []
    shot(phone, "now-after-correction-dark")
    phone.wait_for_timeout(2500)  # it lasts: no toast that goes by itself
    expect(result).to_have_text(told(answer))

    phone.locator("#correct-undo").click()
    expect(title).to_have_text("Correction undone")
    expect(result).to_have_text(f"Undone: Moodbox forgot that the room was afraid, not {was}.")
    expect(phone.locator("#correct-undo")).to_be_hidden()
    assert learning(box)["corrections"] == 0
    sheet.get_by_role("button", name="Done").click()
    expect(sheet).to_be_hidden()
    expect(opener).to_be_focused()
    # opened again, it asks again
    opener.click()
    expect(title).to_contain_text("What is it really?")
    expect(phone.locator("#correct-done")).to_be_hidden()
    phone.keyboard.press("Escape")


def answering(body: dict, status: int = 200):
    """A route handler that gives the page this answer."""
    return lambda route: route.fulfill(status=status, json=body)


def test_a_used_correction_a_correction_not_used_yet_and_a_refused_one_say_so(phone, box):
    """Each answer the sheet can get, whichever the learner gives the demo room: the box's own answer, with `used`,
    the reason and the 409 set by the test."""
    expect(phone.locator("#mood-card")).to_have_attribute("data-live", "live", timeout=40_000)
    real = learning(box)
    used = "Learned from 3 corrections: reads sad less readily, afraid more readily"
    unused = "leaving each correction out in turn, the others read 1 of 3 right, no more than the model alone (1)"
    for answer, said in (
        (
            {"used": True, "reason": "…", "learning": {**real, "used": True, "summary": used}},
            f"Saved and used now. {used}.",
        ),
        ({"used": False, "reason": unused, "learning": real}, f"Saved, not used yet: {unused}."),
    ):
        phone.route("**/api/corrections", answering({"id": 7, "faces": 12, **answer}))
        phone.locator("#read-wrong").click()
        phone.locator('#correct-sheet .chip[data-mood="fear"]').click()
        expect(phone.locator("#correct-result")).to_have_text(said)
        expect(phone.locator("#correct-detail")).to_contain_text("Moodbox kept 12 readings of the faces")
        phone.keyboard.press("Escape")
        phone.unroute("**/api/corrections")
    refusal = (
        "Moodbox has not read a face in the last minute, so there is nothing to learn from: correct it while the "
        "faces are in view"
    )
    phone.route("**/api/corrections", answering({"error": refusal}, 409))
    phone.locator("#read-wrong").click()
    phone.locator('#correct-sheet .chip[data-mood="disgust"]').click()
    error = phone.locator("#correct-error")
    expect(error).to_have_text(refusal + ".")
    in_sheet(phone, error)
    expect(phone.locator("#correct-sheet .chip:visible")).to_have_count(6)  # still there, to try again
    expect(phone.locator('#correct-sheet .chip[data-mood="disgust"]')).to_be_enabled()
    assert learning(box)["corrections"] == 0


def test_read_wrong_is_off_with_a_reason_while_nobody_is_in_view(phone):
    expect(phone.locator("#mood-card")).to_have_attribute("data-live", "live", timeout=40_000)
    room = api(phone, "GET", "/api/state").json()
    room["autoplay"] = {**room["autoplay"], "override": None}
    room["camera"] = {**room["camera"], "state": "live", "privacy_mode": False}
    room["dark_faces"], room["ignored_faces"] = [], []
    opener, why = phone.locator("#read-wrong"), phone.locator("#read-wrong-why")
    show_state(phone, {**room, "faces": [], "mood": {"name": "nobody", "confidence": 0, "since": time.time() - 60}})
    expect(phone.locator("#mood")).to_have_text("Nobody here")
    expect(opener).to_be_disabled()
    expect(why).to_have_text("Read wrong? needs someone in view: nobody is, so there is no mood to correct.")
    assert "read-wrong-why" in opener.get_attribute("aria-describedby").split()
    why.scroll_into_view_if_needed()
    shot(phone, "now-nobody-dark")
    show_state(phone, {**room, "camera": {**room["camera"], "privacy_mode": True}})
    expect(opener).to_be_disabled()
    expect(why).to_have_text("The camera is off (privacy mode): there is no reading to correct.")
    sad = {"name": "sad", "confidence": 0.8, "since": time.time() - 20, "leaning": {"mood": "sad", "share": 0.8}}
    show_state(phone, {**room, "mood": sad})
    expect(opener).to_be_enabled()
    expect(why).to_be_hidden()
    opener.click()
    expect(phone.locator("#correct-title")).to_have_text("Moodbox read the room as sad. What is it really?")
    expect(phone.locator('#correct-sheet .chip[data-mood="sad"]')).to_be_hidden()


# -- Settings, System, History ---------------------------------------------------------------------------------------
def test_settings_says_what_was_learned_and_undo_and_forget_work(phone, box):
    for mood in ("fear", "disgust", "fear"):
        correct(box, mood)
    state = learning(box)
    # corrections kept for the model before this one: kept, never used, and said so
    with sqlite3.connect(box.state_dir / "moodbox.db") as db:
        db.executemany(
            "INSERT INTO corrections (at, model, shown, mood, readings) VALUES (?, 'an-older-model', 'sad', ?, '[]')",
            [(time.time() - 86400, "angry"), (time.time() - 86000, "fear")],
        )
    phone.goto("/settings")
    section = phone.locator("#learned")
    if state["used"]:  # the summary in words, how it was checked, and how much it changes
        expect(phone.locator("#learned-summary")).to_have_text(state["summary"] + ".")
        expect(phone.locator("#learned-used")).to_have_text(f"Yes: {state['reason']}.")
        expect(phone.locator("#learned-size")).to_have_text(
            re.compile(
                r"^(Changes \d+% of the room's everyday readings \(of \d+\)(: .+)?\.|No everyday readings yet to measure "
                r"how many readings it changes\.) The largest shift of one mood is \d\.\d\d of the 2\.5 allowed\.$"
            )
        )
    else:  # why not is said once, beside "Applied"
        expect(phone.locator("#learned-summary")).to_have_text("Not using 3 corrections yet.")
        expect(phone.locator("#learned-used")).to_have_text(f"Not yet: {state['reason']}.")
        expect(phone.locator("#learned-size")).to_have_text("No change: Moodbox reads faces as its model does.")
    expect(phone.locator("#learned-count")).to_have_text("3 (and 2 for an older model, not used)")
    expect(phone.locator("#learned-model")).to_have_text(
        "Moodbox's model changed: it starts learning afresh; 2 corrections made for the old model are not used. "
        "Forget everything learned deletes them."
    )
    items = phone.locator("#learned-recent li")
    expect(items).to_have_count(3)
    for item, made in zip(items.all_text_contents(), state["recent"], strict=True):
        shown, mood = (mood_word(made[k]).capitalize() for k in ("shown", "mood"))
        assert re.fullmatch(rf"{shown} → {mood} · \d\d?:\d\d( [AP]M)?", item), item
    assert audit(phone) == []
    section.scroll_into_view_if_needed()
    shot(phone, "settings-learned-dark", section)

    phone.locator("#undo-correction").click()
    newest = state["recent"][0]
    expect(phone.locator("#toast")).to_have_text(
        f"Undone: {mood_word(newest['shown']).capitalize()} → {mood_word(newest['mood']).capitalize()}"
    )
    expect(items).to_have_count(2)
    expect(phone.locator("#learned-count")).to_contain_text("2 (and 2")
    assert learning(box)["corrections"] == 2

    forget_sheet = phone.locator("#forget-sheet")
    phone.locator("#forget-learned").click()
    expect(forget_sheet).to_be_visible()
    expect(phone.locator("#forget-what")).to_have_text(  # the room's everyday readings too, when it has some yet
        re.compile(
            r"^Moodbox forgets 2 corrections(, | and )2 corrections made for an older model( and the room's \d+ "
            r"everyday readings?)?\. It then reads faces as its model does, and learns afresh from the next "
            r"correction\. This cannot be undone\.$"
        )
    )
    in_sheet(phone, phone.locator("#forget-confirm"))
    assert audit(phone) == []
    shot(phone, "settings-forget-dark")
    forget_sheet.get_by_role("button", name="Cancel").click()  # asked, not done
    expect(forget_sheet).to_be_hidden()
    assert learning(box)["corrections"] == 2
    phone.locator("#forget-learned").click()
    phone.locator("#forget-confirm").click()
    expect(forget_sheet).to_be_hidden()
    expect(phone.locator("#toast")).to_have_text("Forgot 4 corrections: Moodbox reads faces as its model does")
    expect(phone.locator("#learned-count")).to_have_text("None yet")
    expect(phone.locator("#learned-none")).to_be_visible()
    expect(phone.locator("#learned-model")).to_be_hidden()
    expect(phone.locator("#undo-correction")).to_be_hidden()
    expect(phone.locator("#forget-learned")).to_be_hidden()
    after = learning(box)
    assert after["corrections"] == 0 and after["older_model"] is None


def test_the_settings_section_follows_a_correction_made_elsewhere(phone, box):
    phone.goto("/settings")
    expect(phone.locator("#learned-count")).to_have_text("None yet")
    correct(box)  # another phone, or Home Assistant
    expect(phone.locator("#learned-count")).to_have_text("1")
    expect(phone.locator("#learned-recent li")).to_have_count(1)


def test_system_shows_the_learners_state_and_size(phone, box):
    used = correct(box)["used"]
    phone.goto("/system")
    expect(phone.locator("#sys-learner")).to_have_text("1 correction · " + ("applied" if used else "not applied yet"))
    fitted = r"fitted in \d+\.\d ms on 1 correction and \d+ everyday readings?$"
    size = (
        r"^largest shift \d\.\d\d of 2\.5 · (\d+% of the everyday readings changed · )?"
        if used
        else "^no adjustment · "
    )
    expect(phone.locator("#sys-learner-size")).to_have_text(re.compile(size + fitted))
    shot(phone, "system-dark")


def test_deleting_the_history_can_also_forget_the_corrections(phone, box):
    correct(box)
    phone.goto("/history")
    ask, also = phone.locator("#delete-sheet"), phone.locator("#delete-corrections")
    phone.locator("#delete-history").click()
    expect(ask).to_be_visible()
    expect(also).not_to_be_checked()
    expect(phone.locator("#delete-corrections-note")).to_have_text(
        "Moodbox keeps 1 correction. Without this, they stay and Moodbox goes on learning from them."
    )
    in_sheet(phone, phone.locator("#delete-confirm"))
    assert audit(phone) == []
    assert phone.evaluate(LAYOUT)["small"] == []
    also.check()
    shot(phone, "history-delete-dark")
    ask.get_by_role("button", name="Cancel").click()
    expect(ask).to_be_hidden()
    assert learning(box)["corrections"] == 1
    # without the box ticked, the corrections stay (it is unticked each time the sheet opens)
    phone.locator("#delete-history").click()
    expect(also).not_to_be_checked()
    phone.locator("#delete-confirm").click()
    expect(ask).to_be_hidden()
    expect(phone.locator("#toast")).to_have_text(re.compile(r"^Deleted \d+ entries$"))
    assert learning(box)["corrections"] == 1
    phone.locator("#delete-history").click()
    also.check()
    phone.locator("#delete-confirm").click()
    expect(phone.locator("#toast")).to_have_text(
        re.compile(r"^Deleted \d+ entries, and what Moodbox learned from corrections$")
    )
    assert learning(box)["corrections"] == 0


# -- the page's standards, with the learner's parts shown ----------------------------------------------------------
def test_the_learners_parts_pass_the_audit_light_and_dark_at_every_width(browser, box):
    forget(box)
    for mood in ("fear", "disgust"):
        correct(box, mood)
    problems: list[str] = []
    for scheme in ("light", "dark"):
        page = signed_in(browser, box.base, scheme=scheme)
        expect(page.locator("#mood-card")).to_have_attribute("data-live", "live", timeout=40_000)
        for path, opener, sheet in (
            ("/", "#read-wrong", "#correct-sheet"),
            ("/settings", "#forget-learned", "#forget-sheet"),
            ("/system", None, None),
            ("/history", "#delete-history", "#delete-sheet"),
        ):
            page.goto(path)
            page.wait_for_timeout(700)  # live state and what was learned arrive
            problems += [f"{scheme} {path} {v}" for v in audit(page)]
            problems += [f"{scheme} {path}: target {s}" for s in page.evaluate(LAYOUT)["small"]]
            for width in (320, 390, 1280):
                page.set_viewport_size({"width": width, "height": 844})
                sideways = page.evaluate(LAYOUT)["sideways"]
                problems += [f"{scheme} {path} scrolls sideways by {sideways} px at {width} px"] if sideways > 0 else []
            page.set_viewport_size(PHONE)
            if opener:
                page.locator(opener).click()
                expect(page.locator(sheet)).to_be_visible()
                problems += [f"{scheme} {path} {sheet} {v}" for v in audit(page)]
                problems += [f"{scheme} {path} {sheet}: target {s}" for s in page.evaluate(LAYOUT)["small"]]
                if scheme == "light":
                    name = {"/": "now-sheet", "/settings": "settings-forget", "/history": "history-delete"}[path]
                    shot(page, f"{name}-light")
                page.keyboard.press("Escape")
            if scheme == "light" and path == "/settings":
                page.locator("#learned").scroll_into_view_if_needed()
                shot(page, "settings-learned-light", page.locator("#learned"))
            if scheme == "light" and path == "/system":
                shot(page, "system-light")
        if scheme == "light":  # the message after a correction, in light
            page.goto("/")
            page.locator("#read-wrong").click()
            page.locator('#correct-sheet .chip:is([data-mood="fear"], [data-mood="disgust"]):visible').first.click()
            expect(page.locator("#correct-done")).to_be_visible()
            problems += [f"light after a correction {v}" for v in audit(page)]
            shot(page, "now-after-correction-light")
            page.locator("#correct-undo").click()
            expect(page.locator("#correct-undo")).to_be_hidden()
        page.context.close()
    assert problems == []


def test_a_desktop_shows_read_wrong_and_what_was_learned_in_its_columns(browser, box):
    forget(box)
    correct(box)
    page = signed_in(browser, box.base, viewport={"width": 1280, "height": 800})
    expect(page.locator("#mood-card")).to_have_attribute("data-live", "live", timeout=40_000)
    mood, read_wrong = page.locator("#mood-card").bounding_box(), page.locator("#read-wrong").bounding_box()
    assert read_wrong["x"] > mood["x"] + mood["width"], (mood, read_wrong)  # in the right-hand column
    shot(page, "desktop-now")
    page.locator("#read-wrong").click()
    sheet = page.locator("#correct-sheet").bounding_box()
    assert sheet["y"] + sheet["height"] <= 800 and sheet["width"] <= 34 * 16 + 2, sheet
    shot(page, "desktop-now-sheet")
    page.keyboard.press("Escape")
    page.goto("/settings")
    expect(page.locator("#learned-count")).to_have_text("1")
    learned = page.locator("#learned").bounding_box()
    assert learned["width"] < 640, learned  # one of the two columns
    page.locator("#learned").scroll_into_view_if_needed()
    shot(page, "desktop-settings")
    page.context.close()
