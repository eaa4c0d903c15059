"""Arm64 Debian userlands from Debian's own packages, and Trixie's static qemu-aarch64 to run them.

Nothing here touches this machine's apt state: every apt run has its own sources, lists, cache and an empty dpkg
status under the cache folder, and packages are unpacked with `dpkg -x`, so no arm64 maintainer script runs.
qemu always comes from Trixie, downloaded rather than installed: Bookworm's qemu-user 7.2 segfaults inside LiteRT
while it creates an interpreter, Trixie's 10.x works.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from deploy.arm64._run import CheckFailed, run

KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
DEBIAN, SECURITY = "http://deb.debian.org/debian", "http://deb.debian.org/debian-security"
# qemu's CPU model: a Pi 4's Cortex-A72 (no dot-product instructions), so XNNPACK picks the kernels a Pi 4 runs.
CPU = "cortex-a72"
STAMP = ".moodbox-arm64.json"


@dataclass(frozen=True)
class Userland:
    release: str
    root: Path
    python: str  # "3.11"
    glibc: str  # "2.36"
    launcher: Path  # an x86 script that starts the arm64 python under qemu; sys.executable points at it
    packages: dict[str, str]  # Debian package -> version


def mirrors(etc: Path = Path("/etc/apt")) -> tuple[str, str]:
    """The Debian archive and security mirrors this machine's apt uses; Debian's own when it uses none."""
    archive, security = DEBIAN, SECURITY
    entries: list[tuple[str, list[str]]] = []
    for f in sorted(etc.glob("sources.list.d/*.sources")):
        for stanza in f.read_text().split("\n\n"):
            fields = dict(re.findall(r"^(URIs|Suites):\s*(.+)$", stanza, re.M))
            if "URIs" in fields and "Suites" in fields:
                entries += [(uri, fields["Suites"].split()) for uri in fields["URIs"].split()]
    for f in [etc / "sources.list", *sorted(etc.glob("sources.list.d/*.list"))]:
        if f.exists():
            for m in re.finditer(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)", f.read_text(), re.M):
                entries.append((m.group(1), [m.group(2)]))
    for uri, suites in reversed(entries):  # the first listed wins
        if not any(s.split("-")[0] in ("bookworm", "trixie", "bullseye", "stable") for s in suites):
            continue  # not Debian's archive (Ubuntu, or a vendor's repository)
        if any(s.endswith("-security") or "/updates" in s for s in suites):
            security = uri.rstrip("/")
        else:
            archive = uri.rstrip("/")
    return archive, security


class Apt:
    """apt-get with private sources, lists, cache and an empty dpkg status in `home`."""

    def __init__(self, home: Path, suite: str, archs: tuple[str, ...]) -> None:
        if not KEYRING.exists():
            raise CheckFailed(
                f"{KEYRING} is missing: install Debian's keyring (apt-get install debian-archive-keyring)"
            )
        self.home = home
        archive, security = mirrors()
        for d in ("lists/partial", "cache/archives/partial", "parts", "preferences.d"):
            (home / d).mkdir(parents=True, exist_ok=True)
        (home / "status").touch()
        opts = f"arch={','.join(archs)} signed-by={KEYRING}"
        (home / "sources.list").write_text(
            f"deb [{opts}] {archive} {suite} main\n"
            f"deb [{opts}] {archive} {suite}-updates main\n"
            f"deb [{opts}] {security} {suite}-security main\n"
        )
        self.options = [
            f"Dir::Etc::main={home / 'apt.conf'}",  # none: the machine's hooks and caches stay out of it
            f"Dir::Etc::Parts={home / 'parts'}",
            f"Dir::Etc::SourceList={home / 'sources.list'}",
            f"Dir::Etc::SourceParts={home / 'parts'}",
            f"Dir::Etc::Preferences={home / 'preferences'}",
            f"Dir::Etc::PreferencesParts={home / 'preferences.d'}",
            f"Dir::State::Lists={home / 'lists'}",
            f"Dir::State::status={home / 'status'}",
            f"Dir::Cache={home / 'cache'}",
            f"APT::Architecture={archs[0]}",
            f"APT::Architectures={','.join(archs)}",
            "APT::Sandbox::User=root",
            "Debug::NoLocking=true",
            "Acquire::Languages=none",
            "Acquire::Retries=3",
        ]

    def __call__(self, *args: str, what: str, cwd: Path | None = None) -> str:
        cmd = ["apt-get", "-q"]
        for o in self.options:
            cmd += ["-o", o]
        return run([*cmd, *args], what, cwd=cwd).stdout

    def update(self) -> None:
        self("update", what=f"apt-get update ({(self.home / 'sources.list').read_text().split()[2]})")

    def unpack(self, packages: list[str], root: Path) -> dict[str, str]:
        """Download `packages` and everything they depend on, and `dpkg -x` each into `root`."""
        sim = self("install", "-s", "--no-install-recommends", *packages, what=f"resolving {' '.join(packages)}")
        found = re.findall(r"^Inst (\S+) \((\S+) .*\[(\w+)\]\)", sim, re.M)
        if not found:
            raise CheckFailed(f"apt found nothing to install for {' '.join(packages)}:\n{sim[-2000:]}")
        debs = root.parent / f"{root.name}.debs"
        shutil.rmtree(debs, ignore_errors=True)
        debs.mkdir(parents=True)
        names = [f"{name}:{arch}={version}" for name, version, arch in found]
        self("download", *names, what=f"downloading {len(names)} Debian packages", cwd=debs)
        root.mkdir(parents=True, exist_ok=True)
        for deb in sorted(debs.glob("*.deb")):
            run(["dpkg-deb", "-x", deb, root], f"unpacking {deb.name}")
        shutil.rmtree(debs)
        return {name: version for name, version, _ in found}


def qemu(cache: Path) -> Path:
    """Trixie's static qemu-aarch64 (from qemu-user for amd64), kept under the cache without the other targets."""
    binary = cache / "qemu" / "qemu-aarch64"
    if not binary.exists():
        apt = Apt(cache / "apt" / "trixie", "trixie", ("arm64", "amd64"))
        apt.update()
        work = cache / "qemu" / "unpacked"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        apt("download", "qemu-user:amd64", what="downloading Trixie's qemu-user", cwd=work)
        for deb in work.glob("*.deb"):
            run(["dpkg-deb", "-x", deb, work], f"unpacking {deb.name}")
        if not (work / "usr" / "bin" / "qemu-aarch64").exists():
            raise CheckFailed("Trixie's qemu-user has no usr/bin/qemu-aarch64")
        (work / "usr" / "bin" / "qemu-aarch64").rename(binary)
        shutil.rmtree(work)
    run([binary, "--version"], "qemu-aarch64 --version")
    return binary


