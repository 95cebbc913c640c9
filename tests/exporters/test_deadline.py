"""Every export ends by its wall-clock deadline, from connect to the last byte, whatever the server
does: servers on loopback that answer one byte every 0.25 s, never answer, never read, reset every
connection, or answer 429 with ``Retry-After``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import MetricsData

from telemetry_otel import Telemetry
from telemetry_otel.exporters import GraphiteExporter, InfluxExporter, OTLPExporter, RetryPolicy
from telemetry_otel.exporters._deadline import (
    Deadline,
    ExportDeadlineError,
    RetryableExportError,
    parse_retry_after,
    post,
)
from telemetry_otel.exporters._retry import RetryingExporter
from telemetry_otel.instrumentation import instrument_service

DEADLINE_S = 1.0
#: Slack for a loaded CI machine: the watchdog fires at the deadline, the caller returns just after.
SLACK_S = 0.4


@pytest.fixture
def data(telemetry: Telemetry) -> MetricsData:
    service = instrument_service("memory", category="graph", telemetry=telemetry)
    service.record_request(0.01)
    return telemetry.read_metrics()


def _timed(call: Callable[[], Any]) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        call()
    except BaseException as exc:
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


def test_a_trickling_http_answer_is_cut_at_the_deadline(hostile: Callable[..., Any]) -> None:
    server = hostile("trickle", byte_seconds=0.25)  # the answer alone would take ~16 s
    elapsed, error = _timed(lambda: post(server.url + "/write", b"x", {}, Deadline(DEADLINE_S)))
    assert isinstance(error, ExportDeadlineError), error
    assert DEADLINE_S - 0.05 <= elapsed <= DEADLINE_S + SLACK_S, elapsed


def test_influxdb_against_trickling_and_silent_servers_ends_by_the_deadline(
    hostile: Callable[..., Any], data: MetricsData
) -> None:
    for behaviour in ("trickle", "silent"):
        server = hostile(behaviour)
        exporter = InfluxExporter(server.url, database="db")
        elapsed, error = _timed(lambda exporter=exporter: exporter.export(data, DEADLINE_S * 1000))
        assert isinstance(error, ExportDeadlineError), (behaviour, error)
        assert elapsed <= DEADLINE_S + SLACK_S, (behaviour, elapsed)


def test_otlp_http_against_a_trickling_server_ends_by_the_deadline(
    hostile: Callable[..., Any], data: MetricsData
) -> None:
    server = hostile("trickle")
    exporter = OTLPExporter("http/protobuf", endpoint=server.url + "/v1/metrics")
    try:
        elapsed, error = _timed(lambda: exporter.export(data, DEADLINE_S * 1000))
    finally:
        exporter.shutdown()
    assert isinstance(error, ExportDeadlineError), error
    assert elapsed <= DEADLINE_S + SLACK_S, elapsed


def test_otlp_grpc_against_a_silent_server_ends_by_the_deadline(
    hostile: Callable[..., Any], data: MetricsData
) -> None:
    server = hostile("blackhole")
    exporter = OTLPExporter("grpc", endpoint=f"127.0.0.1:{server.port}", insecure=True)
    try:
        elapsed, error = _timed(lambda: exporter.export(data, DEADLINE_S * 1000))
    finally:
        exporter.shutdown()
    assert error is not None
    assert elapsed <= DEADLINE_S + SLACK_S, elapsed


def test_graphite_against_a_server_that_never_reads_ends_by_the_deadline(hostile: Callable[..., Any]) -> None:
    server = hostile("blackhole")
    exporter = GraphiteExporter("127.0.0.1", server.port)
    payload = b"a.b 1 1\n" * 2_000_000  # 16 MB: far more than the socket buffers hold
    try:
        elapsed, error = _timed(lambda: exporter.send(payload, Deadline(DEADLINE_S)))
    finally:
        exporter.shutdown()
    assert isinstance(error, ExportDeadlineError), error
    assert elapsed <= DEADLINE_S + SLACK_S, elapsed


def test_a_connection_reset_is_a_retryable_failure(hostile: Callable[..., Any], data: MetricsData) -> None:
    server = hostile("reset")
    elapsed, error = _timed(lambda: InfluxExporter(server.url, database="db").export(data, 5_000))
    assert isinstance(error, OSError), error
    assert not isinstance(error, ExportDeadlineError)
    assert elapsed < 1.0


def test_a_deadline_moved_earlier_cuts_the_export_in_flight(hostile: Callable[..., Any]) -> None:
    import threading

    server = hostile("silent")
    deadline = Deadline(30.0)
    outcome: list[BaseException | None] = []
    thread = threading.Thread(
        target=lambda: outcome.append(_timed(lambda: post(server.url, b"x", {}, deadline))[1])
    )
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    deadline.tighten(time.monotonic())  # what shutdown does with the attempt in flight
    thread.join(5)
    assert time.monotonic() - started < 1.0
    assert isinstance(outcome[0], ExportDeadlineError), outcome


def test_429_with_retry_after_is_honoured(hostile: Callable[..., Any], data: MetricsData) -> None:
    server = hostile("status", status=429, retry_after="30")
    exporter = InfluxExporter(server.url, database="db")
    with pytest.raises(RetryableExportError) as raised:
        exporter.export(data, 5_000)
    assert raised.value.retry_after == 30.0
    clock = [0.0]
    retrying = RetryingExporter(exporter, RetryPolicy(), lambda: clock[0], interval_seconds=1.0)
    retrying.submit(data, 5_000)
    assert server.requests == 2
    due = retrying.due_in()
    assert due is not None
    assert due >= 30.0  # not within the 1 s the interval-capped backoff alone would allow
    clock[0] = 29.0
    retrying.deliver(5_000, force=False)
    assert server.requests == 2
    clock[0] = 30.5
    retrying.deliver(5_000, force=False)
    assert server.requests == 3


def test_500_is_retried_and_a_400_is_not(hostile: Callable[..., Any], data: MetricsData) -> None:
    failing = InfluxExporter(hostile("status", status=500).url, database="db")
    with pytest.raises(RetryableExportError):
        failing.export(data, 5_000)
    from telemetry_otel.exporters import PermanentExportError

    with pytest.raises(PermanentExportError):
        InfluxExporter(hostile("status", status=400).url, database="db").export(data, 5_000)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("30", 30.0), (" 0 ", 0.0), ("-5", 0.0), ("soon", None), ("", None), (None, None), ("inf", None)],
)
def test_retry_after_values(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value) == seconds


def test_retry_after_as_an_http_date() -> None:
    assert parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now=784111767.0) == 10.0
