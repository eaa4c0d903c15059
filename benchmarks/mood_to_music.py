"""From a change of expression in front of the camera to Spotify's `PUT /me/player/play`, against the loopback
Spotify server of the tests (tests/fake_spotify.py), with the real pipeline, bus and auto-play thread.

    .venv/bin/python benchmarks/mood_to_music.py [--changes 12] [--dwell 1.0] [--window 1.5]

The feed is the demo room played in real time at 15 fps, with a known script: the face changes expression
every `--scene` seconds. Prints, over all changes: expression change -> mood-change event, mood-change event ->
PUT /me/player/play arriving at the server (target p95 <= 0.5 s), and expression change -> PUT.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from device.autoplay import AutoPlay  # noqa: E402
from device.bus import Bus  # noqa: E402
from device.camera._demo import DemoRoom, Scene, load_script  # noqa: E402
from device.emotion import EmotionClassifier  # noqa: E402
from device.events import Frame, MoodChange  # noqa: E402
from device.faces import make_detector  # noqa: E402
from device.mood import MoodEngine, MoodSettings  # noqa: E402
from device.pipeline import Pipeline  # noqa: E402
from device.player import SpotifyAuth, SpotifyPlayer  # noqa: E402
from device.roomview import RoomView  # noqa: E402
from device.settings import Settings  # noqa: E402
from tests.fake_spotify import FakeSpotify, connect  # noqa: E402

ORDER = ("happy", "sad", "surprise", "angry", "neutral")


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * len(s)) - 1))]


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "n": len(values),
        "median_s": round(statistics.median(values), 3),
        "p95_s": round(pct(values, 0.95), 3),
        "max_s": round(max(values), 3),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--changes", type=int, default=12)
    p.add_argument("--scene", type=float, default=9.0, help="seconds each expression is held")
    p.add_argument("--dwell", type=float, default=MoodSettings.dwell_seconds)
    p.add_argument("--window", type=float, default=MoodSettings.window_seconds)
    p.add_argument("--fps", type=float, default=15.0)
    args = p.parse_args()

    faces, demo_scenes = load_script()
    by_mood = {s.expression: s.faces[0] for s in demo_scenes if len(s.faces) == 1}
    scenes = [Scene(3.0, (), "nobody")]
    scenes += [
        Scene(args.scene, (by_mood[ORDER[i % len(ORDER)]],), ORDER[i % len(ORDER)]) for i in range(args.changes + 1)
    ]
    room = DemoRoom(faces, scenes)

    with FakeSpotify() as fake, tempfile.TemporaryDirectory() as state:
        auth = SpotifyAuth(fake.client_id, Path(state), "http://127.0.0.1:8080/callback", fake.url)
        connect(fake, auth)
        player = SpotifyPlayer(auth, "Living Room", fake.api_url)
        settings = Settings(speaker="Living Room", cooldown_minutes=0, hands_off_minutes=0)
        view, bus = RoomView(), Bus()
        engine = MoodEngine(MoodSettings(window_seconds=args.window, dwell_seconds=args.dwell))
        pipeline = Pipeline(make_detector("blazeface"), EmotionClassifier(), engine, bus)
        autoplay = AutoPlay(player, view, lambda: settings)
        changes: list[MoodChange] = []
        lock = threading.Lock()

        def record(change: MoodChange) -> None:
            with lock:
                changes.append(change)

        bus.subscribe("autoplay", autoplay.on_mood, MoodChange)
        bus.subscribe("record", record, MoodChange)
        autoplay.start()

        scene_starts: list[tuple[float, str]] = []  # (wall time of the first frame showing it, expression)
        start = time.monotonic()
        wall0 = time.time()
        total = sum(s.seconds for s in scenes)
        i, last_scene = 0, None
        while (t := i / args.fps) < total:
            delay = start + t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            scene = room.scene_at(t)
            grey = room.render(t)
            if scene is not last_scene:
                scene_starts.append((time.time(), scene.expression))
                last_scene = scene
            pipeline.process(Frame(grey, t, i))
            i += 1
        time.sleep(2)
        autoplay.stop()
        bus.close()

    plays = [r.at for r in fake.calls("PUT", "/v1/me/player/play")]
    event_to_put, expr_to_event, expr_to_put = [], [], []
    wrong = 0
    for c in changes:
        if c.mood == "nobody":
            continue
        put = next((t for t in plays if t >= c.wall_time), None)
        if put is not None:
            event_to_put.append(put - c.wall_time)
        shown = [(w, e) for w, e in scene_starts if w <= c.wall_time]
        w, expression = shown[-1]
        if expression != c.mood:
            wrong += 1
            continue
        expr_to_event.append(c.wall_time - w)
        if put is not None:
            expr_to_put.append(put - w)
    result = {
        "settings": {
            "dwell_seconds": args.dwell,
            "window_seconds": args.window,
            "fps": args.fps,
            "scene_seconds": args.scene,
        },
        "expression_changes": len(scene_starts) - 1,
        "mood_changes": len([c for c in changes if c.mood != "nobody"]),
        "mood_changes_not_matching_the_shown_expression": wrong,
        "plays": len(plays),
        "mood_event_to_put_play": summary(event_to_put),
        "expression_to_mood_event": summary(expr_to_event),
        "expression_to_put_play": summary(expr_to_put),
        "wall_seconds": round(time.time() - wall0, 1),
    }
    print(json.dumps(result, indent=2))
    target = result["mood_event_to_put_play"].get("p95_s", 99) <= 0.5
    print("target (mood event -> PUT play, p95 <= 0.5 s):", "met" if target else "NOT met")


if __name__ == "__main__":
    main()
