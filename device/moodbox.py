"""The Moodbox itself: every part wired together, and the operations the page offers.

Data flows one way: camera -> faces -> emotion -> mood -> actions (auto-play, history, the page). The page
talks to this object only; it never reaches into the parts.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from device import __version__
from device.autoplay import AutoPlay
from device.bus import Bus
from device.camera import CameraFeed, open_camera
from device.config import Config
from device.emotion import EmotionClassifier
from device.events import EMOTIONS, MoodChange, Reading
from device.faces import make_detector
from device.homeassistant import HomeAssistant
from device.learning import Adjustment
from device.learning._household import CorrectionError, Household
from device.litert import runtime_name
from device.mood import MoodEngine, MoodSettings
from device.pipeline import DAEMON_CLASSIFY_BUDGET_MS, Pipeline
from device.player import (
    NotConnected,
    Player,
    PlayerError,
    PreviewPlayer,
    SpotifyAuth,
    SpotifyOrPreview,
    SpotifyPlayer,
)
from device.plays import ENDINGS, PlayLog
from device.roomview import RoomView
from device.settings import Settings, SettingsBook
from device.storage import StorageError, prepare_folder
from device.store import Store
from device.systemd import Watchdog
from device.taste import TasteBook
from device.videos import VideoSuggestions

log = logging.getLogger("moodbox")


class Moodbox:
    def __init__(self, config: Config, port: int | None = None) -> None:
        self.config = config
        self.port = port or config.web.port
        self.started = time.monotonic()  # not the wall clock: a Pi sets it from NTP after boot, a jump of days
        self._pruned_at = 0.0
        self.state_dir = config.state.path
        prepare_folder(self.state_dir)  # StorageError (exit 78) when Moodbox cannot write there at all
        self.store = Store(self.state_dir / "moodbox.db")
        self.settings_book = SettingsBook(self.store, config)
        s = self.settings

        self.view = RoomView()
        self.bus = Bus()
        self.watchdog = Watchdog()
        # Fails fast, with the cause and the fix, on a corrupt model or a missing runtime.
        self.classifier = EmotionClassifier(config.emotion.model_path, config.emotion.threads, config.emotion.mirror)
        self.detector = make_detector(config.faces.detector, config.faces.min_score, config.faces.max_faces)
        self.engine = MoodEngine(self._mood_settings(s))
        self.pipeline = Pipeline(
            self.detector, self.classifier, self.engine, self.bus, classify_budget_ms=DAEMON_CLASSIFY_BUDGET_MS
        )
        self.feed = CameraFeed(self._camera_opener(s), heartbeat=self.watchdog.beat)
        self.pipeline.keep_last_frame = s.preview_allowed
        self.pipeline.ignored_areas = tuple(a.as_tuple() for a in s.ignored_areas)
        if s.privacy_mode:
            self.feed.paused.set()

        redirect_port = config.spotify.redirect_port or self.port
        self.spotify_auth = SpotifyAuth(
            config.spotify.client_id or s.spotify_client_id,  # the config file wins over the page
            self.state_dir,
            f"http://127.0.0.1:{redirect_port}/callback",
            config.spotify.accounts_url,
        )
        self.spotify = SpotifyPlayer(self.spotify_auth, s.speaker, config.spotify.api_url)
        self.preview = PreviewPlayer(s.speaker)
        self.player: Player = {"spotify": self.spotify, "preview": self.preview}.get(
            config.player.kind, SpotifyOrPreview(self.spotify, self.preview)
        )
        self.taste = TasteBook(self.store, self.spotify)
        self.play_log = PlayLog(self.store, self.taste)
        self.autoplay = AutoPlay(self.player, self.view, lambda: self.settings, plays=self.play_log, taste=self.taste)
        self.videos = VideoSuggestions(
            config.youtube.api_key.get_secret_value(), config.youtube.region, self.store, config.youtube.daily_searches
        )
        # The household learner: corrections teach the box; what it learned is applied to every face's reading.
        self.household = Household(self.store, self.classifier.version, self._use_adjustment)
        self.pipeline.heard = self.household.recent.heard
        self.home_assistant = HomeAssistant(self, config.mqtt, self.store)  # idle unless [mqtt] is enabled
        if self.store.notice:
            self.view.add_error("settings", self.store.notice)
        self.store.storage.listeners.append(self._storage_changed)
        if self.store.storage.error is not None:
            self._storage_changed(self.store.storage.error)

    def _use_adjustment(self, adjustment: Adjustment) -> None:
        self.pipeline.adjustment = adjustment  # replaced whole: the frame loop reads it once per face

    def _storage_changed(self, error: StorageError | None) -> None:
        if error is not None:
            self.view.add_error("storage", f"{error.cause}: {error.fix}")

    # -- wiring --------------------------------------------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        return self.settings_book.current

    def _mood_settings(self, s: Settings) -> MoodSettings:
        m = self.config.mood
        return MoodSettings(
            window_seconds=m.window_seconds,
            min_confidence=s.sensitivity,
            hysteresis=m.hysteresis,
            dwell_seconds=s.dwell_seconds,
            nobody_after_seconds=m.nobody_after_seconds,
        )

    def _camera_opener(self, s: Settings):
        camera_config = self.config.camera.model_copy(update={"source": s.camera_source})
        return lambda: open_camera(camera_config)

    def start(self) -> None:
        self.view.set(
            "model",
            {
                "version": self.classifier.version,
                "interim": self.classifier.interim,
                "accuracy": self.classifier.meta.get("accuracy"),
            },
        )
        self.bus.subscribe(
            "page",
            lambda r: self.view.on_reading(r, self.engine.leader, self.engine.confidence, self.engine.average),
            Reading,
            size=4,
        )
        self.bus.subscribe("page-mood", self.view.on_mood, MoodChange)
        self.bus.subscribe("autoplay", self.autoplay.on_mood, MoodChange)
        # Only frames with a face too dark to read: the frame loop does not wake auto-play 15 times a second.
        self.bus.subscribe("autoplay-dark", self.autoplay.on_reading, Reading, size=4, only=lambda r: bool(r.dark))
        self.bus.subscribe("history", self._record, MoodChange)
        self.bus.subscribe("learning", self.household.on_mood, MoodChange)
        self.bus.subscribe(
            "learning-everyday",
            lambda r: self.household.on_reading(r, self.engine.mood),
            Reading,
            size=1,
            only=lambda r: bool(r.faces) and self.household.due(),
        )
        self.bus.subscribe("home-assistant", self.home_assistant.on_mood, MoodChange)
        self.household.on_change(self._learning_changed)
        with contextlib.suppress(StorageError):  # a full disk is reported; the box reads as the model does
            self.household.start()
        self.autoplay.start()
        self.home_assistant.start()
        with contextlib.suppress(StorageError):  # a full disk is reported, and must not stop the start
            self.store.prune_history(self.settings.history_days)
        self._pruned_at = time.time()

    def _record(self, change: MoodChange) -> None:
        log.info("mood: %s -> %s (%.0f%% sure)", change.previous, change.mood, change.confidence * 100)
        try:
            self.store.add_mood(change.wall_time, change.mood, change.confidence)
        except StorageError:
            return  # reported once by the store; the room's mood and the music carry on
        if time.time() - self._pruned_at > 3600:  # the retention limit, applied at most hourly
            self.store.prune_history(self.settings.history_days)
            self._pruned_at = time.time()

    def stop(self) -> None:
        self.home_assistant.stop()  # says "offline" to Home Assistant first
        self.autoplay.stop()
        self.bus.close()
        self.feed.close()
        self.store.close()

    # -- what the page and /healthz report -----------------------------------------------------------------------
    def pipeline_state(self) -> str:
        return {"live": "running", "retrying": "camera-retrying", "off": "camera-off", "ended": "stopped"}.get(
            self.feed.state, "starting"
        )

    def health(self) -> dict[str, Any]:
        state = self.pipeline_state()
        storage = self.store.storage.report()
        return {
            "status": "ok" if state in ("running", "camera-off") and storage["state"] == "ok" else "degraded",
            "storage": storage,
            "pipeline": state,
            "camera": {"source": self.feed.source, "state": self.feed.state, "error": self.feed.error},
            "fps": round(self.pipeline.fps, 2),
            "frames": self.pipeline.frames,
            "frames_dropped": self.pipeline.dropped,
            "model": {"version": self.classifier.version, "interim": self.classifier.interim},
            "learning": self.view.snapshot().get("learning", {"corrections": 0, "used": False}),
            "version": __version__,
            "uptime_s": round(time.monotonic() - self.started, 1),
        }

    def publish_status(self) -> None:
        storage = self.store.storage.report()  # also notices when a full disk has room again
        self.view.set("storage", {k: v for k, v in storage.items() if k != "free_bytes"})
        self.view.set(
            "camera",
            {
                "source": self.feed.source,
                "state": self.feed.state,
                "error": self.feed.error,
                "retry_at": self.feed.retry_at,
                "privacy_mode": self.settings.privacy_mode,
            },
        )
        self.view.set(
            "pipeline",
            {
                "state": self.pipeline_state(),
                "fps": round(self.pipeline.fps, 1),
                "frames": self.pipeline.frames,
                "frames_dropped": self.pipeline.dropped,
                "latency_ms": self.pipeline.latency_ms(),
                "detector": self.detector.name,
                "runtime": runtime_name(),
                "uptime_s": round(time.monotonic() - self.started),
            },
        )

    # -- operations the page offers ------------------------------------------------------------------------------
    def update_settings(self, changes: dict) -> Settings:
        old = self.settings
        new = self.settings_book.update(changes)  # raises SettingsError
        if (new.sensitivity, new.dwell_seconds) != (old.sensitivity, old.dwell_seconds):
            self.engine.settings = self._mood_settings(new)
        if new.camera_source != old.camera_source:
            self.feed.switch(self._camera_opener(new))
        if new.privacy_mode != old.privacy_mode:
            (self.feed.paused.set if new.privacy_mode else self.feed.paused.clear)()
            log.info(
                "privacy mode %s: the camera is %s",
                "on" if new.privacy_mode else "off",
                "closed" if new.privacy_mode else "back on",
            )
        if new.speaker != old.speaker:
            self.spotify.speaker = self.preview.speaker = new.speaker
            self.autoplay.restart()
        self.pipeline.keep_last_frame = new.preview_allowed
        self.pipeline.ignored_areas = tuple(a.as_tuple() for a in new.ignored_areas)
        if new.spotify_client_id != old.spotify_client_id and not self.config.spotify.client_id:
            drove_spotify = self.spotify_auth.state in ("connected", "reconnect")
            self.spotify_auth.set_client_id(new.spotify_client_id)
            if drove_spotify:  # the old app's account is gone: the preview takes over. Else nothing changes yet.
                self.autoplay.restart()
        if new.history_days != old.history_days:
            self.store.prune_history(new.history_days)
        if new.music != old.music:
            self.autoplay.refresh()  # the why line names the music
        self.autoplay.poke()
        return new

    def spotify_connect_url(self) -> str:
        try:
            return self.spotify_auth.authorize_url()
        except NotConnected as exc:
            raise ValueError(str(exc)) from None

    def spotify_finish(self, pasted_url: str) -> None:
        self.spotify_auth.finish(pasted_url)  # ValueError with the reason
        self.autoplay.restart()

    def spotify_disconnect(self) -> None:
        self.spotify_auth.disconnect()
        self.autoplay.restart()  # the preview takes over, and the page forgets Spotify's last track

    def speakers(self) -> list[dict[str, Any]]:
        return self.spotify.devices()  # PlayerError when Spotify is not reachable

    def playlists(self, query: str = "") -> list[dict[str, Any]]:
        return self.spotify.playlists(query)

    def skip(self) -> None:
        if self.player.name != "spotify":
            raise PlayerError("preview", "nothing to skip: Spotify is not connected")
        self.spotify.skip()
        self.autoplay.skipped_on_page()

    def like(self, liked: bool) -> dict[str, Any]:
        """The heart: like (or unlike) the track playing now for the mood it plays for."""
        playing = self.autoplay.now_playing()
        if self.player.name != "spotify" or playing is None or playing.preview or not playing.uri:
            raise PlayerError("nothing-to-like", "nothing to like yet: likes work while Spotify plays Moodbox's music")
        track = {"uri": playing.uri, "track": playing.track, "artist": playing.artist}
        saved = self.taste.like(playing.mood, track, liked)
        self.autoplay.refresh()
        return {"liked": liked, "mood": playing.mood, "track": playing.track, "saved": saved}

    def set_volume(self, percent: int) -> dict[str, Any]:
        if self.player.name != "spotify":
            raise PlayerError("preview", "the volume works once Spotify is connected")
        try:
            self.spotify.set_volume(percent)
        except PlayerError as exc:
            if exc.state == "no-volume-control":
                self.autoplay.show_volume(None, False, self.spotify.speaker)
            raise
        self.autoplay.show_volume(percent, True, self.spotify.speaker)
        return {"percent": percent}

    def try_music(self, mood: str) -> None:
        self.autoplay.try_music(mood)

    def forget_skips(self, mood: str) -> int:
        n = self.taste.forget_skips(mood)
        self.autoplay.refresh()
        return n

    def music(self) -> dict[str, Any]:
        """Per mood: its music, likes and skipped tracks (Settings)."""
        return self.taste.summary(self.settings.music_for)

    def plays(self, limit: int, before: int | None = None) -> dict[str, Any]:
        plays = self.store.plays(limit, before)
        for play in plays:
            play["ended_as"] = ENDINGS.get(play["ending"] or "")
        return {"plays": plays, "more": len(plays) == limit}

    def not_my_mood(self, mood: str | None) -> None:
        self.autoplay.set_override(mood)

    # -- the household learner ------------------------------------------------------------------------------------
    def correct_mood(self, mood: str) -> dict[str, Any]:
        """The room's mood was read wrong: it is really `mood`. Teaches the learner; ValueError with the reason."""
        try:
            return self.household.correct(self.engine.mood, mood)
        except CorrectionError as exc:
            raise ValueError(str(exc)) from None

    def undo_correction(self) -> dict[str, Any] | None:
        return self.household.undo()

    def forget_corrections(self) -> int:
        n = self.household.forget()
        log.info("the household learner forgot %d correction(s)", n)
        return n

    def learning(self) -> dict[str, Any]:
        return self.household.state()

    def _learning_changed(self) -> None:
        state = self.household.state(recent=0)
        self.view.set(
            "learning",
            {
                **{k: state[k] for k in ("corrections", "used", "summary", "size")},
                "fit_ms": round(self.household.fit_ms, 2),
                "new_model": state["older_model"] is not None and not state["corrections"],
            },
        )
        self.home_assistant.on_learning(state)

    def history(self, hours: float) -> dict[str, Any]:
        until = time.time()
        since = until - hours * 3600
        before = self.store.mood_before(since)
        return {
            "since": since,
            "until": until,
            "before": before,
            "changes": self.store.history(since, until),
            "moods": [*EMOTIONS, "nobody"],
        }

    def delete_history(self, corrections: bool = False) -> int:
        n = self.store.delete_history()  # with the learner's everyday readings
        self.play_log.forget()
        self.autoplay.refresh()  # "you liked this" goes with the likes
        log.info("history deleted (%d mood changes and plays, likes and skips)", n)
        if corrections:
            self.forget_corrections()
        else:
            self.household.refit()
        return n

    def video_suggestions(self, mood: str | None = None) -> dict[str, Any]:
        mood = mood or (self.engine.mood if self.engine.mood in EMOTIONS else "neutral")
        source = self.settings.music_for(mood)
        query = f"{source.value} music" if source and source.kind == "search" else None
        return self.videos.for_mood(mood, query)

    def recent_frame(self) -> Any:
        """The last grey frame, for the owner's live preview only; it lives in memory and is never stored."""
        return self.pipeline.last_grey if self.settings.preview_allowed else None
