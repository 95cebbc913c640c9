"""A :class:`~telemetry_otel.Collection` rebuilt from one agent's series in a Prometheus-compatible TSDB.

Pure: samples in, plain data out. The series are what ``/metrics`` exposes (``docs/fleet.md``):

* names: ``X_bucket``/``X_sum``/``X_count`` with ``le`` make a histogram, ``X_total`` a counter,
  anything else a gauge; the unit comes from a Prometheus unit suffix (``_seconds`` -> ``s``,
  ``_bytes`` -> ``By``, ``_ratio`` -> ``1``). The OTel name is the one the views know whose
  Prometheus form matches (``service_circuit_breaker_state`` -> ``service.circuit_breaker.state``);
  an unknown name gets its underscores turned into dots.
* labels: ``agent``, the scrape's ``job``/``instance`` (and any ``ignore_labels``) are dropped,
  ``otel_scope_*`` become the scope, known attribute keys get their dots back, ``exported_agent``
  is the point's own ``agent``.
* the collection: components from ``telemetry_component_info``, buses from
  ``telemetry_component_bus``, reported health from ``telemetry_component_health`` (+ timestamp),
  outcomes from ``telemetry_collection_outcome`` with the snapshot duration and age, its time from
  ``telemetry_collection_timestamp_seconds``; reason texts (a reported health's reason, a snapshot's
  error, problems and unknown metrics) from ``telemetry_component_reason_timestamp_seconds``, keeping
  only the series whose value is that collection's time (older texts stay in ``last_over_time``);
  the same filter applies to the metric the services get, as the agent's own ``/metrics`` has only
  the newest texts. An agent without any reason series (from before them) gets
  :data:`ONLY_ON_AGENT` as the reason of a ``warn`` or ``fail``.
  What a complete agent has but this one lacks is listed in ``missing``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

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

from telemetry_otel import Collection, ComponentOutcome, ComponentRecord, HealthReport
from telemetry_otel import vocabulary as v
from telemetry_otel.views._fleet_query import Sample
from telemetry_otel.views._health_view import HEALTH_SOURCES
from telemetry_otel.views._operational import OPERATIONAL_SOURCES
from telemetry_otel.views._performance import PERFORMANCE_SOURCES
from telemetry_otel.views._reliability import RELIABILITY_SOURCES
from telemetry_otel.views._summary import SUMMARY_SOURCES

__all__ = ["AgentCollection", "agent_collection", "prometheus_name"]

_CUMULATIVE = AggregationTemporality.CUMULATIVE
_INVALID = re.compile(r"[^a-zA-Z0-9:]+")
#: Prometheus unit suffixes the encoder writes, and the UCUM unit each stands for.
_UNIT_SUFFIXES: tuple[tuple[str, str], ...] = (("_seconds", "s"), ("_bytes", "By"), ("_ratio", "1"))
_SCOPE_PREFIX = "otel_scope_"
#: Metric names the views read or the collector writes: their dots are restored exactly.
_KNOWN_NAMES = frozenset(
    {
        *(
            value
            for key, value in vars(v).items()
            if key.isupper() and isinstance(value, str) and "." in value
        ),
        *SUMMARY_SOURCES,
        *HEALTH_SOURCES,
        *OPERATIONAL_SOURCES,
        *PERFORMANCE_SOURCES,
        *RELIABILITY_SOURCES,
        "process.cpu.utilization",
        "process.memory.usage",
        "system.memory.utilization",
        "service.cache.hits",
        "service.cache.misses",
        "llm.tokens.input",
        "llm.tokens.output",
        "llm.cost",
    }
)
#: Attribute keys whose Prometheus label loses its dots, restored.
_KNOWN_KEYS = {
    key.replace(".", "_"): key
    for key in (
        v.SERVICE_NAME,
        v.SERVICE_CATEGORY,
        v.SERVICE_INSTANCE_ID,
        v.BUS_NAME,
        v.BUS_PROVIDER,
        v.HEALTH_STATUS,
        v.OVERFLOW,
        v.COMPONENT_KIND,
        v.COMPONENT_SNAPSHOT,
        v.COLLECTION_OUTCOME,
        v.REASON_SOURCE,
        v.REASON_TEXT,
        "circuit_breaker.state",
        "telemetry.sdk.language",
        "telemetry.sdk.name",
        "telemetry.sdk.version",
    )
}
_KNOWN_KEYS[f"exported_{v.AGENT_LABEL}"] = v.AGENT_LABEL
#: Series a complete agent always has (besides its services' own).
REQUIRED = ("telemetry_component_info", "telemetry_collection_timestamp_seconds")
#: The reason shown where the agent's own text is not in the TSDB.
ONLY_ON_AGENT = "the reason is only on the agent's own endpoint"
_REASONS = "telemetry_component_reason_timestamp_seconds"
#: How far a reason series' value may be from its collection's time and still be that collection's
#: (the same float written twice; a TSDB may store it with a few digits less).
_SAME_COLLECTION_SECONDS = 1e-3


def prometheus_name(name: str) -> str:
    """A metric or attribute name as the encoder writes it, without unit or ``_total`` suffix."""
    return _INVALID.sub("_", name).strip("_") if name else name


# A bus names its series ``bus.`` (and ``bus.provider.``) + its providers' metric name, less ``service.``.
_KNOWN_BY_PROMETHEUS = {
    prometheus_name(prefix + stem): prefix + stem
    for name in _KNOWN_NAMES
    for stem in {name, name.removeprefix("service.")}
    for prefix in ("", v.BUS_PREFIX, v.BUS_PROVIDER_PREFIX)
}
_KNOWN_BY_PROMETHEUS.update({prometheus_name(name): name for name in _KNOWN_NAMES})


@dataclass(frozen=True)
class AgentCollection:
    """One agent's collection as the TSDB holds it, and what a complete one would have that it lacks."""

    collection: Collection
    missing: tuple[str, ...]
    #: When the agent's collection read its metrics (Unix seconds), or None when that series is missing.
    collected_at: float | None


