"""Sign-in and sessions under attack, against the real daemon on loopback from several source addresses
(127.0.0.2 ... 127.0.0.9): the lockout scenario where the owner still gets in, exponential backoff per address
that survives a restart, pairing codes, the current-password check, and sessions that really end (logout, a
password change, sign out everywhere, the idle timeout, a reset from the shell)."""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect, sync_playwright
from requests.adapters import HTTPAdapter

from tests.conftest import CHROMIUM_ARGS, PASSWORD, DaemonProcess, csrf_from, isolated_env
from tests.test_web import moodbox_command
from web_ui.signin_limits import FIRST_WAIT, FREE_TRIES, TEST_FIRST_WAIT_ENV

ATTACKERS = [f"127.0.0.{n}" for n in range(2, 8)]  # six addresses
LATE_ATTACKER, FRESH = "127.0.0.8", "127.0.0.9"
LONG_WAIT = 600  # $MOODBOX_TEST_FIRST_WAIT_S where a test must know that an address still waits


class FromAddress(HTTPAdapter):
    """Connect from one loopback source address, as a separate device on the home network would."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def from_address(address: str, http: requests.Session | None = None) -> requests.Session:
    http = http or requests.Session()
    http.mount("http://", FromAddress(address))
    return http


def sign_in(http: requests.Session, base: str, password: str) -> requests.Response:
    page = http.get(base + "/login", timeout=10)
    return http.post(base + "/login", data={"csrf_token": csrf_from(page.text), "password": password}, timeout=30)


def enter_code(http: requests.Session, base: str, code: str) -> requests.Response:
    page = http.get(base + "/setup", timeout=10)
    form = {"csrf_token": csrf_from(page.text), "code": code, "password": PASSWORD, "password2": PASSWORD}
    return http.post(base + "/setup", data=form, timeout=30)


def signed_in(r: requests.Response) -> bool:
    return r.status_code == 200 and 'data-page="now"' in r.text


def retry_after(r: requests.Response) -> int:
    return int(r.headers.get("Retry-After", 0))


def with_csrf(http: requests.Session, r: requests.Response) -> requests.Session:
    http.headers["X-CSRF-Token"] = csrf_from(r.text)
    return http


def started(tmp_path: Path, env: dict[str, str] | None = None, port: int | None = None) -> DaemonProcess:
    d = DaemonProcess(tmp_path, env=env or isolated_env(tmp_path), port=port)
    d.wait_healthy()
    return d


# -- limits ----------------------------------------------------------------------------------------------------
def test_the_owner_cannot_be_locked_out(tmp_path):
    # Waits of 10 minutes instead of 2 s: on a busy machine an address's wait must not run out between two requests.
    d = started(tmp_path, isolated_env(tmp_path) | {TEST_FIRST_WAIT_ENV: str(LONG_WAIT)})
    try:
        owner = d.login()  # this browser is now a known one
        assert owner.cookies.get("moodbox_browser")
        owner.post(d.base + "/logout", timeout=10).raise_for_status()
        for address in ATTACKERS:  # 5 wrong from each of 6 addresses (30: the old global limit), then more
            attacker = from_address(address)
            codes = [sign_in(attacker, d.base, "guess").status_code for _ in range(FREE_TRIES + 1)]
            assert codes == [401] * FREE_TRIES + [429], address
            more = sign_in(attacker, d.base, "guess")  # still waiting: asking again does not help
            assert more.status_code == 429 and 0 < retry_after(more) <= LONG_WAIT, address
        late = from_address(LATE_ATTACKER)  # under attack, a new address gets one try, then waits
        first, second = sign_in(late, d.base, "guess"), sign_in(late, d.base, "guess")
        assert first.status_code == 401 and retry_after(first) == LONG_WAIT and second.status_code == 429

        start = time.monotonic()
        fresh = sign_in(from_address(FRESH), d.base, PASSWORD)  # the owner on a new phone
        fresh_s = time.monotonic() - start
        assert signed_in(fresh) and fresh_s < 5, (fresh.status_code, fresh_s)

        attacker = from_address(ATTACKERS[0])  # keeps guessing, still inside its wait
        assert sign_in(attacker, d.base, "guess").status_code == 429
        r = sign_in(attacker, d.base, PASSWORD)
        assert r.status_code == 429 and retry_after(r) > 0  # that address waits, even with the right password
        start = time.monotonic()
        known = sign_in(from_address(ATTACKERS[0], owner), d.base, PASSWORD)  # the owner's browser, same address
        known_s = time.monotonic() - start
        assert signed_in(known) and known_s < 5, (known.status_code, known_s)
        print(f"\nunder attack the owner signed in in {fresh_s:.2f} s (new address), {known_s:.2f} s (known browser)")
    finally:
        d.stop()


def test_backoff_per_address_doubles_and_survives_a_restart(tmp_path):
    env = isolated_env(tmp_path)
    d = started(tmp_path, env)
    try:
        owner = d.login()
        guesser = from_address(ATTACKERS[0])
        waits = [retry_after(sign_in(guesser, d.base, "guess")) for _ in range(FREE_TRIES)]
        assert waits == [0] * (FREE_TRIES - 1) + [FIRST_WAIT]
        early = sign_in(guesser, d.base, "guess")
        assert early.status_code == 429 and 0 < retry_after(early) <= FIRST_WAIT and "wait" in early.text
        time.sleep(FIRST_WAIT)
        r = sign_in(guesser, d.base, "guess")
        assert r.status_code == 401 and retry_after(r) == 2 * FIRST_WAIT
        locked_at = time.monotonic()
    finally:
        d.stop()
    again = started(tmp_path, env, port=d.port)
    try:
        left = 2 * FIRST_WAIT - (time.monotonic() - locked_at)
        r = sign_in(guesser, again.base, PASSWORD)  # the right password does not help while the address waits
        if left > 1:
            assert r.status_code == 429 and retry_after(r) <= 2 * FIRST_WAIT, (r.status_code, left)
        time.sleep(max(0.0, left))
        r = sign_in(guesser, again.base, "guess")
        assert r.status_code == 401 and retry_after(r) == 4 * FIRST_WAIT  # the count went on across the restart
        assert signed_in(sign_in(owner, again.base, PASSWORD))  # the owner's browser is not that address
    finally:
        again.stop()


def test_pairing_codes_are_limited_and_the_owner_still_sets_up(tmp_path):
    d = started(tmp_path)
    try:
        for address in ATTACKERS:
            attacker = from_address(address)
            codes = [enter_code(attacker, d.base, "AAAA-AAAA").status_code for _ in range(FREE_TRIES)]
            assert codes == [400] * FREE_TRIES
            r = enter_code(attacker, d.base, "AAAA-AAAA")
            assert r.status_code == 429 and retry_after(r) > 0
        code = (d.state_dir / "pairing-code").read_text().strip()
        r = enter_code(from_address(ATTACKERS[0]), d.base, code)
        assert r.status_code == 429  # an address that guessed waits even with the right code
        owner = from_address(FRESH)
        assert signed_in(enter_code(owner, d.base, code)) and owner.cookies.get("moodbox_browser")
    finally:
        d.stop()


# -- sessions --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def box(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("signin")
    d = started(tmp)
    d.login()  # sets the password
    yield d
    d.stop()


def owner_session(box: DaemonProcess, address: str = "127.0.0.1", password: str = PASSWORD) -> requests.Session:
    http = from_address(address)
    r = sign_in(http, box.base, password)
    assert signed_in(r), (r.status_code, r.text[:300])
    return with_csrf(http, r)


def state(http: requests.Session, box: DaemonProcess) -> int:
    return http.get(box.base + "/api/state", timeout=10).status_code


def test_a_logged_out_cookie_gets_401(box):
    http = owner_session(box)
    captured = http.cookies.get("moodbox_session")
    assert state(http, box) == 200
    assert http.post(box.base + "/logout", timeout=10).status_code == 200  # lands on /login
    replay = requests.Session()
    replay.cookies.set("moodbox_session", captured)
    replay.headers["X-CSRF-Token"] = http.headers["X-CSRF-Token"]
    assert state(replay, box) == 401
    assert replay.patch(box.base + "/api/settings", json={"autoplay": False}, timeout=10).status_code == 401


@pytest.mark.parametrize(
    "target",
    ["//evil.example", "/\t/evil.example", "/\n/evil.example", "/\\evil.example", "https://evil.example", "/api/x"],
)
def test_signing_in_never_sends_the_browser_to_another_site(box, target):
    """A link to /login?next=... must not take the owner, once signed in, to a look-alike page that asks for the
    password again. Werkzeug turns "/<tab>/evil" into the Location "//evil", another site for a browser."""
    http = from_address(FRESH)
    page = http.get(box.base + "/login", params={"next": target}, timeout=10)
    r = http.post(
        box.base + "/login",
        params={"next": target},
        data={"csrf_token": csrf_from(page.text), "password": PASSWORD},
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code == 302 and r.headers["Location"] == "/", (target, r.headers.get("Location"))


def test_signing_in_returns_to_the_page_asked_for(box):
    http = from_address(FRESH)
    r = http.get(box.base + "/settings", timeout=10)  # not signed in: the sign-in page, then back here
    assert r.url.endswith("/login?next=/settings")
    r = http.post(r.url, data={"csrf_token": csrf_from(r.text), "password": PASSWORD}, timeout=30)
    assert r.status_code == 200 and r.url == box.base + "/settings"


def test_a_password_change_ends_the_other_sessions(box):
    phone, laptop = owner_session(box), owner_session(box, ATTACKERS[1])
    before = phone.cookies.get("moodbox_session")
    r = phone.post(box.base + "/api/password", json={"old": PASSWORD, "new": "a new password"}, timeout=30)
    assert r.status_code == 200 and r.json()["signed_out"] >= 1, r.text
    assert state(laptop, box) == 401
    assert state(phone, box) == 200  # the one that changed it goes on, under a new session id ...
    assert phone.patch(box.base + "/api/settings", json={"autoplay": True}, timeout=10).status_code == 200
    stale = requests.Session()
    stale.cookies.set("moodbox_session", before)
    assert state(stale, box) == 401  # ... and its old id is over too
    r = phone.post(box.base + "/api/password", json={"old": "a new password", "new": PASSWORD}, timeout=30)
    assert r.status_code == 200


def test_the_current_password_check_is_limited(box):
    http = owner_session(box)
    wrong = [
        http.post(box.base + "/api/password", json={"old": "guess", "new": "x" * 12}, timeout=30) for _ in range(5)
    ]
    assert [r.status_code for r in wrong] == [403] * FREE_TRIES
    assert retry_after(wrong[-1]) == FIRST_WAIT
    r = http.post(box.base + "/api/password", json={"old": PASSWORD, "new": PASSWORD}, timeout=30)
    assert r.status_code == 429 and 0 < retry_after(r) <= FIRST_WAIT and "wait" in r.json()["error"]
    time.sleep(retry_after(r))
    r = http.post(box.base + "/api/password", json={"old": PASSWORD, "new": PASSWORD}, timeout=30)
    assert r.status_code == 200, r.text


def test_sign_out_everywhere(box):
    phone, laptop = owner_session(box), owner_session(box, ATTACKERS[2])
    page = phone.get(box.base + "/settings", timeout=10)
    assert "Sign out everywhere" in page.text and 'action="/signout-everywhere"' in page.text
    del phone.headers["X-CSRF-Token"]
    assert phone.post(box.base + "/signout-everywhere", timeout=10).status_code == 403  # no CSRF token
    token = csrf_from(page.text)
    r = phone.post(box.base + "/signout-everywhere", data={"csrf_token": token}, timeout=10)
    assert r.status_code == 200 and r.url.startswith(box.base + "/login") and "Signed out everywhere" in r.text
    assert state(phone, box) == 401 and state(laptop, box) == 401
    with sqlite3.connect(box.state_dir / "moodbox.db") as db:
        assert db.execute("SELECT count(*) FROM sessions").fetchone()[0] == 0
    assert state(owner_session(box), box) == 200


@pytest.mark.parametrize(("column", "days"), [("seen", 7), ("created", 30)])
def test_idle_and_old_sessions_end(box, column, days):
    http = owner_session(box)
    for age, code in ((days - 0.1, 200), (days + 0.01, 401)):  # just before the limit, and just after
        with sqlite3.connect(box.state_dir / "moodbox.db") as db:  # age every session, as the days would
            db.execute(f"UPDATE sessions SET {column} = ?", (time.time() - age * 86400,))
        assert state(http, box) == code, (column, age)


def test_sign_out_everywhere_asks_first_in_the_browser(box):
    other = owner_session(box, ATTACKERS[3])
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(base_url=box.base).new_page()
            page.goto("/login")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.goto("/settings")
            confirm = page.locator("#everywhere button[type=submit]")
            expect(confirm).to_be_hidden()  # nothing happens on one tap
            page.click("#everywhere summary")
            expect(confirm).to_be_visible()
            confirm.click()
            expect(page).to_have_url(re.compile(r"/login\?ended=\d+$"))
            expect(page.locator(".notice")).to_contain_text("Signed out everywhere")
            page.goto("/settings")
            expect(page).to_have_url(re.compile(r"/login\?next=/settings$"))
        finally:
            browser.close()
    assert state(other, box) == 401


def test_a_reset_from_the_shell_ends_every_session(box):
    http = owner_session(box)
    r = moodbox_command(box.env, "pairing-code", "--reset")
    assert r.returncode == 0, r.stderr
    with sqlite3.connect(box.state_dir / "moodbox.db") as db:
        assert db.execute("SELECT count(*) FROM sessions").fetchone()[0] == 0
    assert state(http, box) == 401
