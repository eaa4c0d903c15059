"""Run Moodbox's device code as arm64 on Bookworm (Python 3.11) and Trixie (Python 3.13), under qemu.

    .venv/bin/python -m deploy.arm64.check [--release bookworm] [--report report.json] [--fresh]

For each release: an arm64 userland from Debian's packages, the runtime dependencies from pyproject.toml as
aarch64 wheels with setup.sh's pins for that release, then, from this source tree (not installed), under qemu:
`moodbox --help`, `moodbox classify` of justin.jpg and `moodbox replay` of the first 2 s of phone_smile.mp4, each
compared with the same command run here on x86-64. Exit 0 when every release passes, 1 with the problems listed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from deploy.arm64 import compare, debian, wheels
from deploy.arm64._run import CheckFailed, run

REPO = Path(__file__).resolve().parents[2]
MEDIA = REPO.parent / "shared" / "media"
RELEASES = {"bookworm": "3.11", "trixie": "3.13"}  # Raspberry Pi OS release -> Debian's python3
CLIP_SECONDS, CLIP_STEP = 2.0, 2  # every other frame: each one takes 1-3 s under qemu
VERSIONS = """
import json, platform, sys
from importlib.metadata import version
import numpy, cv2, ai_edge_litert.interpreter
print(json.dumps({"machine": platform.machine(), "python": platform.python_version(), "numpy": numpy.__version__,
                  "opencv": cv2.__version__, "litert": version("ai-edge-litert")}))
