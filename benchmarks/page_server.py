"""The page's server in this checkout against a baseline (main by default), run side by side and alternated.

    .venv/bin/python benchmarks/page_server.py [--baseline main] [--rounds 6] [--requests 300]

First the two servers alone, each in a process of its own in front of a WSGI app that answers 900 bytes with the
page's headers: per request on one keep-alive connection, the median time and the server's CPU time. Then two
daemons, this checkout's and `git archive BASELINE`'s, each signed in and in privacy mode so that no frame loop
competes for the CPU; in rounds that alternate which daemon goes first:

- on one keep-alive connection, `--requests` GET /healthz and as many GET /api/state (signed in): the median time
  per request as the client sees it, and the daemon's own CPU time per request (utime + stime from /proc);
- /healthz p95 over 40 new connections while another socket sends blank lines as fast as it can;
- how much the log grows from 300 pipelined requests with `Host: 127.0.0.1:\\xb2` on one socket.

Prints the medians over the rounds and the ratios. A benchmark, not a test: it passes or fails nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import free_port, isolated_env, login  # noqa: E402

BAD_HOST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:\xb2\r\n\r\n"


class Daemon:
    def __init__(self, name: str, tree: Path, tmp: Path) -> None:
        self.name, self.port = name, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = isolated_env(tmp)
        self.state_dir = Path(env["XDG_STATE_HOME"]) / "moodbox"
        self.log_path = tmp / "daemon.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "device", "run", "--port", str(self.port)],
            cwd=tree,
            env=env,
            stdout=self.log_path.open("w"),
            stderr=subprocess.STDOUT,
        )
        end = time.monotonic() + 120
        while True:
            try:
                requests.get(self.base + "/healthz", timeout=2)
                break
            except requests.ConnectionError:
                if time.monotonic() > end or self.proc.poll() is not None:
                    raise SystemExit(
                        f"{name}: the daemon did not start:\n{self.log_path.read_text()[-2000:]}"
                    ) from None
                time.sleep(0.2)
        http = login(self.base, self.state_dir)
        http.patch(self.base + "/api/settings", json={"privacy_mode": True}, timeout=10).raise_for_status()
        self.cookie = "; ".join(f"{c.name}={c.value}" for c in http.cookies)

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def read_answer(s: socket.socket, pending: bytes) -> bytes:
    """One answer with a Content-Length off a keep-alive socket; returns what came after it."""
    while b"\r\n\r\n" not in pending:
        pending += s.recv(65536)
    head, _, rest = pending.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200 "):
        raise SystemExit(f"unexpected answer: {head[:200]!r}")
    length = int(
        next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    )
    while len(rest) < length:
        rest += s.recv(65536)
    return rest[length:]


def per_request(daemon: Daemon, path: str, n: int) -> tuple[float, float]:
    """(median seconds per request at the client, the daemon's CPU seconds per request) on one connection."""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {daemon.cookie}\r\n\r\n".encode()
    times = []
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as s:
        s.sendall(request)  # one to warm up
        pending = read_answer(s, b"")
        cpu = daemon.cpu_seconds()
        for _ in range(n):
            start = time.perf_counter()
            s.sendall(request)
            pending = read_answer(s, pending)
            times.append(time.perf_counter() - start)
        cpu = daemon.cpu_seconds() - cpu
    return statistics.median(times), cpu / n


def health_p95_during_blank_line_flood(daemon: Daemon) -> tuple[float, float]:
    """(/healthz p95 over 40 new connections, megabytes of blank lines sent meanwhile)."""
    stop, sent = threading.Event(), [0]

    def flood() -> None:
        with socket.create_connection(("127.0.0.1", daemon.port)) as s, contextlib.suppress(OSError):
            chunk = b"\r\n" * 32768
            while not stop.is_set():
                s.sendall(chunk)
                sent[0] += len(chunk)

    flooding = threading.Thread(target=flood, daemon=True)
    flooding.start()
    times = []
    try:
        time.sleep(0.2)
        for _ in range(40):
            start = time.perf_counter()
            try:
                with socket.create_connection(("127.0.0.1", daemon.port), timeout=5) as s:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                    while s.recv(65536):
                        pass
                times.append(time.perf_counter() - start)
            except OSError:
                times.append(5.0)
    finally:
        stop.set()
        flooding.join(10)
    return statistics.quantiles(times, n=20)[18], sent[0] / 1e6


def log_growth(daemon: Daemon) -> int:
    before = daemon.log_path.stat().st_size
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as s:
        s.sendall(BAD_HOST * 299 + b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        with contextlib.suppress(OSError):
            while s.recv(65536):
                pass
    time.sleep(0.5)  # the log is written by the daemon's threads
    return daemon.log_path.stat().st_size - before


PAGE_HEADERS = [
    ("Content-Type", "application/json"),
    ("Content-Length", "900"),
    ("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
    ("Cache-Control", "no-store"),
]


def small_app(environ, start_response):
    start_response("200 OK", list(PAGE_HEADERS))
    return [b"x" * 900]


class ServerAlone:
    """A tree's web_ui/server.py alone in a child process, in front of `small_app` (see `--serve-alone`)."""

    def __init__(self, name: str, tree: Path) -> None:
        self.name, self.cookie = name, ""
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve-alone", str(tree)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self.port = int(self.proc.stdout.readline())

    cpu_seconds = Daemon.cpu_seconds

    def stop(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(10)


def serve_alone(tree: Path) -> None:
    """The child of ServerAlone: serve until the parent closes stdin."""
    sys.path.insert(0, str(tree))
    spec = importlib.util.spec_from_file_location("web_ui.server", tree / "web_ui/server.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    server = module.PageServer(small_app, "127.0.0.1", 0)
    server.start()
    print(server.port, flush=True)
    sys.stdin.read()
    server.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", default="main", help="git revision to compare with (default main)")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--serve-alone", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_alone:
        serve_alone(args.serve_alone)
        return 0
    with tempfile.TemporaryDirectory(prefix="page-server-") as tmp:
        old_tree = Path(tmp) / "baseline"
        old_tree.mkdir()
        archive = subprocess.run(["git", "archive", args.baseline], cwd=REPO, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(old_tree)], input=archive.stdout, check=True)
        names = ["this checkout", f"baseline {args.baseline}"]
        results: dict[str, dict[str, list[float]]] = {name: {} for name in names}
        alone = [ServerAlone(name, tree) for name, tree in zip(names, (REPO, old_tree))]
        try:
            for r in range(args.rounds):
                for server in alone if r % 2 == 0 else alone[::-1]:
                    wall, cpu = per_request(server, "/api/state", args.requests)
                    results[server.name].setdefault("server alone us", []).append(wall * 1e6)
                    results[server.name].setdefault("server alone cpu us", []).append(cpu * 1e6)
        finally:
            for server in alone:
                server.stop()
        daemons = []
        try:
            for name, tree in zip(names, (REPO, old_tree)):
                (Path(tmp) / name).mkdir()
                daemons.append(Daemon(name, tree, Path(tmp) / name))
            for r in range(args.rounds):
                for d in daemons if r % 2 == 0 else daemons[::-1]:
                    for path in ("/healthz", "/api/state"):
                        wall, cpu = per_request(d, path, args.requests)
                        results[d.name].setdefault(f"{path} ms", []).append(wall * 1000)
                        results[d.name].setdefault(f"{path} cpu ms", []).append(cpu * 1000)
                    if r < 2:
                        p95, sent = health_p95_during_blank_line_flood(d)
                        results[d.name].setdefault("flood p95 ms", []).append(p95 * 1000)
                        results[d.name].setdefault("flood MB", []).append(sent)
                        results[d.name].setdefault("log bytes", []).append(log_growth(d))
        finally:
            for d in daemons:
                d.stop()
    cpu = platform.processor() or next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        "?",
    )
    print(
        f"{time.strftime('%Y-%m-%d')}, {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{args.rounds} rounds of {args.requests} requests; medians over the rounds"
    )
    print(f"{'':28}{names[0]:>18}{names[1]:>18}{'ratio':>8}   (range over rounds)")
    for key in results[names[0]]:
        a, b = (statistics.median(results[n][key]) for n in names)
        spread = "   ".join(f"{min(results[n][key]):.3g}-{max(results[n][key]):.3g}" for n in names)
        print(f"{key:28}{a:18.3f}{b:18.3f}{a / b if b else float('nan'):8.2f}   {spread}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
