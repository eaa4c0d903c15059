"""Mood changes to music, with manners. Runs on its own thread, so the frame loop never waits on Spotify.

When the room's mood settles, the matching music starts on the speaker, unless:
- auto-play is paused, or it is quiet hours;
- the last automatic change was less than `cooldown_minutes` ago;
- someone changed the music from their own phone since Moodbox last started something ("hands off");
- a "not my mood" override holds another mood for a while.
A change that could not be played (Spotify down, speaker off, rate limit) waits and is tried again, as long as
the room's mood still holds.
If the household asks for it (`pause_when_empty_minutes`), Moodbox pauses its own music once the room has been empty
that long. When someone is back it plays on from where it paused if the room's mood is the same, and otherwise
starts the new mood's music; either way without a cooldown.
While its music plays, Moodbox follows it on the speaker (`watch`): which track plays, how each one ended (the play
log, device/plays.py), and when the list runs out, which starts more music for the same mood. Each list starts at
the mood's own volume, if it has one, and never above the night's cap.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from device.events import EMOTIONS, NOBODY, MoodChange, Reading
from device.player import Player, PlayerError, Playing, VolumeRule
from device.plays import PlayLog, why_line
from device.roomview import RoomView
from device.settings import Settings
from device.taste import TasteBook

log = logging.getLogger(__name__)
RETRY_DEFAULT = 30.0
WATCH_FIRST_S = 3.0  # the first look at the speaker after a list starts
WATCH_MIN_S, WATCH_MAX_S = 2.0, 15.0  # then at each track's end, and at least every 15 s


class AutoPlay:
    def __init__(
        self,
        player: Player,
        view: RoomView,
        settings: Callable[[], Settings],
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        plays: PlayLog | None = None,
        taste: TasteBook | None = None,
    ) -> None:
        # Cooldown, hands off, holds and retries count on `clock`, the monotonic clock: a Pi has no real-time clock
        # and jumps its wall clock when NTP syncs after boot, which would end a 30-minute hold early. The page and
        # Home Assistant get wall-clock times, converted when they are published.
        self.player, self.view, self._settings, self._clock, self._wall = player, view, settings, clock, wall
        self.plays, self.taste = plays, taste  # what played and why; the household's likes and skips
        self.mood: str = NOBODY  # the room's settled mood
        self.mood_at: float | None = None
        self.played_mood: str | None = None
        self.played_at: float | None = None
        self.playing: Playing | None = None
        self.hands_off_until = 0.0
        self._hands_off_for: float | None = -1.0  # the Moodbox start that a hands-off period answered
        self.retry_at = 0.0
        self.override: dict[str, Any] | None = None  # {"mood", "until"}
        self.waiting = ""  # why nothing happens now, for the page
        self.next_at: float | None = None  # when the waiting ends (cooldown, hands off, a retry), for the page
        self._asked = False  # the household asked from the page: the next play skips cooldown and hands off
        self.paused_at: float | None = None  # when Moodbox paused its music in an empty room
        self.paused: Playing | None = None  # that music, to play on from when the same mood is back
        self.seen_in_dark_at: float | None = None  # the last face too dark to read: someone is here, mood or not
        self._wake = threading.Condition()
        self._stop = False
        self._dirty = False  # set under _wake by anything that calls for a decision; never lost between waits
        self._thread: threading.Thread | None = None
        self.started = 0  # lists started
        self._trying: str | None = None  # "Try it": play this mood's music now, whatever holds auto-play back
        self._more = False  # the list ran out while its mood holds: more of the same, at once
        self._following = False  # Moodbox's music plays and is followed on the speaker
        self._watch_at = 0.0
        self._override_at = 0.0

    # -- inputs --------------------------------------------------------------------------------------------------
    def on_mood(self, change: MoodChange) -> None:
        with self._wake:
            self.mood, self.mood_at = change.mood, self._clock()
            self._dirty = True
            self._wake.notify()

    def on_reading(self, reading: Reading) -> None:
        """A frame: only its faces too dark to read matter here. They keep a room whose mood is "nobody" from
        counting as empty, so the empty-room pause counts from the last of them."""
        if reading.dark:
            self.seen_in_dark_at = self._clock()  # one float, read by the decision thread: no lock needed

    def set_override(self, mood: str | None) -> None:
        """'Not my mood': hold `mood` for the configured time (None clears it)."""
        if mood is not None and mood not in EMOTIONS:
            raise ValueError(f"unknown mood {mood!r}; choose one of {', '.join(EMOTIONS)}")
        with self._wake:
            minutes = self._settings().override_minutes
            self.override = {"mood": mood, "until": self._clock() + minutes * 60} if mood else None
            self._override_at = self._clock()
            self._asked = mood is None  # "let Moodbox decide": the room's mood plays now, no new cooldown
            self.retry_at = 0.0
            self._dirty = True
            self._wake.notify()

    def restart(self) -> None:
        """A new player or speaker: forget what was started, so the room's mood plays there now.

        The page stops showing the old track at once: it was on the old player or speaker, which Moodbox no longer
        drives (after Spotify is disconnected, its last track would otherwise stay on the page as if playing).
        """
        with self._wake:
            self.played_mood, self.played_at, self.playing, self.retry_at = None, None, None, 0.0
            self.paused_at, self.paused, self._more, self._following = None, None, False, False
            self.view.set_playing(None)
            self._dirty = True
            self._wake.notify()

    def try_music(self, mood: str) -> None:
        """Settings' "Try it": play this mood's music now, as asked, whatever holds auto-play back (cooldown, hands
        off, quiet hours, auto-play paused); afterwards the room's mood comes back as usual."""
        if mood not in EMOTIONS:
            raise ValueError(f"unknown mood {mood!r}; choose one of {', '.join(EMOTIONS)}")
        with self._wake:
            self._trying, self._asked, self.retry_at = mood, True, 0.0
            self._dirty = True
            self._wake.notify()

    def skipped_on_page(self) -> None:
        """The page's Skip reached the speaker: the play log moves on, and a list that ran out is followed by more."""
        if self.plays is None or self.playing is None:
            return
        more = not self.plays.skipped_on_page()
        with self._wake:
            if more:
                self._more = True
                self._dirty = True
                self._wake.notify()
            self._watch_at = self._clock() + WATCH_FIRST_S
        self.refresh()

    def now_playing(self) -> Playing | None:
        """Moodbox's music as the speaker plays it now; None when nothing of Moodbox's plays."""
        return self.playing if self._following else None

    def refresh(self) -> None:
        """Show the music again (a like changed its why line)."""
        if self.playing is not None and self._following:
            self.view.set_playing(self._shown(self.playing))

    def poke(self) -> None:
        """Re-evaluate now (a setting changed, or the user asked)."""
        with self._wake:
            self.retry_at = 0.0
            self._dirty = True
            self._wake.notify()

    # -- the decision ------------------------------------------------------------------------------------------
    def target(self) -> str | None:
        now = self._clock()
        if self._trying:
            return self._trying
        if self.override and self.override["until"] > now:
            return self.override["mood"]
        self.override = None
        return self.mood if self.mood in EMOTIONS else None

    def step(self) -> float:
        """Decide and maybe play; returns how many seconds until the next decision is worth making."""
        s, now = self._settings(), self._clock()
        target = self.target()
        if target is None:
            due = self._pause_at()
            if due is not None:
                return self._pause_when_empty(due, now)
            return self._wait("nobody here" if self.mood == NOBODY else "", 60)
        trying = self._trying == target
        more = self._more and target == self.played_mood
        if s.privacy_mode and self.override is None and not trying:  # the last mood seen is no reading of the room now
            return self._wait("privacy mode: the camera is off", 60)
        if target == self.played_mood and self.playing is not None and not (more or trying):
            return self._wait("", 60)
        if not s.autoplay and not trying:
            return self._wait("auto-play is paused", 60)
        if s.quiet_hours.active() and not trying:
            return self._wait(f"quiet hours until {s.quiet_hours.end}", 60)
        if now < self.retry_at:
            return self._wait(self.waiting, self.retry_at - now, self.retry_at)
        overridden = self.override is not None or self._asked
        back = self.paused_at is not None  # the room was empty, so this is no mood swing to slow down
        paused = self.paused
        if back and paused is not None and paused.mood == target and paused.source == s.music_for(target):
            resumed = self._resume(now)
            if resumed is not None:
                return resumed
        cooling = self.played_at is not None and now - self.played_at < s.cooldown_minutes * 60
        if cooling and not (overridden or back or more):
            assert self.played_at is not None
            left = self.played_at + s.cooldown_minutes * 60 - now
            return self._wait(f"cooldown: next change in {left / 60:.0f} min", left, now + left)
        if not overridden and now < self.hands_off_until:
            return self._wait("hands off: someone chose the music", self.hands_off_until - now, self.hands_off_until)
        source = s.music_for(target)
        if source is None:
            return self._wait(f"no music chosen for {target}", 60)
        try:
            # Once per Moodbox start: after the hands-off time, their music no longer holds Moodbox back.
            if (
                not (overridden or more)
                and self._hands_off_for != self.played_at
                and self.player.someone_else_is_playing()
            ):
                self._hands_off_for = self.played_at
                self.hands_off_until = now + s.hands_off_minutes * 60
                log.info("someone changed the music: leaving the speaker alone for %.0f min", s.hands_off_minutes)
                return self._wait(
                    "hands off: someone chose the music", self.hands_off_until - now, self.hands_off_until
                )
            taste = self.taste.for_mood(target) if self.taste else None
            playing = self.player.play(target, source, taste, self._volume_rule(s, target))
        except PlayerError as exc:
            return self._failed(f"play {target}", exc, now)
        playing.why, playing.why_at = self._reason(target, trying, more, now)
        self.playing, self.played_mood, self.played_at, self.started = playing, target, now, self.started + 1
        self.retry_at, self._asked, self.paused_at, self.paused = 0.0, False, None, None
        self._trying, self._more, self._following, self._watch_at = None, False, True, now + WATCH_FIRST_S
        if self.plays is not None:
            self.plays.started(playing)
        self.view.set_playing(self._shown(playing))
        self.show_volume(playing.volume, playing.volume_control, playing.speaker)
        if self.target() != target:  # "Try it" for another mood than the room's: say now what the room's mood waits for
            return self.step()
        return self._wait("", 60)

    def _reason(self, target: str, trying: bool, more: bool, now: float) -> tuple[str, float]:
        """What started this list, and when that happened (wall clock): the why line's first words."""
        offset = self._wall() - now
        if trying:
            return "try", now + offset
        if self.override is not None and self.override["mood"] == target:
            return "hold", self._override_at + offset
        if more:
            return "list-end", now + offset
        return "mood", (self.mood_at if self.mood_at is not None else now) + offset

    def _volume_rule(self, s: Settings, mood: str) -> VolumeRule:
        """The mood's own volume, if it has one, and the night's cap, by the wall clock's local time."""
        music = s.music.get(mood)  # type: ignore[call-overload]
        local = dt.datetime.fromtimestamp(self._wall())
        return VolumeRule(
            set_to=music.volume if music else None,
            at_most=s.volume_cap.percent if s.volume_cap.active(local) else None,
        )

    def show_volume(self, percent: int | None, control: bool | None, speaker: str) -> None:
        self.view.set("volume", {"percent": percent, "control": control, "speaker": speaker})

    def _shown(self, playing: Playing) -> dict[str, Any]:
        liked = bool(self.taste and playing.uri and self.taste.is_liked(playing.mood, playing.uri))
        suggest = self.taste.suggestion(playing.mood, playing.source) if self.taste else None
        return {**_shown(playing), "liked": liked, "why_line": why_line(playing, liked), "suggest": suggest}

    # -- following the music on the speaker --------------------------------------------------------------------
    def watch(self) -> float:
        """Look at the speaker when it is time: which of Moodbox's tracks plays (the page shows it), how the last
        one ended (the play log), whether the list ran out (more music) or someone put on theirs. Returns the
        seconds until the next look."""
        if self.plays is None or self.playing is None or self.playing.preview or not self._following:
            return 60.0
        now = self._clock()
        if now < self._watch_at:
            return self._watch_at - now
        try:
            playback = self.player.playback()
        except PlayerError as exc:  # looked at again later; playing music is not held up by a failed look
            self._watch_at = now + max(WATCH_MAX_S, exc.retry_after or 0.0)
            log.info("could not look at the speaker: %s", exc)
            return self._watch_at - now
        event = self.plays.observe(playback)
        if playback is not None:
            device = playback["device"]
            self.show_volume(device["volume"], device["volume_control"], device["name"])
        if event == "track":
            self.view.set_playing(self._shown(self.playing))
        elif event == "list-ended":
            with self._wake:
                self._more, self._dirty = True, True
        elif event in ("taken-over", "stopped"):
            self._following = False
            self.view.set_playing(None)
        left = playback["duration"] - playback["progress"] if playback and playback["playing"] else WATCH_MAX_S
        self._watch_at = now + min(WATCH_MAX_S, max(WATCH_MIN_S, left + 1.0))
        return self._watch_at - now

    def _resume(self, now: float) -> float | None:
        """Someone is back and the room's mood is the one whose music Moodbox paused: play on from where it
        stopped, not a new shuffle. None when the speaker no longer holds that music: the caller starts afresh."""
        assert self.paused is not None
        try:
            resumed = self.player.resume()
        except PlayerError as exc:  # kept paused: the next try resumes too
            return self._failed(f"play on the paused {self.paused.mood} music", exc, now)
        playing, self.paused = self.paused, None
        if not resumed:
            log.info("the speaker no longer holds the paused %s music: starting it afresh", playing.mood)
            return None
        log.info("someone is back: played on from where the %s music paused", playing.mood)
        self.playing, self.played_mood = playing, playing.mood
        self.retry_at, self._asked, self.paused_at = 0.0, False, None
        self._following, self._watch_at = True, now + WATCH_FIRST_S
        if self.plays is not None:
            self.plays.resumed()
        self.view.set_playing(self._shown(playing))
        return self._wait("", 60)

    def _failed(self, what: str, exc: PlayerError, now: float) -> float:
        """Show a failed play and try again after Spotify's Retry-After, or 5 minutes when a person must act."""
        self.view.add_error(self.player.name, str(exc))
        delay = exc.retry_after if exc.retry_after is not None else 300.0  # reconnect, premium, no speaker chosen
        self.retry_at = now + delay * random.uniform(1.0, 1.1)
        log.warning("could not %s: %s (next try in %.0f s)", what, exc, self.retry_at - now)
        return self._wait(str(exc), self.retry_at - now, self.retry_at)

    def _pause_when_empty(self, due: float, now: float) -> float:
        """The room is empty and Moodbox's music plays: pause it once the household's limit (`due`) has passed."""
        if now < due:
            return self._wait("nobody here", due - now)
        if now < self.retry_at:  # Spotify asked for a pause in calls (a rate limit, trouble)
            return self._wait(self.waiting, self.retry_at - now)
        try:
            paused = self.player.pause()
        except PlayerError as exc:
            self.view.add_error(self.player.name, str(exc))
            delay = exc.retry_after if exc.retry_after is not None else 300.0
            self.retry_at = now + delay * random.uniform(1.0, 1.1)
            log.warning("could not pause the music in the empty room: %s (next try in %.0f s)", exc, delay)
            return self._wait(str(exc), self.retry_at - now)
        self.retry_at = 0.0
        if paused:
            log.info("nobody here for %.0f min: paused the music", (now - (self.mood_at or now)) / 60)
            self.paused_at, self.paused = now, self.playing
            if self.plays is not None:
                self.plays.paused()
            self.view.set_playing({**self._shown(self.playing), "paused": True} if self.playing else None)
        else:  # paused already, or someone else's music: nothing of Moodbox's to show as playing
            log.info("nobody here, and the speaker plays nothing of Moodbox's: nothing to pause")
            self.view.set_playing(None)
        # Either way Moodbox's music no longer plays, and the room's next mood starts music again.
        self.playing, self.played_mood = None, None
        return self._wait("nobody here", 60)

    def _wait(self, why: str, seconds: float, until: float | None = None) -> float:
        self.waiting, self.next_at = why, until
        self.publish()
        return max(0.05, seconds)

    def publish(self) -> None:
        offset = self._wall() - self._clock()

        def wall(t: float | None) -> float | None:
            return round(t + offset, 3) if t else None

        override = {**self.override, "until": wall(self.override["until"])} if self.override else None
        upcoming = self._next()
        self.view.set(
            "autoplay",
            {
                "enabled": self._settings().autoplay,
                "waiting": self.waiting,
                "override": override,
                "hands_off_until": wall(self.hands_off_until),
                "retry_at": wall(self.retry_at),
                "next": {**upcoming, "at": wall(upcoming["at"])} if upcoming else None,
                "pause_at": wall(self._pause_at()),
            },
        )
        self.view.set("player", self.player.status())

    def _pause_at(self) -> float | None:
        """When Moodbox will pause its music in the empty room; None when it will not (someone is here, its music
        does not play, the household did not ask for it, the camera is off, or auto-play is paused)."""
        s = self._settings()
        if self.mood != NOBODY or self.playing is None or self.mood_at is None or self.target() is not None:
            return None
        if s.pause_when_empty_minutes <= 0 or s.privacy_mode or not s.autoplay:
            return None
        empty_since = max(self.mood_at, self.seen_in_dark_at or 0.0)
        return empty_since + s.pause_when_empty_minutes * 60

    def _next(self) -> dict[str, Any] | None:
        """What Moodbox will play next and when (None: as soon as nothing holds it back), or None when the music
        already fits the room."""
        target = self.target()
        if target is None or (target == self.played_mood and self.playing is not None):
            return None
        if self._settings().privacy_mode and self.override is None:
            return None
        source = self._settings().music_for(target)
        return {
            "mood": target,
            "music": source.describe() if source else "",
            "at": self.next_at,
            "held_by": self.waiting,
        }

    # -- thread ----------------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="autoplay", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            with self._wake:
                if self._stop:
                    return
                self._dirty = False
            try:
                delay = min(self.step(), self.watch())
            except Exception:
                log.exception("auto-play step failed")
                delay = RETRY_DEFAULT
            with self._wake:
                if self._stop:
                    return
                if not self._dirty:  # a mood that arrived during step() is decided on at once
                    self._wake.wait(timeout=min(delay, 60.0))

    def stop(self) -> None:
        with self._wake:
            self._stop = True
            self._wake.notify()
        if self._thread:
            self._thread.join(2)


def _shown(playing: Playing) -> dict[str, Any]:
    """What the page and Home Assistant get of the music Moodbox started (its track list stays here)."""
    shown = {k: v for k, v in asdict(playing).items() if k != "queue"}
    return {**shown, "source": {**asdict(playing.source), "description": playing.source.describe()}}
