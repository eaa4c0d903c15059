"""Auto-play manners against the loopback Spotify: cooldown, hands off, pause, quiet hours, overrides, and
mood changes that wait for Spotify to come back."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest

from device.autoplay import AutoPlay
from device.bus import Bus
from device.events import MoodChange
from device.roomview import RoomView
from device.settings import Music, QuietHours, Settings
from tests.fake_spotify import FakeSpotify, connect
from tests.test_spotify import make


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def rig(tmp_path):
    with FakeSpotify() as fake:
        auth, player = make(fake, tmp_path)
        connect(fake, auth)
        holder = {"s": Settings(speaker="Living Room", cooldown_minutes=3, hands_off_minutes=30)}
        clock = Clock()
        view = RoomView()
        auto = AutoPlay(player, view, lambda: holder["s"], clock=clock)
        yield fake, auto, holder, clock, view


def mood(auto: AutoPlay, clock: Clock, name: str) -> None:
    auto.on_mood(MoodChange(name, auto.mood, 0.8, 0.0, clock()))


def plays(fake: FakeSpotify) -> int:
    return len(fake.calls("PUT", "/v1/me/player/play"))


def plays_within(fake: FakeSpotify, seconds: float) -> int:
    """Plays seen once the first one arrives, or when `seconds` have passed without one."""
    deadline = time.monotonic() + seconds
    while plays(fake) == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    return plays(fake)


def test_a_settled_mood_starts_music(rig):
    fake, auto, _, clock, view = rig
    mood(auto, clock, "happy")
    auto.step()
    assert plays(fake) == 1 and auto.played_mood == "happy"
    shown = view.snapshot()["playing"]
    assert shown["mood"] == "happy" and shown["source"]["description"] == 'Spotify search "feel good pop"'
    assert "queue" not in shown and auto.playing.queue  # the track list stays on the box
    auto.step()
    assert plays(fake) == 1  # the same mood does not restart the music


def test_cooldown_between_automatic_changes(rig):
    fake, auto, _, clock, _ = rig
    mood(auto, clock, "happy")
    auto.step()
    clock.advance(60)
    mood(auto, clock, "sad")
    wait = auto.step()
    assert plays(fake) == 1 and "cooldown" in auto.waiting and wait == pytest.approx(120, abs=1)
    clock.advance(121)
    auto.step()
    assert plays(fake) == 2 and auto.played_mood == "sad"


def test_hands_off_after_someone_picks_music_from_their_phone(rig):
    fake, auto, _holder, clock, _ = rig
    mood(auto, clock, "happy")
    auto.step()
    fake.user_plays("spotify:track:picked-on-a-phone")
    clock.advance(600)
    mood(auto, clock, "sad")
    auto.step()
    assert plays(fake) == 1 and auto.waiting == "hands off: someone chose the music"
    assert auto.hands_off_until == pytest.approx(clock() + 30 * 60) and auto.next_at == auto.hands_off_until
    clock.advance(29 * 60)
    assert auto.step() == pytest.approx(60) and auto.next_at == auto.hands_off_until  # the minute left
    assert plays(fake) == 1 and auto.waiting == "hands off: someone chose the music"
    clock.advance(2 * 60)
    fake.user_plays("spotify:track:still-theirs")
    auto.step()  # hands-off time is over: Moodbox leads again
    assert plays(fake) == 2


def test_not_my_mood_plays_even_while_someone_else_s_music_holds_moodbox_back(rig):
    """Hands off keeps Moodbox's own changes away from music someone chose; a household member who presses "Not
    my mood" on the page asks for the change, so it plays at once."""
    fake, auto, _holder, clock, _ = rig
    mood(auto, clock, "happy")
    auto.step()
    fake.user_plays("spotify:track:picked-on-a-phone")
    clock.advance(600)
    mood(auto, clock, "sad")
    auto.step()
    assert plays(fake) == 1 and auto.waiting.startswith("hands off")
    clock.advance(60)
    auto.set_override("angry")
    auto.step()
    assert (
        plays(fake) == 2
        and auto.played_mood == "angry"
        and fake.playback["item"]["uri"] != "spotify:track:picked-on-a-phone"
    )
    # "Let Moodbox decide" plays the room's mood now, hands off or not, and with no new cooldown.
    clock.advance(60)
    auto.set_override(None)
    auto.step()
    assert plays(fake) == 3 and auto.played_mood == "sad"


