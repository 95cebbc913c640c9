"""Cached summary view throughput over HTTP against a trivial Starlette JSON route on the same server.

One uvicorn server (one process, one worker) serves the demo runtime through the unified endpoint
with a one-hour cache, and a trivial route returning a small JSON body. ``wrk`` (Debian package
``wrk``) drives each URL in turn over loopback, alternating in every round; the ratio is the
summary's requests per second over the trivial route's, per round, and its median is reported.

Target (issue): cached summary / trivial >= 0.5.

Run: ``python benchmarks/bench_endpoint.py [--rounds N] [--seconds S] [--connections C]``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUMMARY = "/api/demo/v1/telemetry"
TRIVIAL = "/trivial"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wrk(url: str, seconds: int, connections: int) -> float:
    """Requests per second ``wrk`` measured on ``url`` (non-2xx answers make the run fail)."""
    result = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    )
    if "Non-2xx" in result.stdout or "Socket errors" in result.stdout:
        raise RuntimeError(f"wrk saw errors on {url}:\n{result.stdout}")
    found = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    if found is None:
        raise RuntimeError(f"no Requests/sec in wrk's output:\n{result.stdout}")
    return float(found.group(1))


def main() -> int:
    """Start the server, alternate wrk runs, print the ratio."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench_endpoint: wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "_endpoint_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd="/",
        env=env,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + SUMMARY, timeout=5) as response:
                    body = response.read()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the server did not come up") from None
                time.sleep(0.2)
        if b'"view":"summary"' not in body:
            raise RuntimeError(f"unexpected summary body: {body[:200]!r}")
        summary_rps: list[float] = []
        trivial_rps: list[float] = []
        for round_index in range(args.rounds):
            order = [(SUMMARY, summary_rps), (TRIVIAL, trivial_rps)]
            for path, into in order if round_index % 2 == 0 else reversed(order):
                into.append(_wrk(base + path, args.seconds, args.connections))
    finally:
        os.killpg(server.pid, signal.SIGINT)
        server.wait(timeout=15)
    ratios = [s / t for s, t in zip(summary_rps, trivial_rps, strict=True)]
    print(
        f"endpoint_throughput: {args.rounds} rounds x {args.seconds} s per URL, wrk -t1 -c{args.connections}"
    )
    print(f"{'url':<28}{'median req/s':>14}{'min':>10}{'max':>10}")
    for name, values in (("cached summary view", summary_rps), ("trivial JSON route", trivial_rps)):
        print(f"{name:<28}{statistics.median(values):>14.0f}{min(values):>10.0f}{max(values):>10.0f}")
    ratio = statistics.median(ratios)
    print(
        f"\ncached summary / trivial = {ratio:.3f} (median of per-round ratios; min {min(ratios):.3f}, "
        f"max {max(ratios):.3f}); target >= 0.5: {'met' if ratio >= 0.5 else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
