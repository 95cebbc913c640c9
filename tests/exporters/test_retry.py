"""Delivery never raises into the application, retries with bounded backoff and bounded memory."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, cast

import pytest
from opentelemetry.sdk.metrics.export import MetricsData

from telemetry_otel import Telemetry
from telemetry_otel.exporters import GraphiteExporter, InfluxExporter, RetryPolicy
from telemetry_otel.exporters._retry import RetryingExporter
from telemetry_otel.instrumentation import instrument_service


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _LineServer:
    """A plain TCP server that records every line it receives (a Graphite stand-in we own)."""

    def __init__(self, port: int) -> None:
        self.lines: list[str] = []
        self.connections = 0
        self._sock = socket.create_server(("127.0.0.1", port))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with conn:
                conn.settimeout(0.2)
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

    def wait_for(self, predicate: object, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if callable(predicate) and predicate():
                return
            time.sleep(0.02)
        raise AssertionError("the line server did not receive what was expected")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def recorded(telemetry: Telemetry) -> Telemetry:
    service = instrument_service("memory", category="graph", telemetry=telemetry)
    service.record_request(0.01)
    return telemetry


def test_a_backend_down_at_start_is_retried_with_bounded_buffer_then_caught_up(recorded: Telemetry) -> None:
    port = _free_port()
    clock = _Clock()
    exporter = RetryingExporter(
        GraphiteExporter("127.0.0.1", port, tagged=True),
        RetryPolicy(initial_backoff_seconds=1, max_backoff_seconds=8, max_buffered_batches=3),
        clock=clock,
    )
    for _ in range(5):  # the backend is down: nothing raises, at most 3 batches are kept
        exporter.submit(recorded.read_metrics(), 1_000)
        clock.now += 100
    stats = exporter.stats()
    assert (stats.sent, stats.buffered, stats.dropped) == (0, 3, 2)
    assert stats.failed_attempts == 5
    assert stats.last_error is not None
    assert "ConnectionRefusedError" in stats.last_error
    server = _LineServer(port)
    try:
        clock.now += 100
        exporter.submit(recorded.read_metrics(), 1_000)  # recovered: the held batches go first, in order
        server.wait_for(lambda: sum(line.startswith("service.requests;") for line in server.lines) == 3)
        stats = exporter.stats()
        assert (stats.sent, stats.buffered, stats.dropped) == (3, 0, 3)
    finally:
        exporter.shutdown()
        server.close()


def test_backoff_holds_attempts_until_it_has_passed(recorded: Telemetry) -> None:
    clock = _Clock()
    exporter = RetryingExporter(
        GraphiteExporter("127.0.0.1", _free_port()),
        RetryPolicy(initial_backoff_seconds=10, max_backoff_seconds=10, max_buffered_batches=10),
        clock=clock,
    )
    exporter.submit(recorded.read_metrics(), 1_000)
    for _ in range(3):  # within the backoff window: held, not attempted
        clock.now += 0.001
        exporter.submit(recorded.read_metrics(), 1_000)
    assert (exporter.stats().failed_attempts, exporter.stats().buffered) == (1, 4)
    clock.now += 11
    exporter.submit(recorded.read_metrics(), 1_000)  # the backoff has passed: exactly one more attempt
    assert (exporter.stats().failed_attempts, exporter.stats().buffered) == (2, 5)


class _Rejecting(http.server.BaseHTTPRequestHandler):
    calls = 0

    def do_POST(self) -> None:
        type(self).calls += 1
        self.rfile.read(int(self.headers["Content-Length"]))
        body = b'{"error":"database not found: \\"nope\\""}'
        self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def rejecting_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Rejecting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_a_permanent_rejection_is_dropped_with_the_reason_not_retried(
    recorded: Telemetry, rejecting_server: str
) -> None:
    _Rejecting.calls = 0
    exporter = RetryingExporter(InfluxExporter(rejecting_server, database="nope"))
    exporter.submit(recorded.read_metrics(), 2_000)
    exporter.submit(recorded.read_metrics(), 2_000)
    stats = exporter.stats()
    assert (stats.sent, stats.rejected, stats.buffered, stats.failed_attempts) == (0, 2, 0, 0)
    assert stats.last_error == 'HTTP 404: {"error":"database not found: \\"nope\\""}'
    assert _Rejecting.calls == 2


def test_policy_and_exporter_arguments_are_validated() -> None:
    with pytest.raises(ValueError, match="max_buffered_batches must be at least 1"):
        RetryPolicy(max_buffered_batches=0)
    with pytest.raises(ValueError, match="needs database"):
        InfluxExporter("http://127.0.0.1:1")
    with pytest.raises(ValueError, match="v2 needs org, bucket and token"):
        InfluxExporter("http://127.0.0.1:1", bucket="b")
    with pytest.raises(ValueError, match="graphite protocol 'sctp' is not one of tcp, udp"):
        GraphiteExporter(protocol=cast(Any, "sctp"))


class _Backend:
    """A push exporter of our own: refuses every batch while ``down``, keeps what it accepts."""

    name = "backend"

    def __init__(self, clock: _Clock) -> None:
        self.down = True
        self.attempts: list[float] = []  # the clock at each export call
        self.received: list[MetricsData] = []
        self._clock = clock

    def export(self, data: MetricsData, timeout_millis: float) -> None:
        self.attempts.append(self._clock())
        if self.down:
            raise ConnectionRefusedError("backend down")
        self.received.append(data)

    def shutdown(self) -> None:
        pass


def _batch() -> MetricsData:
    return MetricsData(resource_metrics=[])


def test_the_default_policy_is_1s_doubling_to_60s_holding_15_minutes_or_64_mib() -> None:
    policy = RetryPolicy()
    assert (policy.initial_backoff_seconds, policy.max_backoff_seconds, policy.max_buffered_batches) == (
        1.0,
        60.0,
        None,
    )
    assert (policy.max_buffer_seconds, policy.max_buffer_bytes) == (900.0, 64 * 1024 * 1024)
    assert (policy.spool_directory, policy.max_spool_bytes) == (None, 256 * 1024 * 1024)
    assert RetryingExporter(_Backend(_Clock())).policy == policy


def test_backoff_doubles_from_1s_to_a_60s_cap_with_at_least_half_of_it_waited() -> None:
    """After the n-th failure in a row the next attempt comes between half the backoff and the
    backoff (equal jitter), the backoff being 1 s, 2 s, 4 s, ... capped at 60 s."""
    clock = _Clock()
    backend = _Backend(clock)
    exporter = RetryingExporter(backend, clock=clock)  # the default policy
    exporter.submit(_batch(), 1_000)
    assert len(backend.attempts) == 1
    for backoff in (1, 2, 4, 8, 16, 32, 60, 60, 60):
        failed_at = backend.attempts[-1]
        clock.now = failed_at + backoff / 2 - 0.001
        exporter.submit(_batch(), 1_000)
        assert backend.attempts[-1] == failed_at, f"retried before half of the {backoff} s backoff"
        clock.now = failed_at + backoff
        exporter.submit(_batch(), 1_000)
        assert backend.attempts[-1] == clock.now, f"not retried within the {backoff} s backoff"
    assert exporter.stats().failed_attempts == 10


def test_a_success_resets_the_backoff_to_its_first_step() -> None:
    clock = _Clock()
    backend = _Backend(clock)
    exporter = RetryingExporter(
        backend, RetryPolicy(initial_backoff_seconds=1, max_backoff_seconds=60), clock
    )
    exporter.submit(_batch(), 1_000)
    for backoff in (1, 2, 4):  # three failures in a row: the backoff is now 8 s
        clock.now = backend.attempts[-1] + backoff
        exporter.submit(_batch(), 1_000)
    backend.down = False
    clock.now = backend.attempts[-1] + 8
    exporter.submit(_batch(), 1_000)
    assert exporter.stats().buffered == 0
    backend.down = True
    exporter.submit(_batch(), 1_000)  # fails: the first step again
    failed_at = backend.attempts[-1]
    clock.now = failed_at + 0.499
    exporter.submit(_batch(), 1_000)
    assert backend.attempts[-1] == failed_at
    clock.now = failed_at + 1
    exporter.submit(_batch(), 1_000)
    assert backend.attempts[-1] == clock.now


def test_a_count_bound_of_16_batches_drops_the_oldest_first() -> None:
    clock = _Clock()
    backend = _Backend(clock)
    exporter = RetryingExporter(backend, RetryPolicy(max_buffered_batches=16), clock=clock)
    batches = [_batch() for _ in range(20)]
    for batch in batches:  # the clock stands still: one attempt, then every batch waits
        exporter.submit(batch, 1_000)
    stats = exporter.stats()
    assert (stats.failed_attempts, stats.buffered, stats.dropped, stats.sent) == (1, 16, 4, 0)
    backend.down = False
    assert exporter.flush(1_000)
    position = {id(batch): index for index, batch in enumerate(batches)}  # equal batches: by identity
    assert [position[id(batch)] for batch in backend.received] == list(range(4, 20))  # in order
    stats = exporter.stats()
    assert (stats.sent, stats.buffered, stats.dropped) == (16, 0, 4)
    assert stats.dropped_by_reason == {"count": 4}