def _otel_name(base: str) -> tuple[str, str]:
    """The OTel name and unit of a Prometheus family name (``_total`` already removed)."""
    unit = ""
    for suffix, ucum in _UNIT_SUFFIXES:
        if base.endswith(suffix) and base != suffix:
            known = _KNOWN_BY_PROMETHEUS.get(base)
            if known is not None:  # the suffix is part of a known name
                return known, ""
            base, unit = base[: -len(suffix)], ucum
            break
    return _KNOWN_BY_PROMETHEUS.get(base, base.replace("_", ".")), unit


def _number(value: float) -> float | int:
    return int(value) if math.isfinite(value) and value.is_integer() else value


class _Builder:
    """Collects one agent's samples into metrics by scope, then the collection."""

    def __init__(self, ignore: frozenset[str]) -> None:
        self.ignore = ignore
        self.by_family: dict[str, list[Sample]] = {}

    def add(self, sample: Sample) -> None:
        self.by_family.setdefault(sample.labels.get("__name__", ""), []).append(sample)

    def split(self, labels: Mapping[str, str]) -> tuple[_ScopeKey, dict[str, str]]:
        """A sample's scope (as a hashable key) and its own attributes, dots restored."""
        scope = (
            labels.get(f"{_SCOPE_PREFIX}name"),
            labels.get(f"{_SCOPE_PREFIX}version"),
            labels.get(f"{_SCOPE_PREFIX}schema_url"),
        )
        ignore = self.ignore
        attributes = {
            _KNOWN_KEYS.get(key, key): value
            for key, value in labels.items()
            if key not in _DROPPED and key not in ignore and not key.startswith(_SCOPE_PREFIX)
        }
        return scope, attributes


#: A scope by (name, version, schema URL); no name: the sample carried no scope labels.
_ScopeKey = tuple[str | None, str | None, str | None]
_DROPPED = frozenset({"__name__", v.AGENT_LABEL, "le"})


def _scope(key: _ScopeKey) -> InstrumentationScope:
    name, version, schema_url = key
    return InstrumentationScope(name or "unknown", version, schema_url, None)


