"""Mutation testing of the core modules: does each module's own test file catch a plausible bug?

    .venv/bin/python benchmarks/mutation.py [mood autoplay pipeline spotify server] [--children 2] [--list]

mutmut (the dev extra) changes one thing at a time in a module (a `<` into `<=`, a constant into another, a
call dropped) and runs the module's own fast tests against each change. A change the tests catch is "killed";
one they all pass is "survived", a bug nobody would notice; "timeout" is one that made the tests hang (a loop that
never ends), which counts as caught. "no tests" is code that no test of the module reaches.

Each module runs in a scratch copy of the checkout under .mutation/<module>/ (git-ignored), with a mutmut setting
of its own, so its mutants are judged by its own test files only and the runs do not share results. A second run
of a module whose code and tests are unchanged reuses mutmut's results; any change starts that module over, as
--fresh does. Prints, for each module, the counts and the score (killed + timeout over all), and with --list the
surviving mutants' names (`cd .mutation/<module> && ../../.venv/bin/mutmut show NAME` shows one as a diff).

Not part of `./setup.sh test`: all five take 35 to 50 minutes on 2 cores (README, "Mutation testing").
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / ".mutation"
# module -> (the file mutated, its own fast test files)
MODULES = {
    "mood": ("device/mood.py", ["tests/test_mood.py"]),
    "autoplay": ("device/autoplay.py", ["tests/test_autoplay.py", "tests/test_music.py"]),  # music: plays, volume
    "pipeline": ("device/pipeline.py", ["tests/test_pipeline.py"]),
    "spotify": ("device/player/_spotify.py", ["tests/test_spotify.py", "tests/test_music.py"]),
    "server": ("web_ui/server.py", ["tests/test_page_server.py"]),
}
COPIED = ("device", "web_ui", "tests", "models", "benchmarks")  # what the tests import; `mutants/` holds copies
SKIPPED = ("__pycache__", "checkpoints", "*.pyc", ".pytest_cache")
TARGETS = {"mood": 0.90, "autoplay": 0.90}  # the others: 0.80
LOG_LINE = r"^\s*((network_)?log\.(debug|info|warning|error|exception)|self\._warn)\("  # lines never mutated
STATUS = {  # mutmut's words -> ours
    "killed": "killed",
    "survived": "survived",
    "timeout": "timeout",
    "no tests": "no tests",
    "suspicious": "survived",  # passed, but slowly: not caught
    "segfault": "killed",
    "check was interrupted by user": "not run",
    "not checked": "not run",
    "skipped": "not run",
    "caught by type check": "killed",
}


def settings(path: str, tests: list[str]) -> str:
    """The [tool.mutmut] table for one module."""
    return "\n".join(
        [
            "[tool.mutmut]",
            'source_paths = ["device", "web_ui"]',
            'also_copy = ["models", "benchmarks"]',  # the model and its metadata; benchmarks.pi_speed's crowd
            f"only_mutate = [{json.dumps(path)}]",
            f"pytest_add_cli_args_test_selection = {json.dumps(tests)}",
            # no timeout plugin fights mutmut's own; slow tests stay out; no cache writes from 2 workers at once
            'pytest_add_cli_args = ["-p", "no:cacheprovider", "-m", "not slow", "-o", "timeout=0"]',
            # a log line's wording is for people reading the log: a changed word there is no bug a user meets
            f"do_not_mutate_patterns = [{json.dumps(LOG_LINE)}]",
            "use_git_change_detection = false",
            "timeout_multiplier = 3.0",
            "",
        ]
    )


def scratch(name: str, fresh: bool) -> Path:
    """.mutation/<name>/: this checkout's code and tests, a pyproject with this module's mutmut table, and
    ../shared beside its `mutants/` copy, where the tests look for their data."""
    path, tests = MODULES[name]
    here = WORK / name
    inputs = hashlib.sha256(settings(path, tests).encode())
    for folder in COPIED:  # any change in the code or the tests: mutmut's earlier results no longer hold
        for f in sorted((REPO / folder).rglob("*.py")):
            inputs.update(f.read_bytes())
    stamp = here / "inputs.sha256"
    if here.exists() and (fresh or not stamp.exists() or stamp.read_text() != inputs.hexdigest()):
        shutil.rmtree(here)
    here.mkdir(parents=True, exist_ok=True)
    for folder in COPIED:
        shutil.copytree(REPO / folder, here / folder, ignore=shutil.ignore_patterns(*SKIPPED), dirs_exist_ok=True)
    pyproject = (REPO / "pyproject.toml").read_text()
    pyproject = re.sub(r"\n\[tool\.mutmut\]\n.*?(?=\n\[|\Z)", "\n", pyproject, flags=re.S)
    (here / "pyproject.toml").write_text(pyproject.rstrip() + "\n\n" + settings(path, tests))
    shared = here / "shared"  # mutants/../shared
    if not shared.exists():
        shared.symlink_to((REPO.parent / "shared").resolve())
    if (REPO / ".venv").exists() and not (here / "mutants" / ".venv").exists():
        (here / "mutants").mkdir(exist_ok=True)
        (here / "mutants" / ".venv").symlink_to((REPO / ".venv").resolve())
    stamp.write_text(inputs.hexdigest())
    return here


def mutmut(here: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=here, env=env, text=True, check=False, **kw)


def counts(here: Path, path: str) -> tuple[dict[str, int], list[str]]:
    """Counts by status, and the surviving mutants' names, from `mutmut results --all true`."""
    done = mutmut(here, "results", "--all", "true", capture_output=True)
    if done.returncode != 0:
        raise SystemExit(f"mutmut could not list the results of {path}:\n{done.stderr[-2000:]}")
    out = done.stdout
    found: dict[str, int] = dict.fromkeys(("killed", "survived", "timeout", "no tests", "not run"), 0)
    survivors = []
    for line in out.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if not name:
            continue
        ours = STATUS.get(status, "survived")
        found[ours] += 1
        if ours in ("survived", "no tests"):
            survivors.append(f"{name} ({status})")
    return found, survivors


