"""The project's runtime dependencies as aarch64 wheels, with the pins `setup.sh` uses on each release.

pip on this machine resolves for the target (`--platform`, `--python-version`). Every manylinux tag up to the
target's glibc is listed, because pip matches tags exactly: with only manylinux2014 it would silently take LiteRT
1.4, as LiteRT 2.x is tagged manylinux_2_27. The same resolution for x86-64 (same Python, same pins) is the
reference: a package with no aarch64 wheel, or whose version differs between the two, fails with its name.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
import time
import tomllib
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from deploy.arm64._run import CheckFailed, run

RESOLVED_FOR_S = 24 * 3600
PIN_LINE = re.compile(r'\[ "\$codename" = (\w+) \]; then\s*\n\s*printf \'([^\']*)\' >"\$constraints"')


@dataclass(frozen=True)
class Wheel:
    name: str  # normalised: lower case, runs of -_. as one -
    version: str
    url: str

    @property
    def filename(self) -> str:
        return urllib.parse.unquote(self.url.rsplit("/", 1)[-1])


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(repo: Path) -> list[str]:
    """The runtime dependencies, as pyproject.toml lists them."""
    return tomllib.loads((repo / "pyproject.toml").read_text())["project"]["dependencies"]


def setup_pins(repo: Path) -> dict[str, list[str]]:
    """The constraints setup.sh writes per Raspberry Pi OS release (today: Bookworm's numpy<2 and OpenCV<=4.11)."""
    text = (repo / "setup.sh").read_text()
    pins = {m.group(1): [p for p in m.group(2).split("\\n") if p] for m in PIN_LINE.finditer(text)}
    if len(pins) != text.count('>"$constraints"'):
        raise CheckFailed(
            "setup.sh writes constraints in a form this check does not read: keep them as one "
            '`printf \'...\' >"$constraints"` line right after `if [ "$codename" = RELEASE ]; then`'
        )
    return pins


def target_options(python: str, glibc: str, arch: str) -> list[str]:
    """pip's options for a CPython `python` on glibc `glibc` and `arch`: every manylinux tag the target accepts."""
    major, minor = (int(p) for p in glibc.split(".")[:2])
    first = 17 if arch == "aarch64" else 5
    tags = [f"manylinux_{major}_{m}_{arch}" for m in range(first, minor + 1)] + [f"manylinux2014_{arch}"]
    if arch == "x86_64":
        tags += ["manylinux2010_x86_64", "manylinux1_x86_64"]
    opts = ["--only-binary=:all:", "--python-version", python, "--implementation", "cp"]
    opts += ["--abi", "cp" + python.replace(".", "")]
    for tag in [*tags, f"linux_{arch}"]:
        opts += ["--platform", tag]
    return opts


def resolve(reqs: list[str], pins: list[str], python: str, glibc: str, arch: str, work: Path) -> dict[str, Wheel]:
    """What pip would install for the target; CheckFailed names a package that has no wheel for it.

    The answer is kept for a day in `work`, and asked again at once when the requirements or pins change.
    """
    work.mkdir(parents=True, exist_ok=True)
    options = target_options(python, glibc, arch)
    key = hashlib.sha256(json.dumps([reqs, pins, options]).encode()).hexdigest()
    kept = work / f"resolved-{arch}.json"
    if kept.exists() and time.time() - kept.stat().st_mtime < RESOLVED_FOR_S:
        try:
            answer = json.loads(kept.read_text())
            if answer.get("key") == key:
                return {name: Wheel(**w) for name, w in answer["wheels"].items()}
        except (ValueError, KeyError, TypeError):
            pass  # written by an older version of this check: ask pip again
    constraints, report = work / f"constraints-{arch}.txt", work / f"pip-report-{arch}.json"
    constraints.write_text("".join(f"{p}\n" for p in pins))
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed", "--report", report]
    target = f"Python {python}, {arch}, glibc {glibc}"
    try:
        run([*cmd, *options, "-c", constraints, *reqs], f"resolving the runtime dependencies for {target}", timeout=300)
    except CheckFailed as e:
        missing = re.findall(r"No matching distribution found for (\S+)", str(e))
        if missing:
            raise CheckFailed(f"no wheel of {', '.join(missing)} for {target} (pins: {pins or 'none'})") from e
        raise
    wheels = {}
    for item in json.loads(report.read_text())["install"]:
        name = normalise(item["metadata"]["name"])
        wheels[name] = Wheel(name, item["metadata"]["version"], item["download_info"]["url"])
    kept.write_text(json.dumps({"key": key, "wheels": {n: vars(w) for n, w in wheels.items()}}, indent=1))
    return wheels


def differences(arm: dict[str, Wheel], x86: dict[str, Wheel]) -> list[str]:
    """Packages that resolve differently for aarch64 than for x86-64 with the same pins, by name."""
    out = []
    for name in sorted(arm.keys() | x86.keys()):
        a, x = arm.get(name), x86.get(name)
        if a is None or x is None or a.version != x.version:
            out.append(
                f"{name}: aarch64 {a.version if a else 'not installed'}, x86-64 {x.version if x else 'not installed'}"
            )
    return out


def download(wheels: dict[str, Wheel], python: str, glibc: str, into: Path) -> list[Path]:
    """The wheel files, downloaded once into `into` and then reused."""
    into.mkdir(parents=True, exist_ok=True)
    missing = [w for w in wheels.values() if not (into / w.filename).exists()]
    if missing:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", into]
        cmd += [*target_options(python, glibc, "aarch64"), *(f"{w.name}=={w.version}" for w in missing)]
        run(cmd, f"downloading {len(missing)} aarch64 wheels for Python {python}", timeout=900)
    files = [into / w.filename for w in wheels.values()]
    absent = [f.name for f in files if not f.exists()]
    if absent:
        raise CheckFailed(f"pip download did not leave {', '.join(absent)} in {into}")
    return files


def install(files: list[Path], python: str, glibc: str, site_root: Path) -> Path:
    """The wheels unpacked into a site folder named after exactly this set of wheels (reused when it exists)."""
    key = hashlib.sha256("\n".join(sorted(f.name for f in files)).encode()).hexdigest()[:12]
    site = site_root / f"site-{key}"
    if site.is_dir():
        return site
    for old in site_root.glob("site-*"):
        shutil.rmtree(old)
    partial = site_root / "site-partial"
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--no-compile"]
    cmd += ["--ignore-requires-python", "--target", partial, *target_options(python, glibc, "aarch64"), *files]
    run(cmd, f"installing the aarch64 wheels for Python {python}", timeout=600)
    partial.rename(site)
    return site
