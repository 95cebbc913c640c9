"""Each exporter on its own worker: hostile backends, one at a time and all at once, never delay a
healthy exporter beside them, no export outlives its deadline, and shutdown keeps its bound."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import MetricsData

from telemetry_otel.exporters import ExportDemand, ExportPipeline, InfluxExporter, OTLPExporter, PushExporter
from telemetry_otel.exporters._deadline import Deadline

INTERVAL_MS = 100
TIMEOUT_MS = 1_000
RUN_S = 3.0
SHUTDOWN_MS = 2_000


class _Healthy:
    """A push exporter that keeps every payload it is sent, with the time it arrived."""

    name = "healthy"

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, bytes]] = []
        self._lock = threading.Lock()

    def encode(self, data: MetricsData) -> bytes:
        return str(id(data)).encode()

    def send(self, payload: bytes, deadline: Deadline) -> None:
        with self._lock:
            self.arrivals.append((time.monotonic(), payload))

    def export(self, data: MetricsData, timeout_millis: float) -> None:
        self.send(self.encode(data), Deadline(timeout_millis / 1000))

    def shutdown(self) -> None:
        pass


def _source(demand: ExportDemand) -> MetricsData:
    return MetricsData(resource_metrics=[])  # a new collection every time


def _hostile_exporters(hostile: Callable[..., Any], behaviours: list[str]) -> list[PushExporter]:
    exporters: list[PushExporter] = []
    for behaviour in behaviours:
        if behaviour == "429":
            server = hostile("status", status=429, retry_after="30")
        elif behaviour == "500":
            server = hostile("status", status=500)
        else:
            server = hostile(behaviour.removeprefix("otlp-"))
        exporter: PushExporter
        if behaviour == "otlp-silent":
            exporter = OTLPExporter("http/protobuf", endpoint=server.url + "/v1/metrics")
        else:
            exporter = InfluxExporter(server.url, database=behaviour)
        exporter.name = f"{exporter.name}-{behaviour}"
        exporters.append(exporter)
    return exporters


def _encodes_something(exporter: PushExporter) -> None:
    # Hostile exporters must really send: InfluxExporter skips an empty batch, so give it a line.
    if isinstance(exporter, InfluxExporter):
        exporter.encode = lambda data: b"m value=1 1\n"  # type: ignore[method-assign]
    if isinstance(exporter, OTLPExporter):
        exporter.encode = lambda data: b"\n\x00"  # type: ignore[method-assign]


@pytest.mark.parametrize(
    "behaviours",
    [
        ["silent"],
        ["trickle"],
        ["500"],
        ["429"],
        ["reset"],
        ["otlp-silent"],
        ["silent", "trickle", "500", "429", "reset", "otlp-silent"],
    ],
    ids=["silent", "trickle", "500", "429", "reset", "otlp-silent", "all-at-once"],
)
def test_a_healthy_exporter_keeps_its_interval_beside_hostile_ones(
    hostile: Callable[..., Any], behaviours: list[str]
) -> None:
    healthy = _Healthy()
    others = _hostile_exporters(hostile, behaviours)
    for exporter in others:
        _encodes_something(exporter)
    pipeline = ExportPipeline(
        _source, [healthy, *others], interval_millis=INTERVAL_MS, timeout_millis=TIMEOUT_MS
    )
    pipeline.start()
    time.sleep(RUN_S)
    started = time.monotonic()
    pipeline.shutdown(SHUTDOWN_MS)
    shutdown_s = time.monotonic() - started
    arrivals = [arrived for arrived, _ in healthy.arrivals]
    ticks = RUN_S * 1000 / INTERVAL_MS
    # Every tick reached the healthy backend (the final export too), never more than ~an interval apart.
    assert len(arrivals) >= ticks - 2, (len(arrivals), ticks)
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert max(gaps) < 3 * INTERVAL_MS / 1000, max(gaps)
    assert shutdown_s <= SHUTDOWN_MS / 1000 + 0.5, shutdown_s
    stats = {s.exporter: s for s in pipeline.stats()}
    assert stats["healthy"].failed_attempts == 0
    for exporter in others:
        hostile_stats = stats[exporter.name]
        assert hostile_stats.sent == 0, hostile_stats
        assert hostile_stats.failed_attempts >= 1, hostile_stats
        if exporter.name.endswith(("silent", "trickle")):
            assert hostile_stats.late >= 1, hostile_stats  # ended by the deadline, and counted
        if exporter.name.endswith("-429"):
            assert hostile_stats.failed_attempts == 1 or hostile_stats.failed_attempts == 2, hostile_stats
        # Nothing silently lost: what was not delivered was dropped at shutdown, and counted.
        assert hostile_stats.dropped_by_reason.get("shutdown", 0) >= 1, hostile_stats


def test_no_attempt_outlives_the_deadline(hostile: Callable[..., Any]) -> None:
    """Attempts against a trickling server are timed one by one: none is longer than the deadline."""
    server = hostile("trickle")
    exporter = InfluxExporter(server.url, database="db")
    exporter.encode = lambda data: b"m value=1 1\n"  # type: ignore[method-assign]
    durations: list[float] = []
    send = exporter.send

    def timed(payload: bytes, deadline: Deadline) -> None:
        started = time.monotonic()
        try:
            send(payload, deadline)
        finally:
            durations.append(time.monotonic() - started)

    exporter.send = timed  # type: ignore[method-assign]
    pipeline = ExportPipeline(_source, [exporter], interval_millis=200, timeout_millis=500)
    pipeline.start()
    time.sleep(2.5)
    pipeline.shutdown(1_000)
    assert len(durations) >= 2, durations
    assert max(durations) <= 0.5 + 0.3, durations


def test_an_exporter_stuck_in_export_holds_a_bounded_inbox_and_counts_what_it_drops() -> None:
    """An exporter with only ``export()`` that never returns cannot be ended by the deadline: its
    worker is stuck, the collections offered to it pile up to ``INBOX_LIMIT`` and are then dropped,
    counted; the shutdown bound still holds."""
    from telemetry_otel.exporters._pipeline import INBOX_LIMIT

    release = threading.Event()

    class _Stuck:
        name = "stuck"

        def export(self, data: MetricsData, timeout_millis: float) -> None:
            release.wait(30)

        def shutdown(self) -> None:
            pass

    healthy = _Healthy()
    pipeline = ExportPipeline(_source, [_Stuck(), healthy], interval_millis=60_000, timeout_millis=1_000)
    pipeline.start()
    try:
        for _ in range(INBOX_LIMIT + 10):  # one collection per "interval" (2 ms here)
            pipeline._export(0.0)
            time.sleep(0.002)
        time.sleep(0.2)
        stuck = {s.exporter: s for s in pipeline.stats()}["stuck"]
        assert stuck.dropped_by_reason.get("count", 0) >= 9, stuck
        started = time.monotonic()
        pipeline.shutdown(1_000)
        assert time.monotonic() - started < 1.5
        assert len(healthy.arrivals) >= INBOX_LIMIT + 10
    finally:
        release.set()
