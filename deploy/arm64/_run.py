"""Running a step of the arm64 check: a failure names the step, the command and the end of its output."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path


class CheckFailed(Exception):
    """The arm64 check found a problem; the message says what, and for which package or command."""


def run(
    cmd: Sequence[str | Path],
    what: str,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 900,
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion; raise CheckFailed naming `what` if it fails or runs past `timeout`."""
    args = [str(c) for c in cmd]
    try:
        r = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as e:
        raise CheckFailed(f"{what}: still running after {timeout:.0f} s: {' '.join(args)}") from e
    except FileNotFoundError as e:
        raise CheckFailed(f"{what}: {args[0]} is not installed ({e})") from e
    if r.returncode != 0:
        tail = "\n".join((r.stderr or r.stdout).strip().splitlines()[-15:])
        raise CheckFailed(f"{what}: exit {r.returncode} from {' '.join(args[:6])} ...\n{tail}")
    return r