def agent_collection(
    samples: Iterable[Sample], *, ignore_labels: Iterable[str] = ("job", "instance")
) -> AgentCollection:
    """One agent's collection from its samples (the ``agent`` label already selected)."""
    builder = _Builder(frozenset(ignore_labels))
    for sample in samples:
        builder.add(sample)
    families = builder.by_family
    collected_at = _single(families.get("telemetry_collection_timestamp_seconds", ()))
    now = int((collected_at or 0.0) * 1e9)
    scopes: dict[_ScopeKey, list[Metric]] = {}
    histogram_bases = {name[: -len("_bucket")] for name in families if name.endswith("_bucket")}
    for family in sorted(families):
        if family == "target_info" or not family:
            continue
        base = family
        if any(family == f"{h}{part}" for h in histogram_bases for part in ("_bucket", "_sum", "_count")):
            if family.endswith("_bucket"):
                for scope, metric in _histograms(builder, family[: -len("_bucket")], now):
                    scopes.setdefault(scope, []).append(metric)
            continue
        counter = base.endswith("_total")
        if base.endswith("_created") and (
            f"{base[: -len('_created')]}_total" in families or base[: -len("_created")] in histogram_bases
        ):
            continue  # OpenMetrics creation times of a counter or histogram: not a metric of their own
        name, unit = _otel_name(base[: -len("_total")] if counter else base)
        by_scope: dict[_ScopeKey, list[NumberDataPoint]] = {}
        current = families[family]
        if family == _REASONS:  # only the newest collection's texts, as the agent's own /metrics has
            current = _current_reasons(current, collected_at)
        for sample in current:
            scope, attributes = builder.split(sample.labels)
            by_scope.setdefault(scope, []).append(
                NumberDataPoint(attributes, now, now, _number(sample.value))
            )
        for scope, points in by_scope.items():
            data: Sum | Gauge = Sum(points, _CUMULATIVE, True) if counter else Gauge(points)
            scopes.setdefault(scope, []).append(Metric(name, "", unit, data))
    resource = _resource(builder, families.get("target_info", ()))
    scope_metrics = [ScopeMetrics(_scope(scope), metrics, "") for scope, metrics in scopes.items()]
    metrics = MetricsData([ResourceMetrics(resource, scope_metrics, "")] if scope_metrics else [])
    components, buses, outcomes, missing = _components(families, builder, collected_at)
    missing = [name for name in REQUIRED if name not in families] + missing
    collection = Collection(
        metrics=metrics,
        outcomes=outcomes,
        time_unix_nano=now,
        duration_seconds=_single(families.get("telemetry_collection_duration_seconds", ())) or 0.0,
        sdk_disabled=False,
        components=components,
        buses=buses,
    )
    return AgentCollection(collection, tuple(missing), collected_at)


def _single(samples: Sequence[Sample]) -> float | None:
    values = [sample.value for sample in samples]
    return max(values) if values else None


@dataclass
class _HistogramParts:
    buckets: list[tuple[float, float]] = field(default_factory=list)
    sum: float = math.nan
    count: float | None = None


def _histograms(builder: _Builder, base: str, now: int) -> list[tuple[_ScopeKey, Metric]]:
    families = builder.by_family
    grouped: dict[tuple[_ScopeKey, tuple[tuple[str, str], ...]], _HistogramParts] = {}

    def entry(sample: Sample) -> _HistogramParts:
        scope, attributes = builder.split(sample.labels)
        return grouped.setdefault((scope, tuple(sorted(attributes.items()))), _HistogramParts())

    for sample in families.get(f"{base}_bucket", ()):
        entry(sample).buckets.append((float(sample.labels.get("le", "+Inf")), sample.value))
    for sample in families.get(f"{base}_sum", ()):
        entry(sample).sum = sample.value
    for sample in families.get(f"{base}_count", ()):
        entry(sample).count = sample.value
    name, unit = _otel_name(base)
    by_scope: dict[_ScopeKey, list[HistogramDataPoint]] = {}
    for (scope, attributes), parts in grouped.items():
        buckets = sorted(parts.buckets)
        if not buckets or math.isfinite(buckets[-1][0]):
            continue  # no +Inf bucket: not a histogram the encoder wrote
        bounds = [bound for bound, _ in buckets if math.isfinite(bound)]
        cumulative = [count for _, count in buckets]
        counts = [int(count - (cumulative[i - 1] if i else 0)) for i, count in enumerate(cumulative)]
        total = cumulative[-1] if parts.count is None else parts.count
        # min and max are not exposed: unknown (NaN), never 0.
        point = HistogramDataPoint(
            dict(attributes), now, now, int(total), parts.sum, counts, bounds, math.nan, math.nan
        )
        by_scope.setdefault(scope, []).append(point)
    return [
        (scope, Metric(name, "", unit, Histogram(points, _CUMULATIVE))) for scope, points in by_scope.items()
    ]


def _resource(builder: _Builder, samples: Sequence[Sample]) -> Resource:
    attributes: dict[str, str] = {}
    for sample in sorted(samples, key=lambda s: sorted(s.labels.items())):
        _, found = builder.split(sample.labels)
        attributes.update(found)
    return Resource(attributes)


