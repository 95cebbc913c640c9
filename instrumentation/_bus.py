"""A bus: an OTel metric reader that aggregates the metrics of the providers attached to it.

A bus adds no SDK reader storage (which would cost every measurement about 3 us): its collection is
wired to the runtime's one shared read, and it derives its series from that data. The same
aggregation feeds the shared output (the endpoint, ``/metrics``, exporters) once per read.

Rules (see docs/buses.md for the worked example):

* Monotonic sums add; up-down sums add; explicit-bucket histograms merge bucket by bucket and must
  have identical boundaries; gauges combine by a per-metric rule (sum, min, max, mean, last;
  default sum).
* A provider contributes what it recorded while attached: at ``attach`` the bus reads the provider's
  cumulative values as a baseline and counts only growth beyond it. At ``detach`` its final growth is
  folded into a retained total, so bus totals never go backwards nor count anything twice. A
  provider whose own counter resets (a restart) is re-baselined at zero after its last value is
  retained.
* Aggregated series are named ``bus.<stem>`` with attributes ``bus.name`` plus the provider metric's
  own non-identity attributes; per-provider series are ``bus.provider.<stem>`` and add
  ``bus.provider``. ``<stem>`` is the metric name without a leading ``service.``, and
  ``service.errors`` becomes ``failures``. Different names keep each stream single-writer and a
  ``sum()`` over one name never double counts.
* ``bus.providers``, ``bus.providers.healthy`` and ``bus.providers.unknown`` count providers by the
  health each reported; one that never reported is unknown, never healthy.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricReader,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from telemetry_otel import OwnerIndex, Telemetry, __version__, current_telemetry
from telemetry_otel.instrumentation._aggregation import (
    DEFAULT_GAUGE_RULE,
    GAUGE_RULES,
    NOT_AGGREGATED,
    GaugeRule,
    HistogramValue,
    Kind,
    StreamKey,
    aggregated_name,
    apply_gauge_rule,
    kind_of,
    per_provider_name,
    stream_attributes,
)
from telemetry_otel.instrumentation._service import InstrumentedService
from telemetry_otel.instrumentation._snapshots import truncate
from telemetry_otel.vocabulary import (
    BUS_NAME,
    BUS_PREFIX,
    BUS_PROVIDER,
    BUS_PROVIDER_PREFIX,
    BUS_PROVIDERS,
    BUS_PROVIDERS_HEALTHY,
    BUS_PROVIDERS_UNKNOWN,
    BUS_SCOPE_NAME,
    COLLECTOR_SCOPE_NAME,
    SERVICE_ERRORS,
    SERVICE_REQUESTS,
)

__all__ = ["BUS_SCOPE_NAME", "Bus", "BusConfigurationError"]

#: Instrumentation scope of every series a bus derives.
#: Gauge rules built in for the standard vitals; explicit rules override them.
BUILTIN_GAUGE_RULES: Mapping[str, GaugeRule] = {}

_logger = logging.getLogger(BUS_SCOPE_NAME)
#: Scopes whose series carry ``service.name`` without being the service's own measurements.
_NOT_PROVIDER_SCOPES = frozenset({COLLECTOR_SCOPE_NAME, BUS_SCOPE_NAME})
_CUMULATIVE = AggregationTemporality.CUMULATIVE
_Value: TypeAlias = float | int | HistogramValue


class BusConfigurationError(ValueError):
    """A provider cannot be aggregated with the others (for example differing histogram buckets)."""


@dataclass(frozen=True)
class _Meta:
    unit: str
    description: str
    kind: Kind
    bounds: tuple[float, ...] | None


@dataclass
class _Member:
    provider: str
    component: str
    joined_unix_nano: int
    baseline: dict[StreamKey, _Value] = field(default_factory=dict)
    last: dict[StreamKey, _Value] = field(default_factory=dict)


@dataclass
class _Reading:
    """One provider's values in one read: stream -> (kind, value, time of the point)."""

    values: dict[StreamKey, tuple[Kind, _Value, int]] = field(default_factory=dict)