@pytest.mark.parametrize(
    ("problem", "state"),
    [("no Premium", "premium-required"), ("no speaker chosen", "no-speaker"), ("disconnected", "reconnect")],
)
def test_a_problem_only_a_person_can_fix_is_tried_again_after_five_minutes(rig, problem, state):
    """Spotify gives no time to wait for these: Moodbox asks again after 5 minutes (plus up to 10%), not on every
    decision, and says what is wrong meanwhile."""
    fake, auto, _holder, clock, view = rig
    if problem == "no Premium":
        fake.premium = False
    elif problem == "no speaker chosen":
        auto.player.speaker = ""
    else:
        fake.revoke_all_tokens()
        fake.expire_access_tokens()
    mood(auto, clock, "happy")
    wait = auto.step()
    assert 300 <= wait <= 330 and auto.next_at == pytest.approx(clock() + wait)
    assert plays(fake) == 0 and auto.player.status()["state"] == state
    said, until = auto.waiting, auto.next_at
    assert view.snapshot()["errors"][-1] | {"at": 0} == {"source": "spotify", "message": said, "at": 0}
    asked = len(fake.requests)
    for i in range(1, 6):  # the worker wakes for other reasons meanwhile: it must not ask Spotify again
        clock.advance(50)
        assert auto.step() == pytest.approx(wait - 50 * i)  # the same time, and the same words, on the page
        assert auto.next_at == until and auto.waiting == said
    assert len(fake.requests) == asked
    fake.premium = True
    auto.player.speaker = "Living Room"
    if problem == "disconnected":
        connect(fake, auto.player.auth)
    clock.advance(wait)
    auto.step()
    assert plays(fake) == 1 and auto.played_mood == "happy"


def test_paused_autoplay_and_quiet_hours_leave_the_speaker_alone(rig):
    fake, auto, holder, clock, _ = rig
    assert auto.step() == 60 and auto.waiting == "nobody here" and auto.next_at is None  # no mood yet
    holder["s"] = holder["s"].model_copy(update={"autoplay": False})
    mood(auto, clock, "happy")
    assert auto.step() == 60  # looked at again in a minute, or at once when something changes
    assert plays(fake) == 0 and auto.waiting == "auto-play is paused" and auto.next_at is None
    now = dt.datetime.now()
    quiet = QuietHours(
        enabled=True,
        start=(now - dt.timedelta(hours=1)).strftime("%H:%M"),
        end=(now + dt.timedelta(hours=1)).strftime("%H:%M"),
    )
    holder["s"] = holder["s"].model_copy(update={"autoplay": True, "quiet_hours": quiet})
    assert auto.step() == 60
    assert plays(fake) == 0 and auto.waiting == f"quiet hours until {quiet.end}"
    holder["s"] = holder["s"].model_copy(update={"quiet_hours": QuietHours(enabled=False), "privacy_mode": True})
    assert auto.step() == 60 and auto.waiting == "privacy mode: the camera is off"
    holder["s"] = holder["s"].model_copy(update={"privacy_mode": False})
    assert auto.step() == 60 and auto.waiting == "" and auto.next_at is None  # playing: nothing holds it back
    assert plays(fake) == 1 and auto.started == 1
    assert auto.step() == 60 and auto.waiting == "" and plays(fake) == 1


def test_try_it_for_another_mood_says_when_the_rooms_mood_comes_back(rig):
    """After "Try it", the page's headline gives the room's mood's time (the cooldown), not "switching now"."""
    fake, auto, _, clock, view = rig
    mood(auto, clock, "happy")
    auto.step()
    clock.advance(300)
    auto.try_music("sad")
    wait = auto.step()
    assert plays(fake) == 2 and auto.played_mood == "sad"
    upcoming = view.snapshot()["autoplay"]["next"]
    assert upcoming["mood"] == "happy" and "cooldown" in upcoming["held_by"] and upcoming["at"] is not None
    assert wait == pytest.approx(180, abs=1)