def _components(
    families: Mapping[str, Sequence[Sample]], builder: _Builder, collected_at: float | None
) -> tuple[tuple[ComponentRecord, ...], dict[str, dict[str, str]], dict[str, ComponentOutcome], list[str]]:
    def by_service(family: str) -> dict[str, list[dict[str, str]]]:
        found: dict[str, list[dict[str, str]]] = {}
        for sample in families.get(family, ()):
            _, attributes = builder.split(sample.labels)
            attributes["value"] = repr(sample.value)
            found.setdefault(attributes.get(v.SERVICE_NAME, ""), []).append(attributes)
        return found

    def value_of(family: str) -> dict[str, float]:
        return {sample.labels.get("service_name", ""): sample.value for sample in families.get(family, ())}

    reasons: dict[tuple[str, str], str] = {}
    for sample in _current_reasons(families.get(_REASONS, ()), collected_at):
        labels = sample.labels
        key = (labels.get("service_name", ""), labels.get("reason_source", ""))
        reasons[key] = labels.get("reason_text", "")
    # An agent from before the reason series: its warn and fail reasons are on its own endpoint only.
    no_reasons = ONLY_ON_AGENT if _REASONS not in families else None
    health = by_service("telemetry_component_health")
    health_time = value_of("telemetry_component_health_timestamp_seconds")
    outcome = by_service("telemetry_collection_outcome")
    durations = value_of("telemetry_collection_snapshot_duration_seconds")
    ages = value_of("telemetry_collection_snapshot_age_seconds")
    buses: dict[str, dict[str, str]] = {}
    memberships: dict[str, set[str]] = {}
    for sample in families.get("telemetry_component_bus", ()):
        labels = sample.labels
        bus, provider, component = (
            labels.get("bus_name"),
            labels.get("bus_provider"),
            labels.get("service_name"),
        )
        if bus and provider and component:
            buses.setdefault(bus, {})[provider] = component
            memberships.setdefault(component, set()).add(bus)
    records: list[ComponentRecord] = []
    outcomes: dict[str, ComponentOutcome] = {}
    missing: list[str] = []
    for sample in sorted(
        families.get("telemetry_component_info", ()), key=lambda s: s.labels.get("service_name", "")
    ):
        labels = sample.labels
        name = labels.get("service_name", "")
        category = labels.get("service_category") or None
        attributes = {v.SERVICE_NAME: name, **({v.SERVICE_CATEGORY: category} if category else {})}
        has_snapshot = labels.get("component_snapshot") == "true"
        report = None
        current = [entry for entry in health.get(name, ()) if float(entry["value"]) == 1]
        if current:
            status = current[0].get(v.HEALTH_STATUS)
            reported_at = health_time.get(name)
            if status in ("pass", "warn", "fail"):
                report = HealthReport(
                    status,  # type: ignore[arg-type]
                    reasons.get((name, "health")) or (None if status == "pass" else no_reasons),
                    int((reported_at if reported_at is not None else collected_at or 0.0) * 1e9),
                )
        records.append(
            ComponentRecord(
                name=name,
                category=category,
                attributes=attributes,
                has_snapshot=has_snapshot,
                health=report,
                buses=tuple(sorted(memberships.get(name, ()))),
            )
        )
        if not has_snapshot:
            outcomes[name] = ComponentOutcome(name, "none", None, 0.0, None)
            continue
        states = [entry for entry in outcome.get(name, ()) if float(entry["value"]) == 1]
        if not states:
            missing.append(f'telemetry_collection_outcome{{service_name="{name}"}}')
            continue
        state = states[0].get(v.COLLECTION_OUTCOME, "error")
        age = ages.get(name)
        last_success = None if age is None or collected_at is None else int((collected_at - age) * 1e9)
        error = reasons.get((name, "snapshot.error"))
        outcomes[name] = ComponentOutcome(
            name,
            state if state in ("ok", "error", "timeout") else "error",  # type: ignore[arg-type]
            None if state == "ok" else error or f"{state} ({ONLY_ON_AGENT})",
            durations.get(name, 0.0),
            last_success,
            _lines(reasons.get((name, "snapshot.problems"))),
            _lines(reasons.get((name, "snapshot.unknown"))),
        )
    return tuple(records), buses, outcomes, missing


def _current_reasons(samples: Sequence[Sample], collected_at: float | None) -> list[Sample]:
    """The reason samples of the collection at ``collected_at`` (none without one): a TSDB's
    ``last_over_time`` also returns texts of older collections, valued with their own time."""
    if collected_at is None:
        return []
    return [sample for sample in samples if abs(sample.value - collected_at) <= _SAME_COLLECTION_SECONDS]


def _lines(text: str | None) -> tuple[str, ...]:
    return tuple(text.split("\n")) if text else ()
