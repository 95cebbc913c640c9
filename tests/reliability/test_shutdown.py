"""Shutdown: bounded in time whatever the backends and snapshots do, flushes what is pending, and a
second call is harmless. Thread counts are taken before the runtime exists and after it is gone.

Backends that misbehave are real sockets on loopback: a *closed port* (connection refused) and a
*blackhole* (a listening socket that never accepts: the kernel completes the TCP handshake, nobody
ever reads or answers).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from telemetry_otel import Snapshot, Telemetry, TelemetryConfig
from telemetry_otel._runtime import SNAPSHOT_THREADS, THREAD_JOIN_SECONDS
from telemetry_otel.exporters import (
    GraphiteExporter,
    InfluxExporter,
    OTLPExporter,
    PushExporter,
    exporters_from_env,
)
from telemetry_otel.instrumentation import gauge, instrument_service

EXPORT_TIMEOUT_MS = 1_000
SHUTDOWN_TIMEOUT_MS = 2_000
#: ``shutdown(t)`` may overrun ``t`` by one export in flight, itself bounded by the export timeout.
SHUTDOWN_BOUND_S = (SHUTDOWN_TIMEOUT_MS + EXPORT_TIMEOUT_MS) / 1000 + 0.5


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens there once the socket is closed


@pytest.fixture
def blackhole() -> Iterator[int]:
    sock = socket.create_server(("127.0.0.1", 0), backlog=64)  # listens, never accepts
    yield int(sock.getsockname()[1])
    sock.close()


def _exporter(kind: str, port: int) -> PushExporter:
    if kind == "otlp-http":
        return OTLPExporter(
            "http/protobuf",
            endpoint=f"http://127.0.0.1:{port}/v1/metrics",
            export_timeout_millis=EXPORT_TIMEOUT_MS,
        )
    if kind == "otlp-grpc":
        return OTLPExporter(
            "grpc", endpoint=f"127.0.0.1:{port}", insecure=True, export_timeout_millis=EXPORT_TIMEOUT_MS
        )
    if kind == "influxdb":
        return InfluxExporter(f"http://127.0.0.1:{port}", database="telemetry")
    return GraphiteExporter("127.0.0.1", port)


def _runtime(exporters: list[PushExporter]) -> Telemetry:
    config = TelemetryConfig(
        service_name="shutdown", export_interval_millis=3_600_000, export_timeout_millis=EXPORT_TIMEOUT_MS
    )
    telemetry = Telemetry(config, exporters)
    service = instrument_service("svc", category="c", telemetry=telemetry)
    for _ in range(100):
        service.record_request(0.01)
    return telemetry


@pytest.mark.parametrize("backend", ["closed_port", "blackhole"])
@pytest.mark.parametrize("kind", ["otlp-http", "otlp-grpc", "influxdb", "graphite"])
def test_shutdown_is_bounded_whatever_the_backend_does(
    kind: str, backend: str, request: pytest.FixtureRequest, no_thread_leak: Any, report: Any
) -> None:
    port: int = request.getfixturevalue(backend)
    with no_thread_leak():
        telemetry = _runtime([_exporter(kind, port)])
        telemetry.exports.export_now()  # one cycle fails (or hangs until the export timeout)
        started = time.perf_counter()
        telemetry.shutdown(SHUTDOWN_TIMEOUT_MS)
        elapsed = time.perf_counter() - started
    [stats] = telemetry.exports.stats()
    assert elapsed < SHUTDOWN_BOUND_S, (kind, backend, elapsed)
    report("shutdown bound", exporter=kind, backend=backend, shutdown_s=round(elapsed, 2), stats=stats)


def test_the_otlp_exporter_bounds_each_export_by_the_export_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """opentelemetry-exporter-otlp ignores the per-call timeout and retries within its own (10 s)."""
    for name in ("OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OTEL_METRIC_EXPORT_TIMEOUT", raising=False)
    assert OTLPExporter("http/protobuf", export_timeout_millis=1_500).timeout_seconds == 1.5
    assert OTLPExporter("grpc", export_timeout_millis=1_500).timeout_seconds == 1.5
    # Default export timeout (30 s): never longer than the OTLP exporter's own 10 s.
    assert OTLPExporter("http/protobuf").timeout_seconds == 10.0
    # The user's choice wins: an explicit timeout, or the OTLP variables.
    assert OTLPExporter("http/protobuf", timeout=42).timeout_seconds == 42
    monkeypatch.setenv("OTEL_METRIC_EXPORT_TIMEOUT", "2500")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    [from_env] = exporters_from_env()
    assert isinstance(from_env, OTLPExporter)
    assert from_env.timeout_seconds == 2.5
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "7")
    assert OTLPExporter("http/protobuf").timeout_seconds is None  # left to the OTLP exporter: 7 s
    with pytest.raises(ValueError, match="export timeout must be a positive number of milliseconds"):
        OTLPExporter("grpc", timeout=None, export_timeout_millis=0, environ={})


class _LineServer:
    """A TCP server that keeps every line it receives (a carbon stand-in)."""

    def __init__(self, port: int) -> None:
        self.lines: list[str] = []
        self._sock = socket.create_server(("127.0.0.1", port))
        self._sock.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="line-server", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(0.1)
                buffer = b""
                while not self._stop.is_set():
                    try:
                        chunk = conn.recv(65536)
                    except TimeoutError:
                        continue
                    if not chunk:
                        break
                    buffer += chunk
                    *complete, buffer = buffer.split(b"\n")
                    self.lines.extend(line.decode() for line in complete)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()


def test_a_graphite_export_on_an_open_connection_never_waits(closed_port: int) -> None:
    """Regression (telemetry_otel/exporters/_graphite.py, ``_peer_closed``, new in commit 0f0089a): the
    check for a closed connection calls ``recv(1, MSG_PEEK | MSG_DONTWAIT)`` on a socket that has a
    timeout; in timeout mode Python waits for the socket to become readable first, so on a healthy
    connection (carbon never writes) the call blocks for the whole export timeout, raises
    ``TimeoutError`` (an ``OSError``), and the connection is taken for closed and reopened. Every
    export after the first then costs the full export timeout: held batches drain one per cycle at
    best, and a flush at shutdown runs out of time. ``select.select([sock], [], [], 0)`` before the
    peek (or ``settimeout(0)`` around it) keeps the check instant."""
    server = _LineServer(closed_port)
    exporter = GraphiteExporter("127.0.0.1", closed_port)
    telemetry = _runtime([])
    data = telemetry.read_metrics()
    timings: list[float] = []
    try:
        for _ in range(3):
            started = time.perf_counter()
            exporter.export(data, 2_000)
            timings.append(time.perf_counter() - started)
    finally:
        exporter.shutdown()
        server.close()
        telemetry.shutdown()
    assert max(timings) < 0.5, timings


def test_shutdown_flushes_what_the_retries_hold_within_its_bound(
    closed_port: int, no_thread_leak: Any, report: Any
) -> None:
    with no_thread_leak():
        telemetry = _runtime([GraphiteExporter("127.0.0.1", closed_port, tagged=True)])
        for _ in range(3):  # the backend is down: three batches are held for retry
            telemetry.exports.export_now()
        [held] = telemetry.exports.stats()
        assert (held.sent, held.buffered) == (0, 3)
        server = _LineServer(closed_port)  # the backend comes back, inside the backoff window
        try:
            started = time.perf_counter()
            telemetry.shutdown(SHUTDOWN_TIMEOUT_MS)
            elapsed = time.perf_counter() - started
            deadline = time.monotonic() + 5
            while sum(line.startswith("service.requests;") for line in server.lines) < 4:
                assert time.monotonic() < deadline, server.lines[:5]
                time.sleep(0.02)
        finally:
            server.close()
    [flushed] = telemetry.exports.stats()
    # The three held batches and the final collection, in order, nothing dropped.
    assert (flushed.sent, flushed.buffered, flushed.dropped) == (4, 0, 0)
    values = [line.split()[1] for line in server.lines if line.startswith("service.requests;")]
    assert values == ["100", "100", "100", "100"]
    assert elapsed < SHUTDOWN_BOUND_S
    report(
        "shutdown flush",
        held=3,
        delivered=flushed.sent,
        dropped=flushed.dropped,
        shutdown_s=round(elapsed, 3),
    )


def test_shutdown_joins_the_runtime_threads(no_thread_leak: Any, report: Any) -> None:
    """Up to ``SNAPSHOT_THREADS`` snapshot threads and one read thread while running; none after."""
    depth = gauge("work.queue.depth", "{item}", "Items waiting.")

    def slow() -> Snapshot:
        time.sleep(0.05)
        return {"work.queue.depth": 1}

    baseline = threading.active_count()
    with no_thread_leak(timeout=0):  # no waiting: shutdown() itself must have joined them
        telemetry = Telemetry(TelemetryConfig(service_name="threads"))
        for index in range(SNAPSHOT_THREADS + 8):
            instrument_service(
                f"svc{index}", category="c", snapshot=slow, metrics=[depth], telemetry=telemetry
            )
        for _ in range(3):
            asyncio.run(telemetry.collect())
        running = threading.active_count() - baseline
        started = time.perf_counter()
        telemetry.shutdown()
        elapsed = time.perf_counter() - started
    assert running == SNAPSHOT_THREADS + 1
    assert elapsed < 0.5
    report("runtime threads", while_running=running, after_shutdown=0, shutdown_s=round(elapsed, 3))


def test_a_snapshot_stuck_for_ever_neither_holds_shutdown_nor_the_process_exit(report: Any) -> None:
    """Before the fix, the process never exited: the standard pool joins its workers at exit."""
    script = textwrap.dedent(
        """
        import asyncio, threading, time
        from telemetry_otel import Telemetry, TelemetryConfig
        from telemetry_otel.instrumentation import gauge, instrument_service
        telemetry = Telemetry(TelemetryConfig(service_name="stuck", service_timeout_millis=100))
        never = threading.Event()
        def stuck():
            never.wait()
            return {}
        depth = gauge("stuck.depth", "{item}", "Items waiting.")
        instrument_service("stuck", category="c", snapshot=stuck, metrics=[depth], telemetry=telemetry)
        print(asyncio.run(telemetry.collect()).outcomes["stuck"].outcome, flush=True)
        started = time.perf_counter()
        telemetry.shutdown()
        print(round(time.perf_counter() - started, 3), flush=True)
        """
    )
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
        cwd="/",  # ``python -c`` puts the working directory first: use the installed package
    )
    total = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    outcome, shutdown_seconds = done.stdout.split()
    assert outcome == "timeout"
    assert THREAD_JOIN_SECONDS <= float(shutdown_seconds) < THREAD_JOIN_SECONDS + 0.3
    assert "1 thread(s) still inside a snapshot or read call (telemetry-snapshot_0)" in done.stderr
    report("stuck snapshot at exit", shutdown_s=shutdown_seconds, process_s=round(total, 2))


def test_a_second_shutdown_is_harmless(closed_port: int, caplog: pytest.LogCaptureFixture) -> None:
    telemetry = _runtime([GraphiteExporter("127.0.0.1", closed_port)])
    telemetry.shutdown(SHUTDOWN_TIMEOUT_MS)
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        started = time.perf_counter()
        telemetry.shutdown(SHUTDOWN_TIMEOUT_MS)
        telemetry.exports.shutdown(SHUTDOWN_TIMEOUT_MS)
        elapsed = time.perf_counter() - started
    assert elapsed < 0.01
    assert caplog.records == []
    # Services that still record after shutdown neither raise nor block; a collection is refused.
    service = instrument_service("late", category="c", telemetry=telemetry)
    service.record_request(0.01)
    telemetry.get_meter("late").create_counter("late.jobs").add(1)
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        asyncio.run(telemetry.collect())
