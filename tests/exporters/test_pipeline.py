"""The export pipeline: ticks at a fixed rate, asks its source for data by age, never sends one
collection twice, exports once more at shutdown, and never raises."""

from __future__ import annotations

import itertools
import logging
import threading
import time

import pytest
from opentelemetry.sdk.metrics.export import MetricsData

from telemetry_otel.exporters import ExportDemand, ExportPipeline


class _Backend:
    """A push exporter that keeps every batch it is sent, with the time it arrived."""

    name = "memory"

    def __init__(self) -> None:
        self.batches: list[tuple[float, MetricsData]] = []
        self.closed = False

    def export(self, data: MetricsData, timeout_millis: float) -> None:
        self.batches.append((time.monotonic(), data))

    def shutdown(self) -> None:
        self.closed = True


class _Source:
    """A new ``MetricsData`` per demand (or the same one, when ``repeat``), recording every demand."""

    def __init__(self, *, repeat: bool = False) -> None:
        self.demands: list[ExportDemand] = []
        self.repeat = repeat
        self._same = MetricsData(resource_metrics=[])
        self._lock = threading.Lock()

    def __call__(self, demand: ExportDemand) -> MetricsData:
        with self._lock:
            self.demands.append(demand)
        return self._same if self.repeat and not demand.final else MetricsData(resource_metrics=[])


def test_ticks_keep_a_fixed_rate_and_ask_for_a_collection_within_the_interval() -> None:
    source, backend = _Source(), _Backend()
    pipeline = ExportPipeline(source, [backend], interval_millis=100, timeout_millis=1_000)
    pipeline.start()
    time.sleep(0.55)
    pipeline.shutdown(1_000)
    periodic = [demand for demand in source.demands if not demand.final]
    assert 4 <= len(periodic) <= 6, periodic
    assert all(d.max_age_seconds == d.timeout_seconds == pytest.approx(0.09) for d in periodic), periodic
    arrivals = [arrived for arrived, _ in backend.batches[: len(periodic)]]
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert all(0.03 < gap < 0.25 for gap in gaps), gaps  # 0.1 s apart, under load and tracing
    # The final collection may take half of the shutdown bound, the exporters the rest.
    assert source.demands[-1] == ExportDemand(0.0, 0.5, final=True)
    assert len(backend.batches) == len(periodic) + 1  # the final export
    assert backend.closed


def test_export_now_asks_for_a_collection_made_for_it() -> None:
    source, backend = _Source(), _Backend()
    pipeline = ExportPipeline(source, [backend], interval_millis=60_000, timeout_millis=2_000)
    pipeline.export_now()
    assert source.demands == [ExportDemand(0.0, 2.0, final=False)]
    assert len(backend.batches) == 1
    pipeline.shutdown(1_000)


def test_a_collection_already_sent_is_never_sent_again() -> None:
    source, backend = _Source(repeat=True), _Backend()
    pipeline = ExportPipeline(source, [backend], interval_millis=60_000, timeout_millis=1_000)
    for _ in range(3):
        pipeline.export_now()
    assert len(backend.batches) == 1
    assert pipeline.skipped == 2
    pipeline.shutdown(1_000)
    assert len(backend.batches) == 2  # the final export is always sent


def test_a_failing_source_exports_nothing_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    backend = _Backend()

    def failing(demand: ExportDemand) -> MetricsData:
        raise TimeoutError("no collection")

    pipeline = ExportPipeline(failing, [backend], interval_millis=60_000, timeout_millis=1_000)
    with caplog.at_level(logging.WARNING, logger="telemetry_otel.exporters"):
        pipeline.export_now()
        pipeline.shutdown(1_000)
    assert backend.batches == []
    assert [record.getMessage() for record in caplog.records] == [
        "collection for export failed (TimeoutError: no collection); nothing exported this cycle"
    ] * 2


def test_bad_intervals_are_refused() -> None:
    with pytest.raises(ValueError, match="interval_millis and timeout_millis must be positive"):
        ExportPipeline(_Source(), [], interval_millis=0)