def test_quiet_hours_across_midnight():
    q = QuietHours(enabled=True, start="22:00", end="07:00")
    assert q.active(dt.datetime(2026, 1, 1, 23, 30)) and q.active(dt.datetime(2026, 1, 1, 6, 59))
    assert not q.active(dt.datetime(2026, 1, 1, 7, 0)) and not q.active(dt.datetime(2026, 1, 1, 21, 59))


def test_not_my_mood_overrides_for_a_while(rig):
    fake, auto, holder, clock, _ = rig
    mood(auto, clock, "sad")
    auto.step()
    auto.set_override("happy")
    auto.step()  # plays at once, cooldown or not
    assert plays(fake) == 2 and auto.played_mood == "happy"
    clock.advance(holder["s"].override_minutes * 60)
    assert auto.target() == "sad"  # held for exactly the set minutes
    auto.step()  # the override ran out: back to the room's mood
    assert auto.played_mood == "sad" and plays(fake) == 3
    said = "unknown mood 'ecstatic'; choose one of angry, disgust, fear, happy, sad, surprise, neutral"
    for ask in (auto.set_override, auto.try_music):
        with pytest.raises(ValueError) as refused:
            ask("ecstatic")
        assert str(refused.value) == said


def test_a_change_that_failed_plays_when_spotify_is_back_if_the_mood_holds(rig):
    fake, auto, _, clock, view = rig
    fake.fail("GET", "/v1/me/player/devices", 503, times=3)
    mood(auto, clock, "happy")
    wait = auto.step()
    assert plays(fake) == 0 and 20 <= wait <= 45
    assert view.snapshot()["errors"][-1]["message"].startswith("Spotify is having trouble")
    auto.step()
    assert plays(fake) == 0  # not before the retry time
    clock.advance(wait + 1)
    auto.step()
    assert plays(fake) == 1 and auto.played_mood == "happy"


def test_a_failed_change_is_dropped_if_the_mood_moved_on(rig):
    fake, auto, _, clock, _ = rig
    fake.fail("GET", "/v1/me/player/devices", 429, headers={"Retry-After": "120"})
    mood(auto, clock, "happy")
    assert auto.step() >= 120
    mood(auto, clock, "nobody")
    clock.advance(200)
    auto.step()
    assert plays(fake) == 0 and auto.waiting == "nobody here"


def test_slow_spotify_never_holds_up_the_frame_loop(rig):
    fake, auto, _, _clock, _ = rig
    auto._clock = time.time
    fake.fail("GET", "/v1/me/player/devices", 0, delay=0.8)
    bus = Bus()
    bus.subscribe("autoplay", auto.on_mood, MoodChange)
    auto.start()
    try:
        start = time.perf_counter()
        bus.publish(MoodChange("happy", "nobody", 0.9, 0.0, time.time()))
        assert time.perf_counter() - start < 0.2  # returns at once, not after Spotify's 0.8 s
        assert plays_within(fake, 10) == 1
    finally:
        auto.stop()
        bus.close()


def test_the_worker_tries_again_by_itself_when_spotify_s_time_is_up(rig):
    """Nothing else happens after a refused play: the worker wakes on its own at Spotify's Retry-After."""
    fake, auto, _, _clock, _ = rig
    auto._clock = time.monotonic
    fake.fail("GET", "/v1/me/player/devices", 429, headers={"Retry-After": "1"})
    auto.start()
    try:
        auto.on_mood(MoodChange("happy", "nobody", 0.9, 0.0, time.time()))
        started = time.monotonic()
        assert plays_within(fake, 5) == 1
        assert 1.0 <= time.monotonic() - started < 3, "played before Spotify's time, or long after it"
    finally:
        auto.stop()
    assert not any(t.name == "autoplay" for t in threading.enumerate()), "the worker outlived stop()"


