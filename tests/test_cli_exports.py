"""Push exports as users run them: ``telemetry-otel serve`` and a plain script, as real processes.

A carbon-style receiver on loopback records each line with its arrival time. Under ``serve`` the
exporter keeps its own interval (not the view cache's), and SIGTERM ends the process after one
final collection is exported, without a traceback; a plain script that never calls shutdown gets its
final export at exit too.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

COMMAND = [sys.executable, "-m", "telemetry_otel"]
NEUTRAL_CWD = "/"  # ``python -m`` puts the working directory first: test the installed package
#: The series every collection of the demo has exactly once, whatever the simulation does.
PROBE = "telemetry.collections"
#: The runtime's identity nodes every pushed path ends with (hierarchical layout).
_IDENTITY_NODES = re.compile(r"\.resource_service_instance_id\.[0-9a-f-]+\.resource_service_name\.[^.]+$")


class _Receiver:
    """A plaintext (carbon) TCP receiver: every line, with the monotonic time it arrived."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._server.getsockname()[1]
        self.lines: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._read, args=(connection,), daemon=True).start()

    def _read(self, connection: socket.socket) -> None:
        buffer = b""
        with connection:
            while chunk := connection.recv(65536):
                buffer += chunk
                *complete, buffer = buffer.split(b"\n")
                now = time.monotonic()
                with self._lock:
                    self.lines.extend((now, line.decode()) for line in complete)

    def probes(self) -> list[tuple[float, float]]:
        """(arrival, value) of every line of the probe series, in arrival order."""
        with self._lock:
            return [
                (arrived, float(line.split()[1]))
                for arrived, line in self.lines
                if _IDENTITY_NODES.sub("", line.split(" ", 1)[0].split(";", 1)[0]).endswith(PROBE)
            ]

    def close(self) -> None:
        self._server.close()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    listening = _Receiver()
    yield listening
    listening.close()


def _env(receiver: _Receiver, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "TELEMETRY_"))}
    env.update(
        OTEL_METRICS_EXPORTER="graphite",
        TELEMETRY_OTEL_GRAPHITE_ENDPOINT=f"127.0.0.1:{receiver.port}",
        TELEMETRY_OTEL_GRAPHITE_TAGGED="false",
        **extra,
    )
    return env


def _start_serve(env: dict[str, str]) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [*COMMAND, "serve", "--demo", "--port", "0", "--seed", "3"],  # the default 30 s cache
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=NEUTRAL_CWD,
    )
    assert process.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line or re.search(r"http://127\.0\.0\.1:\d+/metrics", line):
            break
    return process


def test_serve_exports_at_its_own_interval_and_once_more_at_sigterm(receiver: _Receiver) -> None:
    process = _start_serve(_env(receiver, OTEL_METRIC_EXPORT_INTERVAL="1000"))
    assert process.stderr is not None
    try:
        deadline = time.monotonic() + 20
        while len(receiver.probes()) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        periodic = receiver.probes()
        assert len(periodic) >= 5, periodic  # with a 30 s view cache, a point every 30 s before
        gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(periodic)]
        assert all(0.6 < gap < 1.6 for gap in gaps[:4]), gaps
        values = [value for _, value in periodic]
        assert values == sorted(set(values)), values  # a new collection each time, never one twice
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=20)
        stderr = process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
        process.stderr.close()
    assert code == 0, stderr
    for text in ("Traceback", "RuntimeError", "never awaited", "TimeoutError"):
        assert text not in stderr, stderr
    time.sleep(0.2)
    final = receiver.probes()
    assert len(final) > len(periodic)  # the final export
    assert final[-1][1] > periodic[-1][1]  # of a collection made at shutdown


def test_a_plain_script_that_never_shuts_down_exports_once_more_at_exit(receiver: _Receiver) -> None:
    script = textwrap.dedent(
        """
        from telemetry_otel import setup_telemetry
        from telemetry_otel.instrumentation import instrument_service
        setup_telemetry(service_name="script")
        jobs = instrument_service("jobs", category="batch")
        for _ in range(3):
            jobs.record_request(0.01)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=_env(receiver),  # the default 60 s interval: only the exit export can deliver
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=NEUTRAL_CWD,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    time.sleep(0.2)
    requests = [
        line
        for _, line in receiver.lines
        if line.startswith("service.requests.") and "service_name.jobs" in line
    ]
    assert len(requests) == 1, receiver.lines[:20]
    assert float(requests[0].split()[1]) == 3.0


def test_serve_keeps_the_healthy_exporter_on_time_and_exits_within_the_bound_beside_hostile_backends(
    receiver: _Receiver, hostile: Any
) -> None:
    """Under ``serve``: Graphite healthy, InfluxDB trickling one byte every 0.25 s, OTLP/HTTP silent,
    with the default 30 s export timeout. The healthy exporter keeps its 1 s interval, the view's
    status, health score and alerts are pushed with each collection, and SIGTERM exits within the
    default shutdown bound (10 s)."""
    trickle, silent = hostile("trickle"), hostile("silent")
    env = _env(receiver)
    env.update(
        OTEL_METRIC_EXPORT_INTERVAL="1000",
        OTEL_METRICS_EXPORTER="graphite,influxdb,otlp",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_ENDPOINT=silent.url,
        TELEMETRY_OTEL_INFLUXDB_URL=trickle.url,
        TELEMETRY_OTEL_INFLUXDB_DATABASE="db",
    )
    process = _start_serve(env)
    assert process.stderr is not None
    try:
        deadline = time.monotonic() + 20
        while len(receiver.probes()) < 8 and time.monotonic() < deadline:
            time.sleep(0.05)
        periodic = receiver.probes()
        assert len(periodic) >= 8, periodic
        gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(periodic)]
        # Never held up by the other two: a point every second. (A collection that is not ready
        # within the interval, on a loaded machine, skips one tick: that is the cycle, not them.)
        assert all(0.5 < gap < 2.6 for gap in gaps), gaps
        assert sorted(gaps)[len(gaps) // 2] < 1.2, gaps
        assert trickle.requests >= 1  # tried, in parallel
        assert silent.requests >= 1
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        code = process.wait(timeout=30)
        exit_seconds = time.monotonic() - signalled
        stderr = process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
        process.stderr.close()
    assert code == 0, stderr
    assert exit_seconds <= 10.0 + 1.5, exit_seconds
    assert "Traceback" not in stderr, stderr
    # Metric names of every pushed path (the identity nodes come right after the name).
    names = {line.split(" ", 1)[0].split(".resource_service")[0] for _, line in receiver.lines}
    # The views' status, health score and alerts are pushed with each collection, and the
    # exporters' own series name what the hostile backends could not take.
    wanted = {
        "telemetry.health.score",
        "telemetry.status",
        "telemetry.alerts.active",
        "telemetry.export.late",
    }
    assert wanted <= names, sorted(name for name in names if name.startswith("telemetry."))
    print(
        f"RELIABILITY serve-sigterm-beside-hostile-backends: exit_s={exit_seconds:.2f} ticks={len(periodic)}"
    )
