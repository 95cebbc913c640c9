"""The host picture: every worker's last cumulative report folded into one set of host totals.

Rules (``docs/workers.md`` states them for users):

* **Counters** (monotonic sums) and **histograms** add, series by series (same scope, name and
  attributes). Explicit-bucket histograms add bucket by bucket; different boundaries are an error
  naming both, and the worker whose boundaries differ from the first seen is left out of that
  series (counted in ``problems``). Exponential histograms are brought to the smaller scale first.
* **Up-down counters** add over the live workers; a retired worker's value leaves the total (what
  it held, it no longer holds).
* **Gauges** follow a declared host rule per metric name: ``sum``, ``min``, ``max``, ``mean`` (the
  bus rules), ``last`` (the most recent point), or ``worker`` (one series per worker, labelled
  ``service.instance.id``). Undeclared gauges use ``sum``, as on a bus.
* **Retired workers**: when a worker is gone its last counter and histogram values are added to one
  retired total per series, and the worker is forgotten, so that a worker respawned a thousand times
  costs no memory per respawn. A series a live worker stops reporting, or whose counter goes back
  (it restarted under the same identity), is treated the same way for that series. Host totals
  therefore never go backwards.
* Every cumulative host point starts at the fold's start (``start_unix_nano``), so a series keeps
  its start across worker respawns.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    ExponentialHistogram,
    ExponentialHistogramDataPoint,
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

from telemetry_otel._collection import WorkerRecord
from telemetry_otel.host._values import (
    Exp,
    Hist,
    HostGaugeRule,
    Value,
    add_value,
    apply_gauge_rule,
    copy_value,
    dense,
    value_of,
)
from telemetry_otel.vocabulary import (
    BUS_PROVIDERS,
    BUS_PROVIDERS_HEALTHY,
    BUS_PROVIDERS_UNKNOWN,
    PROCESS_PID,
    SERVICE_HEALTH,
    SERVICE_INSTANCE_ID,
    SERVICE_UPTIME,
    TELEMETRY_COLLECTION_DURATION,
    TELEMETRY_COLLECTION_OUTCOME,
    TELEMETRY_COLLECTION_SNAPSHOT_AGE,
    TELEMETRY_COLLECTION_SNAPSHOT_DURATION,
    TELEMETRY_COLLECTION_TIMESTAMP,
    TELEMETRY_COLLECTION_UP,
    TELEMETRY_COMPONENT_BUS,
    TELEMETRY_COMPONENT_HEALTH,
    TELEMETRY_COMPONENT_HEALTH_TIMESTAMP,
    TELEMETRY_COMPONENT_INFO,
)

__all__ = [
    "BUILTIN_HOST_GAUGE_RULES",
    "DEFAULT_HOST_GAUGE_RULE",
    "HOST_GAUGE_RULES",
    "HostFold",
    "HostGaugeRule",
    "parse_gauge_rules",
]

HOST_GAUGE_RULES: tuple[HostGaugeRule, ...] = ("sum", "min", "max", "mean", "last", "worker")
#: How a gauge without a declared rule is folded across workers (the bus default).
DEFAULT_HOST_GAUGE_RULE: HostGaugeRule = "sum"
#: The package's own gauges: health and up are the worst of the workers, ages and uptime the oldest,
#: a bus's provider counts the same in every worker.
BUILTIN_HOST_GAUGE_RULES: Mapping[str, HostGaugeRule] = {
    SERVICE_HEALTH: "max",
    SERVICE_UPTIME: "max",
    TELEMETRY_COLLECTION_UP: "min",
    TELEMETRY_COLLECTION_DURATION: "max",
    TELEMETRY_COLLECTION_SNAPSHOT_AGE: "max",
    BUS_PROVIDERS: "max",
    BUS_PROVIDERS_HEALTHY: "min",
    BUS_PROVIDERS_UNKNOWN: "max",
    # What /metrics says of a collection (docs/fleet.md): every worker runs the same components, so
    # an info or state-set series is 1 when any worker says so (never 2), a time the newest.
    TELEMETRY_COMPONENT_INFO: "max",
    TELEMETRY_COMPONENT_BUS: "max",
    TELEMETRY_COMPONENT_HEALTH: "max",
    TELEMETRY_COMPONENT_HEALTH_TIMESTAMP: "max",
    TELEMETRY_COLLECTION_OUTCOME: "max",
    TELEMETRY_COLLECTION_SNAPSHOT_DURATION: "max",
    TELEMETRY_COLLECTION_TIMESTAMP: "max",
}

_CUMULATIVE = AggregationTemporality.CUMULATIVE
#: Retired workers remembered (bounded: no memory per respawn beyond this many ids).
_REMEMBERED_RETIREMENTS = 4096
_Kind: TypeAlias = Literal["counter", "updowncounter", "gauge", "histogram", "exponential"]
_ScopeKey: TypeAlias = tuple[str, str | None]
_MetricKey: TypeAlias = tuple[_ScopeKey, str]
_SeriesKey: TypeAlias = tuple[_MetricKey, frozenset[tuple[str, Any]]]


def parse_gauge_rules(text: str) -> dict[str, HostGaugeRule]:
    """``name=rule,...`` (``TELEMETRY_OTEL_HOST_GAUGE_RULES``); ``ValueError`` naming what is allowed."""
    rules: dict[str, HostGaugeRule] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        name, sep, rule = item.partition("=")
        rule = rule.strip()
        if not sep or not name.strip():
            raise ValueError(f"host gauge rule {item!r} is not of the form metric.name=rule")
        if rule not in HOST_GAUGE_RULES:
            raise ValueError(
                f"host gauge rule {rule!r} for {name.strip()} is not one of {', '.join(HOST_GAUGE_RULES)}"
            )
        rules[name.strip()] = rule
    return rules


@dataclass(frozen=True)
class _Meta:
    kind: _Kind
    unit: str
    description: str
    scope: InstrumentationScope


@dataclass
class _Worker:
    instance_id: str
    pid: int | None
    resource: Resource
    #: Series key -> (value, time of the point) of the worker's last report.
    values: dict[_SeriesKey, tuple[Value, int]] = field(default_factory=dict)
    reports: int = 0
    last_report_unix_nano: int = 0


class HostFold:
    """Every live worker's last report and the retired totals; :meth:`picture` folds them.

    Not thread-safe: the aggregator calls it under its lock. ``gauge_rules`` name a
    :data:`HostGaugeRule` per metric name (over :data:`BUILTIN_HOST_GAUGE_RULES`).
    """

    def __init__(
        self,
        *,
        instance_id: str,
        start_unix_nano: int,
        gauge_rules: Mapping[str, HostGaugeRule] | None = None,
        default_gauge_rule: HostGaugeRule = DEFAULT_HOST_GAUGE_RULE,
    ) -> None:
        for name, rule in [*(gauge_rules or {}).items(), ("(default)", default_gauge_rule)]:
            if rule not in HOST_GAUGE_RULES:
                raise ValueError(
                    f"host gauge rule {rule!r} for {name} is not one of {', '.join(HOST_GAUGE_RULES)}"
                )
        self.instance_id = instance_id
        self.start_unix_nano = start_unix_nano
        self._rules = {**BUILTIN_HOST_GAUGE_RULES, **(gauge_rules or {})}
        self._default_rule = default_gauge_rule
        self._workers: dict[str, _Worker] = {}
        self._retired: dict[_SeriesKey, Value] = {}
        #: The most recently retired workers: a late report of one must not count it twice.
        self._gone: OrderedDict[str, None] = OrderedDict()
        #: Metric identity -> what it is, in first-seen order (the order of the host picture).
        self._meta: dict[_MetricKey, _Meta] = {}
        #: Workers folded into the retired totals, all time.
        self.retired_workers = 0
        #: Problems found (boundaries that differ, a kind that changed, delta points), all time.
        self.problems = 0

    @property
    def workers(self) -> list[WorkerRecord]:
        """The live workers, by instance id."""
        return [
            WorkerRecord(w.instance_id, w.pid, w.reports, w.last_report_unix_nano, self._counters(w))
            for w in sorted(self._workers.values(), key=lambda w: w.instance_id)
        ]

    def _counters(self, worker: _Worker) -> dict[str, float]:
        """The worker's own counters (the per-worker breakdown of the views), summed per metric."""
        totals: dict[str, float] = {}
        for key, (value, _) in worker.values.items():
            if self._meta[key[0]].kind == "counter" and isinstance(value, int | float):
                totals[key[0][1]] = totals.get(key[0][1], 0) + value
        return totals

    def worker_pids(self) -> dict[str, int | None]:
        """Instance id -> pid of every live worker."""
        return {w.instance_id: w.pid for w in self._workers.values()}

    def report(self, data: MetricsData, *, pid: int | None, now_unix_nano: int) -> list[str]:
        """Take a worker's cumulative report (its ``service.instance.id`` names it); returns problems."""
        problems: list[str] = []
        for resource_metrics in data.resource_metrics:
            resource = resource_metrics.resource
            instance = str(resource.attributes.get(SERVICE_INSTANCE_ID, ""))
            if not instance:
                problems.append("a report without service.instance.id was left out")
                continue
            if instance in self._gone:
                problems.append(
                    f"a report of retired worker {instance} was left out (its counts are retired)"
                )
                continue
            worker = self._workers.get(instance)
            if worker is None:
                worker = self._workers[instance] = _Worker(instance, pid, resource)
            values: dict[_SeriesKey, tuple[Value, int]] = {}
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    self._read_metric(scope_metrics.scope, metric, values, problems, instance)
            for key, (old, _) in worker.values.items():
                new = values.get(key)
                # A counter the worker dropped or restarted: what it counted stays counted.
                additive = self._meta[key[0]].kind in ("counter", "histogram", "exponential")
                if additive and (new is None or self._went_back(key, new[0], old)):
                    self._retire_value(key, old)
            worker.values = values
            worker.resource = resource
            worker.pid = pid if pid is not None else worker.pid
            worker.reports += 1
            worker.last_report_unix_nano = now_unix_nano
        self.problems += len(problems)
        return problems

    def retire(self, instance_id: str) -> bool:
        """Fold a gone worker's counters and histograms into the retired totals and forget it."""
        worker = self._workers.pop(instance_id, None)
        if worker is None:
            return False
        for key, (value, _) in worker.values.items():
            if self._meta[key[0]].kind in ("counter", "histogram", "exponential"):
                self._retire_value(key, value)
        self.retired_workers += 1
        self._gone[instance_id] = None
        if len(self._gone) > _REMEMBERED_RETIREMENTS:
            self._gone.popitem(last=False)
        return True

    def picture(self, now_unix_nano: int) -> MetricsData:
        """The host totals as one resource: the first live worker's resource, with the host's id."""
        totals: dict[_SeriesKey, Value] = {}
        gauges: dict[_SeriesKey, list[tuple[Value, int, str]]] = {}
        for key, value in self._retired.items():
            totals[key] = copy_value(value)
        workers = sorted(self._workers.values(), key=lambda w: w.instance_id)
        for worker in workers:
            for key, (value, time_unix_nano) in worker.values.items():
                meta = self._meta[key[0]]
                if meta.kind == "gauge":
                    gauges.setdefault(key, []).append((value, time_unix_nano, worker.instance_id))
                elif key in totals:
                    totals[key] = add_value(totals[key], value)
                else:
                    totals[key] = copy_value(value)
        points: dict[_MetricKey, list[Any]] = {}
        for key, value in totals.items():
            points.setdefault(key[0], []).append(self._point(key, value, now_unix_nano))
        for key, values in gauges.items():
            rule = self._rules.get(key[0][1], self._default_rule)
            for attributes, number in apply_gauge_rule(rule, dict(key[1]), values):
                points.setdefault(key[0], []).append(NumberDataPoint(attributes, 0, now_unix_nano, number))
        scopes: dict[_ScopeKey, tuple[InstrumentationScope, list[Metric]]] = {}
        for metric_key, meta in self._meta.items():
            metric_points = points.get(metric_key)
            if not metric_points:
                continue
            metrics = scopes.setdefault(metric_key[0], (meta.scope, []))[1]
            metrics.append(_metric(metric_key[1], meta, metric_points))
        attributes = dict(workers[0].resource.attributes) if workers else {}
        attributes[SERVICE_INSTANCE_ID] = self.instance_id
        attributes.pop(PROCESS_PID, None)  # the host is no one process
        resource = Resource(attributes)
        scope_metrics = [
            ScopeMetrics(scope, metrics, scope.schema_url or "") for scope, metrics in scopes.values()
        ]
        return MetricsData([ResourceMetrics(resource, scope_metrics, "")])

    # -- reading one report -------------------------------------------------------------------------

    def _read_metric(
        self,
        scope: InstrumentationScope,
        metric: Metric,
        values: dict[_SeriesKey, tuple[Value, int]],
        problems: list[str],
        instance: str,
    ) -> None:
        data = metric.data
        kind: _Kind
        if isinstance(data, Sum):
            kind = "counter" if data.is_monotonic else "updowncounter"
        elif isinstance(data, Gauge):
            kind = "gauge"
        elif isinstance(data, Histogram):
            kind = "histogram"
        elif isinstance(data, ExponentialHistogram):
            kind = "exponential"
        else:  # pragma: no cover - every OTLP data kind is one of the above
            problems.append(f"{metric.name}: unknown data {type(data).__name__}")
            return
        if kind != "gauge" and data.aggregation_temporality != _CUMULATIVE:  # type: ignore[union-attr]
            problems.append(f"{metric.name}: delta points are not folded (workers report cumulative)")
            return
        metric_key: _MetricKey = ((scope.name, scope.version), metric.name)
        meta = self._meta.get(metric_key)
        if meta is None:
            meta = self._meta[metric_key] = _Meta(kind, metric.unit or "", metric.description or "", scope)
        elif meta.kind != kind:
            problems.append(f"{metric.name}: a {kind} from worker {instance}, a {meta.kind} before; left out")
            return
        for point in data.data_points:
            key: _SeriesKey = (
                metric_key,
                frozenset(point.attributes.items()) if point.attributes else frozenset(),
            )
            value = value_of(point)
            if isinstance(value, Hist) and not self._same_bounds(key, value, problems, instance, metric.name):
                continue
            values[key] = (value, point.time_unix_nano)

    def _same_bounds(
        self, key: _SeriesKey, value: Hist, problems: list[str], instance: str, name: str
    ) -> bool:
        known = self._retired.get(key)
        if not isinstance(known, Hist):
            known = next(
                (
                    v
                    for w in self._workers.values()
                    if w.instance_id != instance
                    for k, (v, _) in w.values.items()
                    if k == key and isinstance(v, Hist)
                ),
                None,
            )
        if known is None or known.bounds == value.bounds:
            return True
        problems.append(
            f"{name}: bucket boundaries {list(value.bounds)} of worker {instance} differ from "
            f"{list(known.bounds)}; that worker's series is left out of the host total"
        )
        return False

    def _went_back(self, key: _SeriesKey, new: Value, old: Value) -> bool:
        kind = self._meta[key[0]].kind
        if kind == "counter":
            return isinstance(new, int | float) and isinstance(old, int | float) and new < old
        if kind in ("histogram", "exponential"):
            return isinstance(new, Hist | Exp) and isinstance(old, Hist | Exp) and new.count < old.count
        return False

    def _retire_value(self, key: _SeriesKey, value: Value) -> None:
        if key in self._retired:
            self._retired[key] = add_value(self._retired[key], value)
        else:
            self._retired[key] = copy_value(value)

    def _point(self, key: _SeriesKey, value: Value, now: int) -> Any:
        attributes = dict(key[1])
        start = self.start_unix_nano
        if isinstance(value, Hist):
            return HistogramDataPoint(
                attributes, start, now, value.count, value.sum, list(value.buckets), list(value.bounds),
                value.min, value.max,
            )  # fmt: skip
        if isinstance(value, Exp):
            return ExponentialHistogramDataPoint(
                attributes, start, now, value.count, value.sum, value.scale, value.zero_count,
                dense(value.positive), dense(value.negative), 0, value.min, value.max,
            )  # fmt: skip
        return NumberDataPoint(attributes, start, now, value)


def _metric(name: str, meta: _Meta, points: list[Any]) -> Metric:
    data: Any
    if meta.kind == "gauge":
        data = Gauge(points)
    elif meta.kind == "histogram":
        data = Histogram(points, _CUMULATIVE)
    elif meta.kind == "exponential":
        data = ExponentialHistogram(points, _CUMULATIVE)
    else:
        data = Sum(points, _CUMULATIVE, is_monotonic=meta.kind == "counter")
    return Metric(name, meta.description, meta.unit, data)
