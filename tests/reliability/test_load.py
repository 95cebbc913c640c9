"""Held load: 200 concurrent clients on the unified endpoint for 10 s over loopback.

The server is the real command, ``python -m telemetry_otel serve --app _load_app:build --port 0
--cache-ttl 2`` (the demo runtime plus a probe service that logs the time of every collection), in
its own process. The clients are ``wrk -c200 -d10s`` (Debian's ``wrk``), which stops by itself,
rotating over every view in every metric format. Measured: errors (non-2xx answers and socket
errors), p50/p99 latency, requests per second, the server's RSS before, at its peak and after,
and every collection the server ran, from the probe's log.
"""

from __future__ import annotations

import itertools
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

HERE = Path(__file__).resolve().parent
BASE = "/api/demo/v1/telemetry"
CACHE_TTL_S = 2.0
SECONDS = 10
CONNECTIONS = 200
VIEWS = ("summary", "health", "operational", "performance", "reliability", "detailed")
FORMATS = ("json", "prometheus", "openmetrics", "graphite", "influxdb")
#: Once the cache window has expired, the next request (there is one every few ms) starts a refresh:
#: two collections are never further apart than the window plus one collection plus this slack.
REFRESH_SLACK_S = 1.0
#: How much later into its cycle one probe may run than another (the gaps are between probes).
PROBE_JITTER_S = 0.05
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}

ROTATE_LUA = """
local paths = {}
for _, view in ipairs({%s}) do
  for _, format in ipairs({%s}) do
    table.insert(paths, "%s?view=" .. view .. "&format=" .. format)
  end
end
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1])
end
"""


def _start_server(probe: Path) -> tuple[subprocess.Popen[bytes], str, queue.Queue[str], threading.Thread]:
    env = {
        **os.environ,
        "PYTHONPATH": str(HERE),
        "LOAD_PROBE_FILE": str(probe),
        "OTEL_METRICS_EXPORTER": "none",
    }
    env.pop("TELEMETRY_OTEL_API_TOKEN", None)
    command = [sys.executable, "-m", "telemetry_otel", "serve", "--app", "_load_app:build", "--port", "0"]
    command += ["--cache-ttl", str(CACHE_TTL_S), "--log-level", "warning"]
    server = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        cwd="/",  # ``python -m`` puts the working directory first: use the installed package
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert server.stderr is not None
        for raw in server.stderr:
            lines.put(raw.decode("utf-8", "replace"))

    reader = threading.Thread(target=pump, name="server-stderr", daemon=True)
    reader.start()
    deadline = time.monotonic() + 20
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            _stop(server, reader)
            raise AssertionError("the server printed no URL within 20 s") from None
        found = re.search(r"(http://127\.0\.0\.1:\d+)/metrics", line)
        if found:
            return server, found.group(1), lines, reader


def _stop(server: subprocess.Popen[bytes], reader: threading.Thread) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    reader.join(5)
    assert server.stderr is not None
    server.stderr.close()


def _seconds(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    assert found, text
    return float(found.group(1)) * _UNITS[found.group(2)]


def _wrk(url: str, script: Path) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    assert wrk is not None, "wrk is missing: ./dev test installs it (Debian package wrk)"
    done = subprocess.run(
        [
            wrk,
            "-t2",
            f"-c{CONNECTIONS}",
            f"-d{SECONDS}s",
            "--timeout",
            "5s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        timeout=SECONDS + 30,
        check=True,
    )
    out = done.stdout
    percentiles = {int(p): _seconds(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", out, re.M)}
    requests = re.search(r"(\d+) requests in ([\d.]+)s", out)
    assert requests, out
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert rps, out
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "output": out,
        "p50": percentiles[50],
        "p99": percentiles[99],
        "requests": int(requests.group(1)),
        "rps": float(rps.group(1)),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(n) for n in sockets.groups()) if sockets else 0,
    }


class _RssSampler:
    """Samples a process's resident memory every 50 ms in a thread."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.samples.append(self._process.memory_info().rss)

    def __enter__(self) -> _RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def test_200_clients_for_10_seconds_no_errors_one_collection_per_cache_window(
    tmp_path: Path, report: Any
) -> None:
    probe = tmp_path / "collections.txt"
    script = tmp_path / "rotate.lua"
    script.write_text(
        ROTATE_LUA
        % (", ".join(f'"{view}"' for view in VIEWS), ", ".join(f'"{fmt}"' for fmt in FORMATS), BASE)
    )
    server, url, stderr, reader = _start_server(probe)
    try:
        with httpx.Client(base_url=url, timeout=10) as http:
            deadline = time.monotonic() + 10
            while http.get(f"{BASE}/health/ready").status_code != 200:
                assert time.monotonic() < deadline, "not ready within 10 s"
                time.sleep(0.05)
            rss_before = psutil.Process(server.pid).memory_info().rss
            started = time.monotonic()
            with _RssSampler(server.pid) as rss:
                load = _wrk(url, script)
            ended = time.monotonic()
            rss_after = psutil.Process(server.pid).memory_info().rss
            # A scrape is served the newest completed collection while a refresh it started runs:
            # a live collection, made after the load, counts every collection, itself included.
            time.sleep(1.0)  # past the live floor; any refresh the load started has finished
            params = {"view": "detailed", "format": "prometheus", "live": "true"}
            scrape = http.get(BASE, params=params).text
    finally:
        _stop(server, reader)
    assert server.returncode == 0, "".join(stderr.queue)
    errors = "".join(stderr.queue)
    times = [float(line) for line in probe.read_text().split()]
    counted = _collections_total(scrape)
    # The last collection is the live one the test made after the load, outside the cache windows.
    gaps = [later - earlier for earlier, later in itertools.pairwise(times[:-1])]
    during = [t for t in times if started <= t <= ended]
    # The same number of collections seen by the runtime's own counter and by the probe: the probe
    # ran exactly once per collection.
    assert counted == len(times), (counted, len(times))
    assert load["non2xx"] == 0, load["output"]
    assert load["socket_errors"] == 0, load["output"]
    assert "Traceback" not in errors, errors
    assert "ERROR" not in errors, errors
    # Exactly one collection per cache window: never two within one window, never a window without.
    # Ages count from a cycle's start; the probe runs a few milliseconds into its cycle.
    assert min(gaps) >= CACHE_TTL_S - PROBE_JITTER_S, gaps
    window_gaps = [later - earlier for earlier, later in itertools.pairwise(during)]
    assert max(window_gaps) <= CACHE_TTL_S + REFRESH_SLACK_S, window_gaps
    assert SECONDS / (CACHE_TTL_S + REFRESH_SLACK_S) - 1 <= len(during) <= SECONDS / CACHE_TTL_S + 1
    peak = max(rss.samples)
    assert peak < 400 * 2**20
    assert rss_after - rss_before < 64 * 2**20
    report(
        "load",
        connections=CONNECTIONS,
        seconds=SECONDS,
        requests=load["requests"],
        rps=load["rps"],
        errors=load["non2xx"] + load["socket_errors"],
        p50_ms=round(load["p50"] * 1000, 2),
        p99_ms=round(load["p99"] * 1000, 2),
        collections=len(during),
        min_gap_s=round(min(gaps), 3),
        max_gap_s=round(max(window_gaps), 3),
        rss_before_mib=round(rss_before / 2**20, 1),
        rss_peak_mib=round(peak / 2**20, 1),
        rss_after_mib=round(rss_after / 2**20, 1),
    )


def _collections_total(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "telemetry_collections_total":
                return sample.value
    raise AssertionError("no telemetry_collections_total in /metrics")