def test_only_frames_with_a_face_in_the_dark_reach_auto_play():
    """Wired as the daemon wires it: the filter runs on the frame loop's thread, so ordinary frames queue nothing."""
    from device.events import Face, Reading

    got, bus = [], Bus()
    bus.subscribe("autoplay-dark", got.append, Reading, size=4, only=lambda r: bool(r.dark))
    try:
        for i in range(50):
            bus.publish(Reading(i, (), (640, 480)))
        bus.publish(Reading(50, (), (640, 480), dark=(Face(1, 1, 60, 60, 0.9),)))
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [r.t for r in got] == [50] and bus._subscribers[0].dropped == 0
    finally:
        bus.close()


def test_a_mood_that_arrives_while_a_decision_runs_is_not_lost(rig):
    """The worker decides outside its lock; a mood announced meanwhile must still be acted on at once,
    not after the worker's idle wait of up to a minute."""
    fake, auto, _, _clock, _ = rig
    auto._clock = time.time
    first_step_running, mood_sent = threading.Event(), threading.Event()
    real_step = auto.step

    def step() -> float:
        wait = real_step()
        if not first_step_running.is_set():
            first_step_running.set()
            mood_sent.wait(5)  # the mood arrives after this (empty-room) decision, before the worker sleeps
        return wait

    auto.step = step
    auto.start()
    try:
        assert first_step_running.wait(5)
        auto.on_mood(MoodChange("happy", "nobody", 0.9, 0.0, time.time()))
        mood_sent.set()
        assert plays_within(fake, 5) == 1
    finally:
        auto.stop()


def test_privacy_mode_holds_the_music_until_the_camera_reads_the_room_again(rig):
    """With the camera closed, the last mood seen is stale: no change is planned or played on it."""
    fake, auto, holder, clock, view = rig
    mood(auto, clock, "happy")
    auto.step()
    clock.advance(600)
    mood(auto, clock, "sad")
    holder["s"] = holder["s"].model_copy(update={"privacy_mode": True})
    auto.step()
    assert plays(fake) == 1 and "privacy" in auto.waiting
    assert view.snapshot()["autoplay"]["next"] is None
    auto.set_override("angry")  # the household can still choose the music by hand
    auto.step()
    assert plays(fake) == 2 and auto.played_mood == "angry"
    auto.set_override(None)
    holder["s"] = holder["s"].model_copy(update={"privacy_mode": False})
    auto.step()
    assert plays(fake) == 3 and auto.played_mood == "sad"


def pauses(fake: FakeSpotify) -> list:
    return fake.calls("PUT", "/v1/me/player/pause")


def test_an_empty_room_pauses_moodbox_music_and_the_next_mood_starts_it_again(rig):
    """The household's limit counts from "nobody"; when someone is back their mood plays at once, no cooldown."""
    fake, auto, holder, clock, view = rig
    holder["s"] = holder["s"].model_copy(update={"pause_when_empty_minutes": 10, "cooldown_minutes": 30})
    mood(auto, clock, "happy")
    auto.step()
    mood(auto, clock, "nobody")
    assert auto.step() == pytest.approx(600) and auto.waiting == "nobody here"
    clock.advance(599)
    auto.step()
    assert pauses(fake) == [] and fake.playback["is_playing"]
    clock.advance(2)
    auto.step()
    assert len(pauses(fake)) == 1 and pauses(fake)[0].query["device_id"] == ["dev-living"]
    assert not fake.playback["is_playing"] and auto.paused_at == clock()
    shown = view.snapshot()["playing"]
    assert shown["paused"] is True and shown["mood"] == "happy"  # the page says what was paused
    assert auto.player.status()["state"] == "paused"
    clock.advance(60)
    auto.step()
    assert len(pauses(fake)) == 1  # paused once, not again every minute
    clock.advance(60)
    mood(auto, clock, "sad")  # back 12 minutes after the last change: well inside its 30-minute cooldown
    auto.step()
    assert plays(fake) == 2 and auto.played_mood == "sad" and fake.playback["is_playing"]
    assert "paused" not in view.snapshot()["playing"] and auto.paused_at is None