class Bus(MetricReader):
    """A named bus that aggregates its providers' metrics; also a ``MetricReader``.

    ``collect()`` / :meth:`get_metrics_data` return the bus's ``MetricsData``: the aggregated
    series next to the per-provider ones. Attach providers at start or at run time with
    :meth:`attach`, remove them with :meth:`detach`. A bus name is unique per runtime: a second bus
    of the same name is a ``ValueError`` until the first is closed.
    """

    def __init__(
        self,
        name: str,
        *,
        telemetry: Telemetry | None = None,
        gauge_rules: Mapping[str, GaugeRule] | None = None,
        default_gauge_rule: GaugeRule = DEFAULT_GAUGE_RULE,
    ) -> None:
        if not name or not name.strip():
            raise ValueError("a bus needs a non-empty name")
        rules = {**BUILTIN_GAUGE_RULES, **(gauge_rules or {})}
        for metric, rule in [*rules.items(), ("(default)", default_gauge_rule)]:
            if rule not in GAUGE_RULES:
                raise ValueError(f"gauge rule {rule!r} for {metric} is not one of {', '.join(GAUGE_RULES)}")
        super().__init__()
        self._telemetry = telemetry if telemetry is not None else current_telemetry()
        # ``bus.name`` is an attribute value: cut to the runtime's length limit, like service names.
        self.name = truncate(name, self._telemetry.config.attribute_value_length_limit)
        self._rules = rules
        self._default_rule = default_gauge_rule
        self._scope = InstrumentationScope(BUS_SCOPE_NAME, __version__, None, None)
        self._lock = threading.RLock()
        self._members: dict[str, _Member] = {}
        self._retired: dict[StreamKey, _Value] = {}
        self._meta: dict[str, _Meta] = {}
        self._problems: dict[str, str] = {}
        self._start_unix_nano = time.time_ns()
        self._received: MetricsData | None = None
        self._closed = False
        # The SDK wires a reader to a MeterProvider through this hook; a bus is wired to the shared
        # read instead, so it adds no storage to the provider's measurement path.
        self._set_collect_callback(self._collect_shared)
        self._telemetry.components.declare_bus(self.name)
        self._telemetry.add_aggregator(self)

    def reset_after_fork(self) -> None:
        """A forked child: the bus counts from zero (its providers' counts start from zero too)."""
        self._lock = threading.RLock()
        self._retired = {}
        self._start_unix_nano = time.time_ns()
        for member in self._members.values():
            member.baseline.clear()
            member.last.clear()

    @property
    def scope(self) -> InstrumentationScope:
        """The instrumentation scope of the bus's series."""
        return self._scope

    @property
    def providers(self) -> dict[str, str]:
        """Provider name -> component (``service.name``) of every attached provider."""
        with self._lock:
            return {name: member.component for name, member in self._members.items()}

    @property
    def problems(self) -> dict[str, str]:
        """Metrics the bus could not aggregate, with the reason (for example differing buckets)."""
        with self._lock:
            return dict(self._problems)

    def attach(self, service: InstrumentedService, provider: str | None = None) -> None:
        """Attach ``service`` as provider ``provider`` (default: its name); it counts from now on."""
        provider_name = provider or service.name
        component = service.name
        if self._telemetry.components.get(component) is not service.component:
            raise ValueError(f"service {component!r} is not registered on this bus's telemetry runtime")
        with self._lock:
            if provider_name in self._members:
                raise ValueError(f"bus {self.name!r} already has a provider named {provider_name!r}")
            if any(member.component == component for member in self._members.values()):
                raise ValueError(f"service {component!r} is already a provider of bus {self.name!r}")
        index = OwnerIndex.of(self._telemetry.read_metrics(aggregates=False))
        reading = self._read(index, {component}, strict=True).get(component)
        with self._lock:
            member = _Member(provider_name, component, time.time_ns())
            for key, (kind, value, _) in (reading.values if reading else {}).items():
                if kind in ("counter", "histogram"):
                    member.baseline[key] = value
                    member.last[key] = value
            self._members[provider_name] = member
        self._telemetry.components.attach(self.name, provider_name, component)

    def detach(self, provider: str) -> None:
        """Remove ``provider``; what it contributed stays in the bus's cumulative totals."""
        with self._lock:
            member = self._members.get(provider)
        if member is None:
            raise ValueError(f"bus {self.name!r} has no provider named {provider!r}")
        index = OwnerIndex.of(self._telemetry.read_metrics(aggregates=False))
        reading = self._read(index, {member.component})
        with self._lock:
            if self._members.pop(provider, None) is None:
                return
            self._advance(member, reading.get(member.component, _Reading()))
            for key, last in member.last.items():
                self._retire(key, _since(last, member.baseline.get(key)))
        self._telemetry.components.detach(self.name, provider)

    def close(self) -> None:
        """Stop contributing to the shared output and forget every provider."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            providers = list(self._members)
            self._members.clear()
        for provider in providers:
            self._telemetry.components.detach(self.name, provider)
        self._telemetry.components.remove_bus(self.name)  # the name may be used again
        self._telemetry.remove_aggregator(self)

    def aggregate(self, data: MetricsData, index: OwnerIndex | None = None) -> list[Metric]:
        """The bus's cumulative series derived from ``data`` (aggregated and per provider).

        ``index`` is ``data``'s owner index (built here when not given): the bus reads only the points
        of its providers through it.
        """
        now = time.time_ns()
        owners = OwnerIndex.of(data) if index is None else index
        with self._lock:
            members = list(self._members.values())
            readings = self._read(owners, {member.component for member in members})
            advanced = [
                (member, self._advance(member, readings.get(member.component, _Reading())))
                for member in members
            ]
            totals: dict[StreamKey, _Value] = dict(self._retired)  # after advancing: resets retire
            gauges: dict[StreamKey, list[tuple[int, float]]] = {}
            per_provider: list[tuple[_Member, StreamKey, _Value]] = []
            for member, contributions in advanced:
                reading = readings.get(member.component, _Reading())
                for key, value in contributions.items():
                    totals[key] = _plus(totals.get(key), value)
                    per_provider.append((member, key, value))
                for key, (kind, value, point_time) in reading.values.items():
                    if kind == "gauge" and not isinstance(value, HistogramValue):
                        gauges.setdefault(key, []).append((point_time, value))
                        per_provider.append((member, key, value))
            return self._emit(now, members, totals, gauges, per_provider)

    def get_metrics_data(self) -> MetricsData | None:
        """Collect now and return the bus's ``MetricsData`` (like ``InMemoryMetricReader``)."""
        self.collect()
        data, self._received = self._received, None
        return data

    def _collect_shared(self, reader: MetricReader, timeout_millis: float = 10_000) -> MetricsData:
        data = self._telemetry.read_metrics(timeout_millis, aggregates=False)
        metrics = self.aggregate(data)
        scope_metrics = [ScopeMetrics(scope=self._scope, metrics=metrics, schema_url="")]
        return MetricsData([ResourceMetrics(self._telemetry.resource, scope_metrics, "")])

    def _receive_metrics(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> None:
        self._received = metrics_data

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """The ``MetricReader`` shutdown: the same as :meth:`close`."""
        self.close()

    # -- internals -----------------------------------------------------------------------------

    def _read(self, index: OwnerIndex, components: set[str], *, strict: bool = False) -> dict[str, _Reading]:
        """Each member component's values in the indexed read, checking kinds, units and buckets.

        Only the members' own points are visited. A series that does not match what the bus
        aggregates under its name is left out and reported in :attr:`problems`; with ``strict`` (at
        attach) it is a :class:`BusConfigurationError`.
        """
        readings: dict[str, _Reading] = {}
        for owner in components:
            for owned in index.service(owner):
                if owned.scope.name in _NOT_PROVIDER_SCOPES:
                    continue  # the collector's series are about components, not recorded by them
                metric = owned.metric
                if metric.name in NOT_AGGREGATED or metric.name.startswith(BUS_PREFIX):
                    continue
                kind = kind_of(metric)
                if (
                    kind is None
                    or getattr(metric.data, "aggregation_temporality", _CUMULATIVE) != _CUMULATIVE
                ):
                    continue
                for point in owned.points:
                    value: _Value
                    if isinstance(point, HistogramDataPoint):
                        value = HistogramValue.of(point)
                    elif isinstance(point, NumberDataPoint):
                        value = point.value
                    else:
                        continue  # exponential histograms are not aggregated (kind_of says so first)
                    if not self._accept(metric, kind, value, owner, strict):
                        continue
                    key = (metric.name, stream_attributes(point.attributes))
                    readings.setdefault(owner, _Reading()).values[key] = (kind, value, point.time_unix_nano)
        return readings

    def _accept(self, metric: Metric, kind: Kind, value: _Value, owner: str, strict: bool) -> bool:
        bounds = value.bounds if isinstance(value, HistogramValue) else None
        with self._lock:
            meta = self._meta.get(metric.name)
            if meta is None:
                self._meta[metric.name] = _Meta(metric.unit or "", metric.description or "", kind, bounds)
                return True
            if (meta.kind, meta.unit, meta.bounds) == (kind, metric.unit or "", bounds):
                return True
            reason = (
                f"{owner!r} reports {metric.name!r} as a {kind} in {metric.unit!r}"
                + (f" with buckets {list(bounds)}" if bounds else "")
                + f"; bus {self.name!r} aggregates it as a {meta.kind} in {meta.unit!r}"
                + (f" with buckets {list(meta.bounds)}" if meta.bounds else "")
            )
            if strict:
                raise BusConfigurationError(reason)
            if self._problems.get(metric.name) != reason:
                _logger.warning("bus %s: not aggregating a series: %s", self.name, reason)
                self._problems[metric.name] = reason
            return False

    def _advance(self, member: _Member, reading: _Reading) -> dict[StreamKey, _Value]:
        """Update ``member``'s last values from ``reading``; return its contribution per stream."""
        contributions: dict[StreamKey, _Value] = {}
        for key, (kind, value, _) in reading.values.items():
            if kind == "updowncounter":
                contributions[key] = value
            elif kind in ("counter", "histogram"):
                last = member.last.get(key)
                if last is not None and _went_back(value, last):
                    # The provider's cumulative value reset: keep what it had counted, start over.
                    self._retire(key, _since(last, member.baseline.get(key)))
                    member.baseline.pop(key, None)
                member.last[key] = value
        for key, last in member.last.items():
            # A stream missing from this read keeps its last value: totals never go backwards.
            contributions[key] = _since(last, member.baseline.get(key))
        return contributions

    def _retire(self, key: StreamKey, value: _Value) -> None:
        self._retired[key] = _plus(self._retired.get(key), value)

    def _emit(
        self,
        now: int,
        members: list[_Member],
        totals: Mapping[StreamKey, _Value],
        gauges: Mapping[StreamKey, list[tuple[int, float]]],
        per_provider: list[tuple[_Member, StreamKey, _Value]],
    ) -> list[Metric]:
        bus = {BUS_NAME: self.name}
        aggregated: dict[str, list[Any]] = {}
        for key, value in totals.items():
            _add_point(aggregated, key, {**dict(key[1]), **bus}, value, self._start_unix_nano, now)
        for key, readings in gauges.items():
            rule = self._rules.get(key[0], self._default_rule)
            _add_point(
                aggregated,
                key,
                {**dict(key[1]), **bus},
                apply_gauge_rule(rule, readings),
                self._start_unix_nano,
                now,
            )
        providers: dict[str, list[Any]] = {}
        for member, key, value in per_provider:
            attributes = {**dict(key[1]), **bus, BUS_PROVIDER: member.provider}
            _add_point(providers, key, attributes, value, member.joined_unix_nano, now)
        metrics = [
            self._metric(aggregated_name(name), name, points, " Across the bus's providers.")
            for name, points in aggregated.items()
        ]
        metrics += [
            self._metric(per_provider_name(name), name, points, " Per bus provider.")
            for name, points in providers.items()
        ]
        metrics += self._processed(aggregated, providers)
        metrics += self._provider_counts(members, now)
        return [metric for metric in metrics if metric.data.data_points]

    def _metric(self, name: str, source: str, points: list[Any], suffix: str) -> Metric:
        meta = self._meta[source]
        data: Sum | Gauge | Histogram
        if meta.kind == "histogram":
            data = Histogram([p for p in points if p.count], _CUMULATIVE)
        elif meta.kind == "gauge":
            data = Gauge(points)
        else:
            data = Sum(points, _CUMULATIVE, is_monotonic=meta.kind == "counter")
        return Metric(name=name, description=meta.description + suffix, unit=meta.unit, data=data)

    def _processed(
        self, aggregated: Mapping[str, list[Any]], providers: Mapping[str, list[Any]]
    ) -> list[Metric]:
        """``processed`` = requests that did not fail: requests - failures, per stream."""
        metrics: list[Metric] = []
        for prefix, series in ((BUS_PREFIX, aggregated), (BUS_PROVIDER_PREFIX, providers)):
            requests = series.get(SERVICE_REQUESTS)
            if not requests:
                continue
            failures = {_identity(p.attributes): p.value for p in series.get(SERVICE_ERRORS, [])}
            points = [
                NumberDataPoint(
                    p.attributes,
                    p.start_time_unix_nano,
                    p.time_unix_nano,
                    p.value - failures[_identity(p.attributes)],
                )
                for p in requests
                if _identity(p.attributes) in failures
            ]
            metrics.append(
                Metric(
                    name=f"{prefix}processed",
                    description="Requests handled without failure (requests minus failures).",
                    unit="{request}",
                    data=Sum(points, _CUMULATIVE, is_monotonic=True),
                )
            )
        return metrics

    def _provider_counts(self, members: list[_Member], now: int) -> list[Metric]:
        total = len(members)
        healthy = unknown = 0
        for member in members:
            component = self._telemetry.components.get(member.component)
            health = component.health if component is not None else None
            if health is None:
                unknown += 1
            elif health.status == "pass":
                healthy += 1
        bus = {BUS_NAME: self.name}
        counts = [
            (BUS_PROVIDERS, total, "Providers attached to the bus."),
            (BUS_PROVIDERS_HEALTHY, healthy, "Providers whose reported health is pass."),
            (BUS_PROVIDERS_UNKNOWN, unknown, "Providers that have not reported their health."),
        ]
        return [
            Metric(name, description, "{provider}", Gauge([NumberDataPoint(bus, now, now, value)]))
            for name, value, description in counts
        ]


def _identity(attributes: Mapping[str, Any] | None) -> frozenset[tuple[str, Any]]:
    return frozenset((attributes or {}).items())


def _add_point(
    into: dict[str, list[Any]],
    key: StreamKey,
    attributes: dict[str, Any],
    value: _Value,
    start: int,
    now: int,
) -> None:
    point: NumberDataPoint | HistogramDataPoint
    if isinstance(value, HistogramValue):
        point = HistogramDataPoint(
            attributes, start, now, value.count, value.sum, value.buckets, value.bounds, value.min, value.max
        )
    else:
        point = NumberDataPoint(attributes, start, now, value)
    into.setdefault(key[0], []).append(point)


def _went_back(value: _Value, last: _Value) -> bool:
    if isinstance(value, HistogramValue) and isinstance(last, HistogramValue):
        return value.count < last.count
    if isinstance(value, HistogramValue) or isinstance(last, HistogramValue):
        return True
    return value < last


def _since(value: _Value, baseline: _Value | None) -> _Value:
    if baseline is None:
        return value
    if isinstance(value, HistogramValue) and isinstance(baseline, HistogramValue):
        return value.minus(baseline)
    if isinstance(value, HistogramValue) or isinstance(baseline, HistogramValue):
        return value
    return value - baseline


def _plus(total: _Value | None, value: _Value) -> _Value:
    if total is None:
        return value
    if isinstance(total, HistogramValue) and isinstance(value, HistogramValue):
        return total.plus(value)
    if isinstance(total, HistogramValue) or isinstance(value, HistogramValue):
        return value
    return total + value