def userland(release: str, python: str, cache: Path, qemu_binary: Path) -> Userland:
    """An arm64 root with Debian's python`python` for `release`; built once, then reused from the cache."""
    root = cache / release / "root"
    stamp = root / STAMP
    packages = [f"python{python}", "libstdc++6", "libgcc-s1"]
    if not stamp.exists() or json.loads(stamp.read_text()).get("asked") != packages:
        apt = Apt(cache / "apt" / release, release, ("arm64", "amd64") if release == "trixie" else ("arm64",))
        apt.update()
        shutil.rmtree(root, ignore_errors=True)
        installed = apt.unpack(packages, root)
        for top in ("bin", "sbin", "lib"):  # merged /usr (Trixie): the ELF interpreter's /lib path
            if not (root / top).exists() and (root / "usr" / top).is_dir():
                (root / top).symlink_to(f"usr/{top}")
        if not (root / "lib" / "ld-linux-aarch64.so.1").exists():
            raise CheckFailed(f"{release}: the arm64 root has no /lib/ld-linux-aarch64.so.1 (libc6 not unpacked?)")
        libc = installed.get("libc6", "")
        stamp.write_text(json.dumps({"asked": packages, "packages": installed, "glibc": libc.split("-")[0]}, indent=1))
    info = json.loads(stamp.read_text())
    interpreter = root / "usr" / "bin" / f"python{python}"
    if not interpreter.exists():
        raise CheckFailed(f"{release}: Debian's python{python} package has no {interpreter}")
    launcher = root / "usr" / "bin" / "moodbox-python"
    launcher.write_text(f'#!/bin/sh\nexec "{qemu_binary}" -L "{root}" -cpu {CPU} -0 "$0" "{interpreter}" "$@"\n')
    launcher.chmod(0o755)
    return Userland(release, root, python, info["glibc"], launcher, info["packages"])