def test_someone_in_the_dark_keeps_the_room_from_counting_as_empty(rig):
    """A face too dark to read is someone here: the empty-room pause counts from the last one seen."""
    from device.events import Face, Reading

    fake, auto, holder, clock, _ = rig
    holder["s"] = holder["s"].model_copy(update={"pause_when_empty_minutes": 10})
    mood(auto, clock, "happy")
    auto.step()
    mood(auto, clock, "nobody")
    clock.advance(5 * 60)
    auto.on_reading(Reading(clock(), (), (640, 480), dark=(Face(200, 150, 120, 120, 0.9),)))
    clock.advance(5 * 60 + 1)  # 10 minutes after "nobody", 5 after the face in the dark
    auto.step()
    assert pauses(fake) == [] and fake.playback["is_playing"]
    auto.on_reading(Reading(clock(), (), (640, 480)))  # a frame with nobody in it changes nothing
    clock.advance(5 * 60)
    auto.step()
    assert len(pauses(fake)) == 1 and not fake.playback["is_playing"]


def empty_then_back(auto: AutoPlay, clock: Clock, back_as: str) -> None:
    """Happy music plays, the room is empty long enough for the pause, then someone is back looking `back_as`."""
    mood(auto, clock, "happy")
    auto.step()
    mood(auto, clock, "nobody")
    clock.advance(11 * 60)
    auto.step()
    assert auto.paused is not None
    clock.advance(5 * 60)  # back 16 minutes after the last change, inside the tests' 30-minute cooldown
    mood(auto, clock, back_as)


def test_back_in_the_same_mood_the_music_plays_on_where_it_paused(rig):
    """Not a new shuffle: Spotify gets a play with no list, which resumes the paused track at its position."""
    fake, auto, holder, clock, view = rig
    holder["s"] = holder["s"].model_copy(update={"pause_when_empty_minutes": 10, "cooldown_minutes": 30})
    empty_then_back(auto, clock, "happy")
    fake.playback["item"] = dict(fake.playback["item"], uri=fake.playback["uris"][3])  # three tracks later
    started = auto.playing or auto.paused
    fake.fail("PUT", "/v1/me/player/play", 429, headers={"Retry-After": "60"})
    wait = auto.step()  # rate-limited: tried again after Spotify's time, and still as a resume
    assert 60 <= wait <= 67 and not fake.playback["is_playing"] and auto.paused is not None
    clock.advance(wait + 1)
    auto.step()
    resume = fake.calls("PUT", "/v1/me/player/play")[-1]
    assert not (resume.body or {}).get("uris") and resume.query["device_id"] == ["dev-living"]
    assert fake.playback["is_playing"] and fake.playback["item"]["uri"] == fake.playback["uris"][3]
    assert auto.playing is started and auto.played_mood == "happy" and auto.paused is None
    assert auto.paused_at is None and auto.player.status()["state"] == "playing"
    assert "paused" not in view.snapshot()["playing"] and view.snapshot()["playing"]["mood"] == "happy"
    clock.advance(60)
    auto.step()
    assert len(fake.calls("PUT", "/v1/me/player/play")) == 3  # the first play, the refused resume, the resume


