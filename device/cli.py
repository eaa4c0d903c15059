"""The `moodbox` command: run the daemon, classify photos, replay videos, measure the household learner."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from device.camera import CameraError
from device.config import ConfigError, load
from device.litert import ModelError
from device.store import StorageError, StoreError


def _parser() -> argparse.ArgumentParser:
    config_help = (
        "config file (default: $MOODBOX_CONFIG, /etc/moodbox/moodbox.toml, ~/.config/moodbox/moodbox.toml; "
        "none = defaults)"
    )
    levels = ("DEBUG", "INFO", "WARNING", "ERROR")
    p = argparse.ArgumentParser(prog="moodbox", description="Emotion-aware music for the room.")
    p.add_argument("--config", type=Path, help=config_help)
    p.add_argument("--log-level", default="INFO", choices=levels)
    # the same two options after the command too (`moodbox run --config X`); given there, they win
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, default=argparse.SUPPRESS, help=config_help)
    common.add_argument("--log-level", default=argparse.SUPPRESS, choices=levels)
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", parents=[common], help="run the daemon: camera, mood, music and the page")
    run.add_argument("--port", type=int, help="web page port (default from config: 8080)")
    cls = sub.add_parser("classify", parents=[common], help="faces and emotions in photos")
    cls.add_argument("images", nargs="+", type=Path)
    cls.add_argument("--json", action="store_true", help="print JSON")
    rep = sub.add_parser("replay", parents=[common], help="the mood timeline of a video, an image folder, or 'demo'")
    rep.add_argument("video", help="a video file, a folder of images, or 'demo' for the built-in demo feed")
    rep.add_argument("--json", action="store_true", help="print JSON")
    rep.add_argument("--pace", choices=("fast", "realtime"), default="fast")
    learn = sub.add_parser(
        "learn", parents=[common], help="measure the household learner on a folder of photos (<mood>/<photo>)"
    )
    learn.add_argument(
        "--simulate", type=Path, required=True, metavar="FOLDER", help="photos in folders named after their mood"
    )
    how = learn.add_mutually_exclusive_group()
    how.add_argument(
        "--corrections", type=_count, default=10, metavar="N", help="natural walk: misreads corrected (default 10)"
    )
    how.add_argument("--per-class", type=_count, metavar="K", help="balanced: K photos of each mood as corrections")
    learn.add_argument("--seeds", type=_count, default=20, metavar="S", help="random orders averaged (default 20)")
    learn.add_argument(
        "--uncorrected",
        choices=("anchor", "confirm", "ignore"),
        default="anchor",
        help="what photos not corrected teach: anchor the fit to the model's own reading (the box's rule), count "
        "as confirmations of what was shown, or nothing (for comparing)",
    )
    learn.add_argument("--json", action="store_true", help="print JSON")
    pair = sub.add_parser(
        "pairing-code", parents=[common], help="print the one-time code for setting the page's password (first run)"
    )
    pair.add_argument("--reset", action="store_true", help="forgot the password: forget it and print a new code")
    return p


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 1 and text != "0":
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return n


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from device.systemd import setup_logging

    setup_logging(args.log_level if args.command == "run" else "WARNING")
    try:
        config = load(args.config)
        if args.command == "run":
            from device.storage import prepare_folder

            prepare_folder(config.state.path)  # before anything heavy: a state folder it cannot write is exit 78
            from device.daemon import Daemon

            return Daemon(config, args.port).run_forever()
        if args.command == "pairing-code":
            return _pairing_code(config, args.reset)
        if args.command == "learn":
            return _learn(config, args)
        from device import offline

        if args.command == "classify":
            results = offline.classify(config, args.images)
            _print(results, args.json, offline.describe_classify)
            return 0 if all("error" not in r for r in results) else 1
        result = offline.replay(config, args.video, args.pace)
        _print(result, args.json, offline.describe_replay)
        return 0
    except (ConfigError, ModelError, StorageError) as exc:
        print(f"moodbox: {exc}", file=sys.stderr)
        return 78  # EX_CONFIG, also for a state folder it cannot write: systemd does not restart-loop on it
    except CameraError as exc:
        print(f"moodbox: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"moodbox: {exc}", file=sys.stderr)
        return 75  # EX_TEMPFAIL: systemd restarts later, when the lock may be gone
    except KeyboardInterrupt:
        return 130
    finally:
        logging.shutdown()


def _pairing_code(config, reset: bool = False) -> int:
    from device.storage import prepare_folder
    from device.store import Store
    from web_ui.auth import Owner

    state = config.state.path
    prepare_folder(state)
    owner = Owner(Store(state / "moodbox.db"), state)
    code = owner.reset() if reset else owner.pairing_code()
    if code is None:
        print("The page's password is already set; sign in with it (forgot it? moodbox pairing-code --reset).")
    else:
        print(f"Pairing code: {code}  (enter it on the page's Set up screen to choose the password)")
    return 0


def _learn(config, args) -> int:
    from dataclasses import replace

    from device.learning import LearnerSettings
    from device.learning._simulate import read_folder, simulate

    try:
        readings = read_folder(args.simulate, config.emotion.model_path)
        settings = replace(LearnerSettings(), uncorrected=args.uncorrected)
        result = simulate(readings, args.corrections, args.per_class, args.seeds, settings)
    except (FileNotFoundError, ValueError) as exc:
        print(f"moodbox: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"{result['faces_found']} faces in {result['photos']} photos, {result['protocol']}, "
        f"{result['corrections']:g} corrections, {result['seeds']} seeds: "
        f"{result['before']:.1%} before, {result['after']:.1%} after (sd {result['after_sd']:.1%})"
    )
    for mood, was in result["per_class_before"].items():
        print(f"  {mood:9s} {was:6.1%} -> {result['per_class_after'][mood]:6.1%}")
    return 0


def _print(result, as_json: bool, describe) -> None:
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print(describe(result))