"""


def cache_folder() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "moodbox-arm64"


def say(text: str) -> None:
    print(f"==> {text}", flush=True)


def changes(replay: dict[str, Any]) -> str:
    return ", ".join(f"{c['mood']} at {c['t']} s" for c in replay["timeline"]) or "no mood change"


def command_env(home: Path, **extra: str) -> dict[str, str]:
    """This environment without a user's Moodbox config or state: a HOME of its own, no MOODBOX_* variables.

    With PYTHONPYCACHEPREFIX in `extra` (the arm64 runs), bytecode is written there, outside the source tree.
    """
    drop = ("MOODBOX_", "PYTHONPATH", "PYTHONHOME", "PYTHONPYCACHEPREFIX", "VIRTUAL_ENV")
    if "PYTHONPYCACHEPREFIX" in extra:
        drop += ("PYTHONDONTWRITEBYTECODE",)
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"), XDG_STATE_HOME=str(home / "state"))
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


def moodbox(python: list[str], env: dict[str, str], *args: str, what: str, timeout: float = 300) -> str:
    return run([*python, "-m", "device", *args], what, cwd=REPO, env=env, timeout=timeout).stdout


def first_seconds(video: Path, seconds: float, step: int, out: Path) -> Path:
    """The first `seconds` of `video`, every `step`th frame, as an MPEG-4 file, cut with OpenCV here."""
    import cv2

    src = cv2.VideoCapture(str(video))
    fps = src.get(cv2.CAP_PROP_FPS)
    size = (int(src.get(cv2.CAP_PROP_FRAME_WIDTH)), int(src.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    dst = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps / step, size)
    for n in range(round(seconds * fps)):
        ok, frame = src.read()
        if not ok:
            break
        if n % step == 0:
            dst.write(frame)
    src.release()
    dst.release()
    if not out.exists() or out.stat().st_size == 0:
        raise CheckFailed(f"could not cut the first {seconds} s of {video} into {out}")
    return out


def reference(work: Path) -> dict[str, Any]:
    """The same commands on this machine (x86-64, the project's .venv): what arm64 must match."""
    for name in ("justin.jpg", "phone_smile.mp4"):
        if not (MEDIA / name).exists():
            raise CheckFailed(f"{MEDIA / name} is missing: the test media live in ../shared/media beside the checkout")
    clip = first_seconds(MEDIA / "phone_smile.mp4", CLIP_SECONDS, CLIP_STEP, work / "phone_smile_start.mp4")
    env = command_env(work / "home-x86")
    python = [sys.executable]
    started = time.monotonic()
    result = {
        "clip": clip,
        "classify": json_from(moodbox(python, env, "classify", str(MEDIA / "justin.jpg"), "--json", what="classify")),
        "replay": json_from(moodbox(python, env, "replay", str(clip), "--json", what="replay")),
    }
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def prepare(release: str, cache: Path, qemu: Path) -> tuple[debian.Userland, dict[str, str]]:
    """The release's arm64 userland, its aarch64 wheels in a site folder, and the environment to run them in."""
    python = RELEASES[release]
    started = time.monotonic()
    land = debian.userland(release, python, cache, qemu)
    say(f"{release}: arm64 userland, {len(land.packages)} Debian packages, glibc {land.glibc}")
    pins = wheels.setup_pins(REPO).get(release, [])
    reqs = wheels.requirements(REPO)
    work = cache / release
    with ThreadPoolExecutor(2) as pool:
        arm, x86 = pool.map(
            lambda arch: wheels.resolve(reqs, pins, python, land.glibc, arch, work), ("aarch64", "x86_64")
        )
    if diff := wheels.differences(arm, x86):
        raise CheckFailed(
            f"{release}: resolves differently for aarch64 than x86-64 with pins {pins}: {'; '.join(diff)}"
        )
    files = wheels.download(arm, python, land.glibc, work / "wheels")
    site = wheels.install(files, python, land.glibc, work)
    say(f"{release}: {len(arm)} aarch64 wheels (pins: {', '.join(pins) or 'none'}), the same versions as x86-64")
    # This machine sets PYTHONDONTWRITEBYTECODE, and `dpkg -x` compiles nothing: without bytecode every emulated
    # run would compile what it imports again (16 s for `import ssl` on 3.13). The runs write it under the cache.
    pycache = work / "pycache"
    for old in (pycache / str(work).lstrip("/")).glob("site-*"):
        if old.name != site.name:  # bytecode of an earlier set of wheels
            shutil.rmtree(old)
    env = command_env(work / "home", PYTHONPATH=f"{REPO}:{site}", PYTHONPYCACHEPREFIX=str(pycache))
    say(f"{release}: ready in {time.monotonic() - started:.1f} s")
    return land, env


def check_release(release: str, cache: Path, qemu: Path, ref: dict[str, Any]) -> dict[str, Any]:
    """Prepare one release and run the three commands under qemu; `problems` lists what did not match."""
    started = time.monotonic()
    out: dict[str, Any] = {"problems": []}
    try:
        land, env = prepare(release, cache, qemu)
        out["prepare_s"] = round(time.monotonic() - started, 1)
        python = [str(land.launcher)]
        out["versions"] = v = json_from(run([*python, "-c", VERSIONS], f"{release}: imports", env=env).stdout)
        say(
            f"{release}: {v['machine']}, Python {v['python']}, numpy {v['numpy']}, "
            f"OpenCV {v['opencv']}, LiteRT {v['litert']}"
        )
        if v["machine"] != "aarch64" or not v["python"].startswith(RELEASES[release] + "."):
            out["problems"].append(f"ran as {v['machine']} with Python {v['python']}, not aarch64 {RELEASES[release]}")
        for step in (check_help, check_classify, check_replay):
            t = time.monotonic()
            out["problems"] += step(release, python, env, ref, out)
            out[f"{step.__name__.removeprefix('check_')}_s"] = round(time.monotonic() - t, 1)
    except CheckFailed as e:
        out["problems"].append(str(e))
    out["total_s"] = round(time.monotonic() - started, 1)
    return out


def json_from(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise CheckFailed(f"expected JSON, got: {text[:500]!r}") from e


def check_help(release: str, python: list[str], env: dict[str, str], ref: dict[str, Any], out: dict) -> list[str]:
    usage = moodbox(python, env, "--help", what=f"{release}: moodbox --help")
    return [] if "usage: moodbox" in usage else [f"moodbox --help printed no usage line:\n{usage[:500]}"]


def check_classify(release: str, python: list[str], env: dict[str, str], ref: dict[str, Any], out: dict) -> list[str]:
    t = time.monotonic()
    justin = str(MEDIA / "justin.jpg")
    out["classify"] = json_from(moodbox(python, env, "classify", justin, "--json", what=f"{release}: classify"))
    problems = compare.classify(out["classify"], ref["classify"])
    for face, face_x86 in zip(out["classify"][0].get("faces", []), ref["classify"][0]["faces"], strict=False):
        top = face["emotion"]
        say(
            f"{release}: classify justin.jpg: {top} {face['probabilities'][top]:.4f}, box {face['box']} "
            f"(x86-64: {face_x86['emotion']} {face_x86['probabilities'][face_x86['emotion']]:.4f}, "
            f"box {face_x86['box']}; probabilities differ by up to {compare.probability_gap(face, face_x86):.4f}) "
            f"in {time.monotonic() - t:.1f} s"
        )
    return problems


def check_replay(release: str, python: list[str], env: dict[str, str], ref: dict[str, Any], out: dict) -> list[str]:
    t = time.monotonic()
    clip = str(ref["clip"])
    out["replay"] = r = json_from(
        moodbox(python, env, "replay", clip, "--json", what=f"{release}: replay", timeout=900)
    )
    x86 = ref["replay"]
    say(
        f"{release}: replay of phone_smile.mp4's first {CLIP_SECONDS:.0f} s: {r['frames']} frames, "
        f"{r['frames_with_faces']} with a face, {changes(r)} (x86-64: {x86['frames']} frames, "
        f"{x86['frames_with_faces']} with a face, {changes(x86)}) in {time.monotonic() - t:.1f} s"
    )
    return compare.replay(r, ref["replay"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m deploy.arm64.check", description=__doc__.split("\n\n")[0])
    p.add_argument("--release", action="append", choices=sorted(RELEASES), help="default: both")
    p.add_argument("--report", type=Path, help="write the results as JSON here")
    p.add_argument("--cache", type=Path, default=cache_folder(), help="downloads and userlands (default: %(default)s)")
    p.add_argument("--fresh", action="store_true", help="rebuild the userlands and download everything again")
    args = p.parse_args(argv)
    started = time.monotonic()
    if args.fresh:
        shutil.rmtree(args.cache, ignore_errors=True)
    args.cache.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"releases": {}}
    with tempfile.TemporaryDirectory(prefix="moodbox-arm64-") as tmp:
        try:
            ref = reference(Path(tmp))
        except CheckFailed as e:
            print(f"arm64 check: the x86-64 reference run failed: {e}", file=sys.stderr)
            return 1
        report["x86_64"] = {k: ref[k] for k in ("classify", "replay", "seconds")}
        try:
            qemu = debian.qemu(args.cache)
        except CheckFailed as e:
            print(f"arm64 check: no qemu-aarch64: {e}", file=sys.stderr)
            return 1
        releases = args.release or list(RELEASES)
        with ThreadPoolExecutor(len(releases)) as pool:  # the two emulations share this machine's cores
            results = pool.map(lambda r: check_release(r, args.cache, qemu, ref), releases)
            report["releases"] = dict(zip(releases, results, strict=True))
    report["total_s"] = round(time.monotonic() - started, 1)
    if args.report:
        args.report.write_text(json.dumps(report, indent=1))
    failed = {r: v["problems"] for r, v in report["releases"].items() if v["problems"]}
    for release, problems in failed.items():
        for problem in problems:
            print(f"arm64 check FAILED on {release}: {problem}", file=sys.stderr)
    times = ", ".join(f"{r} {v['total_s']} s" for r, v in report["releases"].items())
    say(f"arm64 check {'failed' if failed else 'passed'} in {report['total_s']} s ({times})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