@pytest.mark.parametrize("meanwhile", ["spotify forgot it", "new music chosen", "someone played theirs"])
def test_back_in_the_same_mood_plays_on_only_what_is_still_paused(rig, meanwhile):
    fake, auto, holder, clock, _ = rig
    holder["s"] = holder["s"].model_copy(update={"pause_when_empty_minutes": 10, "cooldown_minutes": 30})
    empty_then_back(auto, clock, "happy")
    first = fake.playback["uris"]
    if meanwhile == "spotify forgot it":  # an idle session ends: GET /me/player answers 204
        fake.playback = None
    elif meanwhile == "new music chosen":
        music = holder["s"].music | {"happy": Music(kind="search", value="sunny funk")}
        holder["s"] = holder["s"].model_copy(update={"music": music})
    else:
        fake.user_plays("spotify:track:picked-on-a-phone")
    auto.step()
    assert auto.paused is None
    if meanwhile == "someone played theirs":  # neither resumed nor replaced: their music holds Moodbox back
        assert len(fake.calls("PUT", "/v1/me/player/play")) == 1 and auto.waiting.startswith("hands off")
        assert fake.playback["item"]["uri"] == "spotify:track:picked-on-a-phone"
        return
    last = fake.calls("PUT", "/v1/me/player/play")[-1]
    assert len(fake.calls("PUT", "/v1/me/player/play")) == 2 and last.body["uris"]  # a fresh list, no resume
    assert fake.playback["is_playing"] and fake.playback["uris"] != first and auto.played_mood == "happy"


def test_an_empty_room_leaves_someone_elses_music_and_a_paused_speaker_alone(rig):
    fake, auto, holder, clock, view = rig
    holder["s"] = holder["s"].model_copy(update={"pause_when_empty_minutes": 5})
    mood(auto, clock, "happy")
    auto.step()
    fake.user_plays("spotify:track:picked-on-a-phone")
    mood(auto, clock, "nobody")
    clock.advance(6 * 60)
    auto.step()
    assert pauses(fake) == [] and fake.playback["is_playing"]  # theirs to stop
    assert view.snapshot()["playing"] is None and auto.paused_at is None
    clock.advance(60)
    auto.step()
    assert len(fake.calls("GET", "/v1/me/player")) == 1  # no more asking while the room stays empty

    # Someone paused Moodbox's music from their phone: nothing to pause, and no 403 from Spotify.
    mood(auto, clock, "sad")
    auto.step()
    assert plays(fake) == 1 and auto.waiting.startswith("hands off")  # their music still holds Moodbox back
    clock.advance(31 * 60)
    auto.step()
    assert plays(fake) == 2
    fake.playback["is_playing"] = False
    mood(auto, clock, "nobody")
    clock.advance(6 * 60)
    auto.step()
    assert pauses(fake) == [] and auto.view.snapshot()["errors"] == []


def test_an_empty_room_pauses_nothing_unless_asked_or_while_the_camera_is_off(rig):
    fake, auto, holder, clock, _ = rig
    mood(auto, clock, "happy")
    auto.step()
    mood(auto, clock, "nobody")
    clock.advance(12 * 3600)
    auto.step()
    assert pauses(fake) == []  # off by default
    for update in ({"privacy_mode": True}, {"autoplay": False}):
        holder["s"] = Settings(speaker="Living Room", pause_when_empty_minutes=1, **update)
        auto.step()
        assert pauses(fake) == [] and auto.playing is not None, update
    holder["s"] = Settings(speaker="Living Room", pause_when_empty_minutes=1)
    auto.step()
    assert len(pauses(fake)) == 1


def test_a_pause_spotify_refuses_is_tried_again_and_shown(rig):
    fake, auto, holder, clock, view = rig
    holder["s"] = holder["s"].model_copy(update={"pause_when_empty_minutes": 1})
    mood(auto, clock, "happy")
    auto.step()
    mood(auto, clock, "nobody")
    clock.advance(120)
    fake.fail("PUT", "/v1/me/player/pause", 503, times=3)  # spotipy's own retries see it too
    wait = auto.step()
    assert 20 <= wait <= 45 and fake.playback["is_playing"] and "trouble" in auto.waiting
    assert view.snapshot()["errors"][-1]["message"].startswith("Spotify is having trouble")
    auto.step()
    assert len(pauses(fake)) == 3  # not again before the retry time
    clock.advance(wait + 1)
    auto.step()
    assert not fake.playback["is_playing"] and view.snapshot()["playing"]["paused"]


