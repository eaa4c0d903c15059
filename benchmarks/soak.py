"""A soak: the real daemon on the demo feed for a while, with live streams attached, watched from outside.

    .venv/bin/python benchmarks/soak.py [--minutes 15] [--streams 8]

Starts `moodbox run` (isolated state, demo camera), signs in, and keeps `--streams` live streams open, each read
like a phone does; when the box ends a stream (every 5 minutes) it reconnects, like EventSource. /healthz is asked
every 5 s. Prints the daemon's RSS, open files, threads and frames per second at the start and the end, and the
streams' events, reconnects and errors. A benchmark, not a test: it prints numbers and passes or fails nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import DaemonProcess, isolated_env  # noqa: E402


def process_numbers(pid: int, base: str) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    health = requests.get(base + "/healthz", timeout=5).json()
    return {
        "rss_mb": round(rss_kb / 1024, 1),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "threads": len(os.listdir(f"/proc/{pid}/task")),
        "fps": round(health.get("fps", 0.0), 1),
        "frames": health.get("frames", 0),
    }


class Reader(threading.Thread):
    """One phone: reads its stream, and reconnects 2 s after the box ends it."""

    def __init__(self, http: requests.Session, base: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.http, self.base, self.stop = http, base, stop
        self.events = self.connects = self.errors = 0

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with self.http.get(self.base + "/api/events", stream=True, timeout=30) as r:
                    if r.status_code != 200:
                        self.errors += 1
                        self.stop.wait(5)
                        continue
                    self.connects += 1
                    for line in r.iter_lines():
                        if line.startswith(b"event: state"):
                            self.events += 1
                        if self.stop.is_set():
                            return
            except requests.RequestException:
                if not self.stop.is_set():
                    self.errors += 1
            self.stop.wait(2.0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=15.0)
    p.add_argument("--streams", type=int, default=8, help="live streams held open (4 per sign-in)")
    args = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="moodbox-soak-"))
    daemon = DaemonProcess(tmp, env=isolated_env(tmp))
    stop = threading.Event()
    try:
        daemon.wait_healthy()
        sessions = [daemon.login() for _ in range(-(-args.streams // 4))]
        readers = [Reader(sessions[i // 4], daemon.base, stop) for i in range(args.streams)]
        for reader in readers:
            reader.start()
        time.sleep(10)  # warm up: model loaded, streams open, fps settled
        pid = daemon.proc.pid
        start, began = process_numbers(pid, daemon.base), time.monotonic()
        print("start:", json.dumps(start), flush=True)
        latencies, health_errors = [], 0
        end = began + args.minutes * 60
        while time.monotonic() < end:
            t = time.monotonic()
            try:
                requests.get(daemon.base + "/healthz", timeout=5).raise_for_status()
                latencies.append(time.monotonic() - t)
            except requests.RequestException:
                health_errors += 1
            time.sleep(max(0.0, 5 - (time.monotonic() - t)))
        finish = process_numbers(pid, daemon.base)
        frames = finish["frames"] - start["frames"]
        print("end:  ", json.dumps(finish))
        print(
            json.dumps(
                {
                    "minutes": round((time.monotonic() - began) / 60, 2),
                    "rss_change_mb": round(finish["rss_mb"] - start["rss_mb"], 1),
                    "fds_change": finish["fds"] - start["fds"],
                    "threads_change": finish["threads"] - start["threads"],
                    "mean_fps": round(frames / (time.monotonic() - began), 1),
                    "stream_events": sum(r.events for r in readers),
                    "stream_connects": sum(r.connects for r in readers),
                    "stream_errors": sum(r.errors for r in readers),
                    "healthz_p95_ms": round(statistics.quantiles(latencies, n=20)[18] * 1000, 1)
                    if len(latencies) >= 2
                    else None,
                    "healthz_errors": health_errors,
                    "daemon_exit": daemon.proc.poll(),
                }
            )
        )
    finally:
        stop.set()
        daemon.stop()


if __name__ == "__main__":
    main()
