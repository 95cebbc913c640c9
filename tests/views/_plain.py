"""Collections written as plain data, the way a runtime would have collected them (no runtime).

Loaded by ``conftest.py`` as the module ``plain_data`` (the tests directory is not a package), so a
test module writes ``from plain_data import PlainCollection, plain_inputs``.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from telemetry_otel import Collection, ComponentOutcome, ComponentRecord, HealthReport, HealthStatus
from telemetry_otel.instrumentation import LATENCY_BUCKETS
from telemetry_otel.views import Thresholds, ViewInputs
from telemetry_otel.vocabulary import (
    BUS_NAME,
    BUS_REQUEST_DURATION,
    SERVICE_CATEGORY,
    SERVICE_ERRORS,
    SERVICE_NAME,
    SERVICE_REQUEST_DURATION,
    SERVICE_REQUESTS,
)

__all__ = ["LATENCY_BUCKETS", "SECOND", "PlainCollection", "plain_inputs"]

SECOND = 10**9
_VITALS = InstrumentationScope("telemetry_otel.instrumentation", "1", None, None)
_SNAPSHOTS = InstrumentationScope("telemetry_otel.snapshots", "1", None, None)
_BUS = InstrumentationScope("telemetry_otel.bus", "1", None, None)
Points = Sequence[tuple[Mapping[str, Any], float]]


class PlainCollection:
    """A collection written as plain data, the way a runtime would have collected it.

    Each service contributes ``service.requests``/``service.errors`` (counters),
    ``service.request.duration`` (a histogram over the vitals' boundaries) and any gauges and
    counters its snapshot returned, with its ``service.name``/``service.category`` attributes; its
    reported health and snapshot outcome are the collection's records. A bus contributes its
    ``bus.<stem>`` counters and ``bus.request.duration``. No runtime, no SDK pipeline: only the
    data a view reads. A previous collection is another ``PlainCollection`` taken earlier.
    """

    def __init__(self, time_unix_nano: int = 1_800_000_000 * SECOND, *, sdk_disabled: bool = False) -> None:
        self.time_unix_nano = time_unix_nano
        self.sdk_disabled = sdk_disabled
        self._records: list[ComponentRecord] = []
        self._outcomes: dict[str, ComponentOutcome] = {}
        self._sums: dict[str, list[tuple[dict[str, Any], float]]] = {}
        self._gauges: dict[str, list[tuple[dict[str, Any], float]]] = {}
        self._histograms: dict[str, list[tuple[dict[str, Any], Sequence[float]]]] = {}
        self._buses: dict[str, dict[str, str]] = {}

    def service(
        self,
        name: str,
        category: str | None = "runtime",
        *,
        health: HealthStatus | None = "pass",
        reason: str | None = None,
        requests: float | None = None,
        errors: float | None = None,
        durations: Sequence[float] = (),
        gauges: Mapping[str, float | Points] | None = None,
        counters: Mapping[str, float] | None = None,
        outcome: str | None = None,
        error: str | None = None,
        last_success_unix_nano: int | None = None,
        problems: Sequence[str] = (),
    ) -> PlainCollection:
        """Add a service (``category=None``: a bus-only provider) with its numbers and health.

        ``gauges`` maps a metric to a value or to ``(attributes, value)`` points (a state set);
        ``counters`` are a snapshot's monotonic sums. ``outcome`` is the snapshot's (``ok``,
        ``error``, ``timeout``, ``none``; None: no record); an ``ok`` snapshot succeeded at the
        collection's time unless ``last_success_unix_nano`` says otherwise.
        """
        identity: dict[str, Any] = {SERVICE_NAME: name}
        if category is not None:
            identity[SERVICE_CATEGORY] = category
        report = None if health is None else HealthReport(health, reason, self.time_unix_nano)
        self._records.append(
            ComponentRecord(
                name, category, identity, has_snapshot=outcome not in (None, "none"), health=report
            )
        )
        if outcome == "ok" and last_success_unix_nano is None:
            last_success_unix_nano = self.time_unix_nano
        if outcome is not None:
            self._outcomes[name] = ComponentOutcome(
                name,
                outcome,
                error,
                0.001,
                last_success_unix_nano,
                tuple(problems),  # type: ignore[arg-type]
            )
        if requests is not None:
            self._sums.setdefault(SERVICE_REQUESTS, []).append((identity, requests))
        if errors is not None:
            self._sums.setdefault(SERVICE_ERRORS, []).append((identity, errors))
        if durations:
            self._histograms.setdefault(SERVICE_REQUEST_DURATION, []).append((identity, durations))
        for metric, number in (counters or {}).items():
            self._sums.setdefault(metric, []).append((identity, number))
        for metric, value in (gauges or {}).items():
            points = [({}, value)] if isinstance(value, int | float) else value
            for attributes, number in points:
                self._gauges.setdefault(metric, []).append(({**identity, **attributes}, number))
        return self

    def bus(
        self, name: str, providers: Mapping[str, str], *, durations: Sequence[float] = (), **numbers: float
    ) -> PlainCollection:
        """Add a bus: provider name -> component name, its ``bus.<stem>`` counters (``requests=``,
        ``failures=``, ``processed=``...) and the durations of the requests it routed."""
        self._buses[name] = dict(providers)
        for stem, value in numbers.items():
            self._sums.setdefault(f"bus.{stem}", []).append(({BUS_NAME: name}, value))
        if durations:
            self._histograms.setdefault(BUS_REQUEST_DURATION, []).append(({BUS_NAME: name}, durations))
        for component in providers.values():
            for index, record in enumerate(self._records):
                if record.name == component:
                    self._records[index] = dataclasses.replace(record, buses=(*record.buses, name))
        return self

    def build(self) -> Collection:
        """The collection, as a view receives it."""
        start, now = self.time_unix_nano - 60 * SECOND, self.time_unix_nano
        service_metrics: list[Metric] = []
        bus_metrics: list[Metric] = []
        for metric, points in self._sums.items():
            data = Sum(
                [NumberDataPoint(attributes, start, now, value) for attributes, value in points],
                AggregationTemporality.CUMULATIVE,
                True,
            )
            target = bus_metrics if metric.startswith("bus.") else service_metrics
            target.append(Metric(name=metric, description=f"{metric}.", unit="1", data=data))
        for metric, histograms in self._histograms.items():
            data_points = [_histogram(attributes, values, start, now) for attributes, values in histograms]
            data_h = Histogram(data_points, AggregationTemporality.CUMULATIVE)
            target = bus_metrics if metric.startswith("bus.") else service_metrics
            target.append(Metric(name=metric, description=f"{metric}.", unit="s", data=data_h))
        gauge_metrics = [
            Metric(
                name=metric,
                description=f"{metric}.",
                unit="1",
                data=Gauge([NumberDataPoint(attributes, start, now, value) for attributes, value in points]),
            )
            for metric, points in self._gauges.items()
        ]
        scopes = [
            ScopeMetrics(scope, metrics, "")
            for scope, metrics in (
                (_VITALS, service_metrics),
                (_SNAPSHOTS, gauge_metrics),
                (_BUS, bus_metrics),
            )
            if metrics
        ]
        resource = Resource.create({SERVICE_NAME: "agent"})
        return Collection(
            metrics=MetricsData([ResourceMetrics(resource, scopes, "")] if scopes else []),
            outcomes=dict(self._outcomes),
            time_unix_nano=now,
            duration_seconds=0.001,
            sdk_disabled=self.sdk_disabled,
            components=tuple(self._records),
            buses={name: dict(providers) for name, providers in self._buses.items()},
            start_unix_nano=start,
        )


def _histogram(
    attributes: dict[str, Any], values: Sequence[float], start: int, now: int
) -> HistogramDataPoint:
    counts = [0] * (len(LATENCY_BUCKETS) + 1)
    for value in values:
        counts[bisect.bisect_left(LATENCY_BUCKETS, value)] += 1
    return HistogramDataPoint(
        attributes,
        start,
        now,
        len(values),
        math.fsum(values),
        counts,
        list(LATENCY_BUCKETS),
        min(values),
        max(values),
    )


def plain_inputs(
    collection: Collection,
    *,
    previous: Collection | None = None,
    thresholds: Thresholds | None = None,
    now: int | None = None,
    category: str | None = None,
    service: str | None = None,
) -> ViewInputs:
    """ViewInputs over a plain collection, read one second after it was taken unless ``now`` says."""
    return ViewInputs(
        collection=collection,
        previous=previous,
        thresholds=thresholds or Thresholds(cpu_count=4),
        now_unix_nano=collection.time_unix_nano + SECOND if now is None else now,
        category=category,
        service=service,
    )