def test_a_pause_that_needs_a_person_is_tried_again_after_five_minutes(rig):
    fake, auto, holder, clock, view = rig
    holder["s"] = holder["s"].model_copy(update={"pause_when_empty_minutes": 1})
    mood(auto, clock, "happy")
    auto.step()
    mood(auto, clock, "nobody")
    clock.advance(120)
    fake.revoke_all_tokens()  # Spotify access was withdrawn: someone must reconnect
    fake.expire_access_tokens()
    wait = auto.step()
    assert 300 <= wait <= 330 and fake.playback["is_playing"] and "reconnect" in auto.waiting
    assert view.snapshot()["errors"][-1]["source"] == "spotify"
    clock.advance(wait - 1)
    assert auto.step() == pytest.approx(1) and "reconnect Spotify" in auto.waiting  # still said, no new try
    connect(fake, auto.player.auth)
    clock.advance(1)
    auto.step()
    assert not fake.playback["is_playing"] and auto.waiting == "nobody here"


def test_a_wall_clock_jump_after_boot_ends_no_hold_and_the_page_gets_wall_times(tmp_path):
    """A Pi has no real-time clock: NTP moves its wall clock by hours after boot. Holds count on the monotonic
    clock; the page and Home Assistant still get wall-clock times."""
    with FakeSpotify() as fake:
        auth, player = make(fake, tmp_path)
        connect(fake, auth)
        settings = Settings(speaker="Living Room", cooldown_minutes=3, override_minutes=30)
        mono, wall = Clock(), Clock()
        mono.t, wall.t = 500.0, 1_600_000_000.0  # the time fake-hwclock saved, months ago
        view = RoomView()
        auto = AutoPlay(player, view, lambda: settings, clock=mono, wall=wall)
        mood(auto, mono, "happy")
        auto.step()
        auto.set_override("sad")
        auto.step()
        assert auto.played_mood == "sad"
        published = view.snapshot()["autoplay"]["override"]["until"]
        assert published == pytest.approx(wall() + 30 * 60)
        mono.advance(60)
        wall.advance(60 + 200 * 86400)  # NTP syncs: the wall clock leaps 200 days
        mood(auto, mono, "happy")
        auto.step()
        assert auto.played_mood == "sad" and plays(fake) == 2  # the hold still has 29 minutes to run
        published = view.snapshot()["autoplay"]["override"]["until"]
        assert published == pytest.approx(wall() + 29 * 60)
        mono.advance(29 * 60 + 1)
        auto.step()
        assert auto.played_mood == "happy" and plays(fake) == 3


