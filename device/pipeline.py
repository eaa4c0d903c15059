"""The frame loop: camera -> faces -> emotion -> mood, publishing what it finds on the bus.

`Pipeline.process` is the whole per-frame step. `run` reads the camera on a capture thread of its own and
analyses frames on the calling thread; between the two sits a one-frame mailbox (`LatestFrame`). A camera with
its own clock never waits for the analysis: when a frame takes longer than the camera's frame interval (a Pi 4
with five faces in view), the frames in between are dropped, never queued, so the mood always follows the
newest picture. `heartbeat` (the systemd watchdog) is pinged only while frames are analysed or the camera is
being retried, so a hung camera or a hung analysis both stop the pings.

With a `classify_budget_ms`, faces are followed from frame to frame and a frame classifies only as many of them
as fit the budget (at least one): new faces first, then the ones classified longest ago; the others keep their
last probabilities, which the page shows. The mood engine hears only the faces classified in this frame, so a
face's old expression is not counted again while it waits for its turn. Where classifying is fast every face is
classified in every frame; where it is slow the work is spread over a few frames instead of holding every frame
up.

Frames from the camera feed carry the one clock's time and the number of their camera's opening (see
`device/camera/_feed.py`). When a camera is (re)opened, the faces followed so far are forgotten and the mood engine
starts a fresh window.

What the household taught (`device/learning`: corrections of misread moods) is applied to every face's reading
here, before the mood engine hears it: `adjustment`, replaced whole when the learner refits. Each face keeps the
model's own reading beside the adjusted one, and `heard` passes what the engine heard to the learner's memory of
the last few seconds, which is what a correction records.

Faces whose centre lies in one of `ignored_areas` (a TV, a poster; fractions of the frame, set on the page) are
dropped after detection: they are never classified, never reach the mood, and only their boxes are reported.

Faces too dark to read (their box averages under `TOO_DARK_BELOW` grey levels: a room with the lights off, where
the camera's exposure has run out) are not classified either. The model misreads such faces, the darkest as angry
with confidence, and a dark evening could otherwise turn the music angry. They reach the mood engine only as
"someone is here": the mood holds until there is light again, and the room does not count as empty.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace

import cv2
import numpy as np

from device.bus import Bus
from device.camera import Camera, CameraFeed
from device.emotion import EmotionClassifier
from device.events import FaceEmotion, Frame, MoodChange, Reading
from device.faces import FaceDetector, FaceTracks
from device.learning import NO_ADJUSTMENT, Adjustment
from device.mood import MoodEngine

log = logging.getLogger(__name__)
DETECT_WIDTH = 320
DAEMON_CLASSIFY_BUDGET_MS = 100.0  # what the daemon allows per frame; x86 classifies five faces in about 12 ms
# Mean grey level (0-255) of a face's box below which it is not read. `python -m models.darkness` measured it on
# darkened real photos: under 16, fewer than half the faces are read right (under a third below 8, where three
# in four of the sure readings say "angry"); from 20 up, about two thirds are, against three quarters in full
# light. 0 reads every face.
TOO_DARK_BELOW = 16.0


def has_own_clock(camera: Camera | None) -> bool:
    """A live camera, a replay at real-time pace or the demo in real time: frames come whether taken or not."""
    if camera is None or camera.live:
        return True
    return getattr(camera, "pace", "realtime") == "realtime" and getattr(camera, "realtime", True)


class LatestFrame:
    """The one-frame mailbox between the capture thread and the analysis.

    `put` never waits for a camera with its own clock: a newer frame replaces one not yet taken, which counts
    as dropped. For a source without a clock (a replay as fast as possible) it waits until the frame is taken,
    so every frame is analysed.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._slot: tuple[Frame, float] | None = None
        self._ended = False
        self.captured = 0
        self.dropped = 0

    def put(self, frame: Frame, stop: threading.Event, wait: bool = False) -> None:
        with self._cond:
            while wait and self._slot is not None and not stop.is_set():
                self._cond.wait(0.2)
            if self._slot is not None:
                self.dropped += 1
            self._slot = (frame, time.monotonic())
            self.captured += 1
            self._cond.notify_all()

    def end(self) -> None:
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def take(self, stop: threading.Event) -> tuple[Frame, float] | None:
        """The newest frame and when it was captured (monotonic); None once the source ended or on stop."""
        with self._cond:
            while self._slot is None:
                if self._ended or stop.is_set():
                    return None
                self._cond.wait(0.2)
            slot, self._slot = self._slot, None
            self._cond.notify_all()
            return slot