def run(name: str, children: int, fresh: bool) -> dict:
    path, tests = MODULES[name]
    here = scratch(name, fresh)
    start = time.monotonic()
    done = mutmut(here, "run", "--max-children", str(children), capture_output=True)
    seconds = time.monotonic() - start
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-3000:]
        raise SystemExit(f"mutmut failed on {path} (exit {done.returncode}):\n{tail}")
    found, survivors = counts(here, path)
    judged = sum(found[k] for k in ("killed", "survived", "timeout", "no tests"))
    score = (found["killed"] + found["timeout"]) / judged if judged else 0.0
    return {
        "module": path,
        "tests": tests,
        **found,
        "score": round(score, 3),
        "seconds": round(seconds),
        "left": survivors,
    }


def host() -> str:
    name, flags = platform.processor() or "cpu", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = (part.strip() for part in line.partition(":"))
            if key == "model name":
                name = value
            elif key in ("flags", "Features"):
                flags |= set(value.split())
    except OSError:
        pass
    vector = next(
        (label for flag, label in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("asimd", "NEON")) if flag in flags), ""
    )
    return f"{name}, {vector}, {os.cpu_count()} cores" if vector else f"{name}, {os.cpu_count()} cores"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("modules", nargs="*", help=f"any of {', '.join(MODULES)} (default: all five)")
    p.add_argument("--children", type=int, default=os.cpu_count() or 2, help="mutants tested at once")
    p.add_argument("--fresh", action="store_true", help="forget earlier results and test every mutant again")
    p.add_argument("--list", action="store_true", help="print the surviving mutants' names")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    args = p.parse_args()
    names = args.modules or list(MODULES)
    if unknown := [n for n in names if n not in MODULES]:
        p.error(f"no module {', '.join(unknown)}: choose from {', '.join(MODULES)}")
    started = time.monotonic()
    results = []
    for name in names:
        r = run(name, args.children, args.fresh)
        results.append(r)
        if not args.json:
            target = TARGETS.get(name, 0.80)
            verdict = "meets" if r["score"] >= target else "BELOW"
            print(
                f"{r['module']:28} killed {r['killed']:4}  survived {r['survived']:3}  timeout {r['timeout']:3}  "
                f"no tests {r['no tests']:3}  score {100 * r['score']:5.1f}% ({verdict} {100 * target:.0f}%)  "
                f"{r['seconds']} s",
                flush=True,
            )
            if args.list:
                for left in r["left"]:
                    print(f"    {left}")
    total = time.monotonic() - started
    if args.json:
        print(json.dumps({"host": host(), "seconds": round(total), "modules": results}, indent=2))
    else:
        print(f"{len(names)} module(s) in {total / 60:.1f} min on {host()}, {time.strftime('%Y-%m-%d')}")


if __name__ == "__main__":
    main()