def test_the_page_is_told_what_holds_the_music_back_and_until_when(tmp_path):
    """The page's "Next" line and the auto-play card come from what auto-play publishes: what plays next, what
    holds it back, and until when, in wall-clock time (here 1000 s ahead of the monotonic clock)."""
    with FakeSpotify() as fake:
        auth, player = make(fake, tmp_path)
        connect(fake, auth)
        holder = {"s": Settings(speaker="Living Room", cooldown_minutes=3, hands_off_minutes=30)}
        mono, view = Clock(), RoomView()
        auto = AutoPlay(player, view, lambda: holder["s"], clock=mono, wall=lambda: mono() + 1000)

        def shown() -> dict:
            return view.snapshot()["autoplay"]

        def at(t: float) -> float:
            return round(t + 1000, 3)

        assert auto.step() == 60  # nothing to decide until something happens
        quiet = {"enabled": True, "waiting": "nobody here", "override": None, "hands_off_until": None}
        quiet |= {"retry_at": None, "next": None, "pause_at": None}
        assert {k: shown()[k] for k in quiet} == quiet
        mood(auto, mono, "happy")
        assert auto.step() == 60 and shown()["waiting"] == "" and shown()["next"] is None
        assert view.snapshot()["player"]["state"] == "playing" and plays(fake) == 1
        played_at = mono()

        mono.advance(60)  # a new mood inside the cooldown
        mood(auto, mono, "sad")
        assert auto.step() == pytest.approx(120)
        assert shown()["next"] == {
            "mood": "sad",
            "music": 'Spotify search "mellow acoustic"',
            "at": at(played_at + 180),
            "held_by": "cooldown: next change in 2 min",
        }
        mono.advance(100)
        auto.step()
        assert shown()["next"]["held_by"] == "cooldown: next change in 0 min" and plays(fake) == 1
        mono.advance(20)  # the cooldown is over to the second
        auto.step()
        assert plays(fake) == 2 and shown()["next"] is None

        fake.user_plays("spotify:track:picked-on-a-phone")  # someone's own music, then a new mood
        mono.advance(181)
        mood(auto, mono, "angry")
        assert auto.step() == pytest.approx(30 * 60)
        assert shown()["hands_off_until"] == at(mono() + 30 * 60)
        assert shown()["next"] == {
            "mood": "angry",
            "music": holder["s"].music_for("angry").describe(),
            "at": at(mono() + 30 * 60),
            "held_by": "hands off: someone chose the music",
        }
        mono.advance(30 * 60 - 1)
        auto.step()
        assert plays(fake) == 2 and shown()["next"]["held_by"].startswith("hands off")
        mono.advance(1)  # the hands-off time is over to the second
        auto.step()
        assert plays(fake) == 3

        mono.advance(181)
        mood(auto, mono, "surprise")
        fake.fail("GET", "/v1/me/player/devices", 429, headers={"Retry-After": "90"})
        wait = auto.step()  # Spotify says: not now
        assert 90 <= wait <= 99 and shown()["retry_at"] == at(mono() + wait)
        assert shown()["next"]["at"] == at(mono() + wait) and shown()["next"]["held_by"].startswith("Spotify asked")
        mono.advance(wait - 0.01)
        assert 0 < auto.step() <= 0.05 and plays(fake) == 3  # the worker waits at least 50 ms, never spins
        mono.advance(0.01)
        auto.step()
        assert plays(fake) == 4 and shown()["retry_at"] is None and shown()["next"] is None

        music = holder["s"].music | {"fear": None}
        holder["s"] = holder["s"].model_copy(update={"music": {k: v for k, v in music.items() if v is not None}})
        auto.set_override("fear")
        assert auto.step() == 60 and shown()["waiting"] == "no music chosen for fear" and plays(fake) == 4
        assert shown()["override"] == {"mood": "fear", "until": at(mono() + 30 * 60)}
        assert shown()["next"] == {"mood": "fear", "music": "", "at": None, "held_by": "no music chosen for fear"}

        auto.set_override(None)
        holder["s"] = holder["s"].model_copy(update={"pause_when_empty_minutes": 10})
        mono.advance(5)
        mood(auto, mono, "nobody")
        assert auto.step() == pytest.approx(600) and shown()["pause_at"] == at(mono() + 600)
        assert shown()["next"] is None and shown()["waiting"] == "nobody here"
        auto.set_override("happy")  # the household chose music for the empty room: it is not paused
        auto.step()
        assert shown()["pause_at"] is None
        auto.set_override(None)
        holder["s"] = holder["s"].model_copy(update={"autoplay": False})
        auto.step()
        assert shown()["enabled"] is False and shown()["pause_at"] is None


def test_a_new_speaker_gets_the_room_s_mood_at_once_and_a_poke_ends_a_wait(rig):
    """Another speaker chosen in Settings: the page stops showing the old one's track, and the room's mood plays on
    the new one now, cooldown or not. "Try now" on the page ends a wait for Spotify."""
    fake, auto, _, clock, view = rig
    mood(auto, clock, "happy")
    auto.step()
    assert view.snapshot()["playing"]["speaker"] == "Living Room"
    auto.player.speaker = "Kitchen"
    auto.restart()
    assert view.snapshot()["playing"] is None and auto.playing is None
    clock.advance(10)
    auto.step()
    assert plays(fake) == 2 and fake.playback["device"]["name"] == "Kitchen"
    assert view.snapshot()["playing"]["speaker"] == "Kitchen"
    clock.advance(600)
    mood(auto, clock, "sad")
    fake.fail("GET", "/v1/me/player/devices", 429, headers={"Retry-After": "600"})
    assert auto.step() >= 600
    auto.poke()
    auto.step()
    assert plays(fake) == 3 and auto.played_mood == "sad"