class Pipeline:
    def __init__(
        self,
        detector: FaceDetector,
        classifier: EmotionClassifier,
        engine: MoodEngine,
        bus: Bus | None = None,
        classify_budget_ms: float | None = None,
        too_dark_below: float = TOO_DARK_BELOW,
    ) -> None:
        self.detector, self.classifier, self.engine = detector, classifier, engine
        self.too_dark_below = too_dark_below
        self.bus = bus
        self.classify_budget_ms = classify_budget_ms  # None: every face in every frame (photos, offline replays)
        self._tracks = FaceTracks()
        self._opening: int | None = None  # Frame.opening of the last frame
        self._face_ms = 0.0  # running estimate of one face's classification time
        self.frames = 0
        self.started = time.monotonic()
        self.mailbox: LatestFrame | None = None
        self._arrivals: deque[float] = deque(maxlen=60)
        self._timings: dict[str, deque[float]] = {}
        self.last_reading: Reading | None = None
        self.keep_last_frame = False  # only while the owner's live preview is on; memory only
        self.last_grey: np.ndarray | None = None
        self.ignored_areas: tuple[tuple[float, float, float, float], ...] = ()  # (x, y, w, h), fractions
        # The household's learned adjustment of the model's readings, applied before the mood engine hears them;
        # replaced whole by the learner, never changed in place.
        self.adjustment: Adjustment = NO_ADJUSTMENT
        self.heard: Callable[[Reading], None] | None = None  # also told what the mood engine hears (the learner)

    @property
    def dropped(self) -> int:
        """Frames the camera delivered that were never analysed (newer ones replaced them)."""
        return self.mailbox.dropped if self.mailbox is not None else 0

    def process(self, frame: Frame, capture_ms: float = 0.0, age_ms: float = 0.0) -> tuple[Reading, MoodChange | None]:
        if frame.opening != self._opening:  # a camera (re)opened: its faces and the mood's window start afresh
            self._opening, self._tracks = frame.opening, FaceTracks()
            self.engine.camera_opened()
        t0 = time.perf_counter()
        arrived = time.time()
        grey = frame.grey
        h, w = grey.shape[:2]
        if w > DETECT_WIDTH:
            k = w / DETECT_WIDTH
            small = cv2.resize(grey, (DETECT_WIDTH, round(h / k)), interpolation=cv2.INTER_AREA)
        else:
            k, small = 1.0, grey
        faces = self.detector.detect(small)
        t1 = time.perf_counter()
        if k != 1.0:
            faces = [f.scaled(k) for f in faces]
        faces, ignored = self._split_ignored(faces, w, h)
        faces, dark = self._split_dark(grey, faces)
        results, fresh = self._classify(grey, faces, t1)
        t2 = time.perf_counter()
        timings = {"capture": capture_ms, "age": age_ms, "detect": (t1 - t0) * 1000, "classify": (t2 - t1) * 1000}
        reading = Reading(frame.t, results, (w, h), arrived, timings, ignored, dark)
        heard = reading if fresh is results else replace(reading, faces=fresh)
        change = self.engine.update(heard)
        if self.heard is not None:
            self.heard(heard)
        timings["mood"] = (time.perf_counter() - t2) * 1000
        self._account(timings, classified=bool(fresh))
        self.last_reading = reading
        self.last_grey = grey if self.keep_last_frame else None
        if self.bus is not None:
            self.bus.publish(reading)
            if change is not None:
                self.bus.publish(change)
        return reading, change

    def _split_ignored(self, faces: list, w: int, h: int) -> tuple[list, tuple]:
        """The faces to read, and those whose centre lies in an ignored area."""
        areas = self.ignored_areas  # replaced whole by the page's thread, never changed in place
        if not areas:
            return faces, ()
        kept, ignored = [], []
        for f in faces:
            cx, cy = (f.x + f.w / 2) / w, (f.y + f.h / 2) / h
            inside = any(x <= cx <= x + aw and y <= cy <= y + ah for x, y, aw, ah in areas)
            (ignored if inside else kept).append(f)
        return kept, tuple(ignored)

    def _split_dark(self, grey: np.ndarray, faces: list) -> tuple[list, tuple]:
        """The faces light enough to read, and those too dark to (see TOO_DARK_BELOW)."""
        if self.too_dark_below <= 0 or not faces:
            return faces, ()
        h, w = grey.shape[:2]
        kept, dark = [], []
        for f in faces:
            x, y, fw, fh = f.box
            box = grey[max(0, y) : min(h, y + fh), max(0, x) : min(w, x + fw)]
            (dark if box.size and float(box.mean()) < self.too_dark_below else kept).append(f)
        return kept, tuple(dark)

    def _probabilities(self, grey: np.ndarray, face) -> tuple[float, ...]:
        return tuple(float(p) for p in self.classifier.classify(grey, face))

    def _read(self, face, model: tuple[float, ...]) -> FaceEmotion:
        """A face with the model's reading, adjusted by what the household taught (if anything)."""
        adjustment = self.adjustment
        if not adjustment.active:
            return FaceEmotion(face, model)
        return FaceEmotion(face, adjustment.apply(model), model)

    def _classify(
        self, grey: np.ndarray, faces: list, started: float
    ) -> tuple[tuple[FaceEmotion, ...], tuple[FaceEmotion, ...]]:
        """Every face with its probabilities, and those of them classified in this frame."""
        if self.classify_budget_ms is None:
            every = tuple(self._read(f, self._probabilities(grey, f)) for f in faces)
            return every, every
        tracks = self._tracks.follow(faces)
        budget_end = started + self.classify_budget_ms / 1000
        done: set[int] = set()
        for track in self._tracks.order(tracks):
            if done and time.perf_counter() + self._face_ms / 1000 > budget_end:
                break  # the rest keep their last probabilities; new faces wait for the next frame
            t = time.perf_counter()
            self._tracks.classified(track, self._probabilities(grey, track.face))
            ms = (time.perf_counter() - t) * 1000
            self._face_ms = ms if not self._face_ms else 0.8 * self._face_ms + 0.2 * ms
            done.add(id(track))
        read = {id(t): self._read(t.face, t.probabilities) for t in tracks if t.probabilities is not None}
        every = tuple(read[id(t)] for t in tracks if id(t) in read)
        if len(done) == len(tracks):
            return every, every
        return every, tuple(read[id(t)] for t in tracks if id(t) in done)

    def _account(self, timings: dict[str, float], classified: bool) -> None:
        self.frames += 1
        self._arrivals.append(time.monotonic())
        for stage, ms in timings.items():
            if stage == "classify" and not classified:
                continue  # an empty room classifies nothing: its 0 ms would hide what a face costs
            self._timings.setdefault(stage, deque(maxlen=120)).append(ms)

    @property
    def fps(self) -> float:
        if len(self._arrivals) < 2 or time.monotonic() - self._arrivals[-1] > 2.0:
            return 0.0
        return (len(self._arrivals) - 1) / max(1e-6, self._arrivals[-1] - self._arrivals[0])

    def latency_ms(self) -> dict[str, float]:
        """Median milliseconds per stage over the last frames."""
        return {stage: round(float(np.median(v)), 2) for stage, v in self._timings.items() if v}

    def run(
        self,
        feed: CameraFeed,
        stop: threading.Event,
        heartbeat: Callable[[], None] = lambda: None,
        max_fps: float = 0.0,
    ) -> None:
        """Analyse the newest frames from the feed until `stop` is set or a replay ends."""
        mailbox = self.mailbox = LatestFrame()
        capture = threading.Thread(target=self._capture, args=(feed, mailbox, stop), name="capture", daemon=True)
        capture.start()
        min_gap = 1.0 / max_fps if max_fps > 0 else 0.0
        last = 0.0
        try:
            while not stop.is_set():
                t0 = time.perf_counter()
                taken = mailbox.take(stop)
                if taken is None:
                    break
                frame, captured_at = taken
                now = time.monotonic()
                if feed.camera is not None and feed.camera.live and now - last < min_gap:
                    heartbeat()
                    continue  # a live camera faster than max_fps: skip frames rather than heat the Pi
                last = now
                try:
                    self.process(frame, (time.perf_counter() - t0) * 1000, (now - captured_at) * 1000)
                except Exception:
                    log.exception("frame %d could not be processed", frame.index)
                heartbeat()
        finally:
            capture.join(1.0)  # it ends with the feed; a camera stuck in a read is left to the daemon's exit

    @staticmethod
    def _capture(feed: CameraFeed, mailbox: LatestFrame, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                frame = feed.next_frame(stop)
                if frame is None:
                    break
                mailbox.put(frame, stop, wait=not has_own_clock(feed.camera))
        except Exception:
            log.exception("the capture thread failed")
        finally:
            mailbox.end()
