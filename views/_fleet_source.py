"""A fleet's agents read from a Prometheus-compatible TSDB: one collection per agent, in a fixed
number of queries.

Every refresh sends the same :data:`QUERIES`, whatever the number of agents or services: each
aggregates ``by (agent, ...)`` over every agent at once. Counts come from ``last_over_time`` over
the lookback (an agent that stopped keeps its last counts); rates from ``rate`` over the window (the
increase over the window is that rate times the window, as PromQL defines ``increase``);
p95 latencies from ``histogram_quantile`` over the runtime services' buckets (over the window, and
over the buckets' cumulative counts since each agent started, which is what an agent's own summary
shows).

Agents are also discovered from the TSDB's label index: one ``/api/v1/series`` request
(:data:`SERIES_MATCHES`) lists, within the lookback, every agent that has any of the series every
agent has, and which of them it has. An agent that request finds but the value queries do not
return (their limits, or an agent that arrived between the requests) is still listed, ``unknown``
with what is missing: never silently dropped; one the index lists but with no sample at all (a
newly started agent, before its first scrape is queryable) is ``unknown`` with
:data:`INDEXED_ONLY` as its ``unknown_reason``, not down. A refresh costs
:data:`REQUESTS_PER_READ` requests.

An agent is **down** when every scrape target it was last seen on answers ``up == 0`` (the TSDB
holds Prometheus's ``up`` series), or when its newest collection is older than
``down_after_seconds`` (any TSDB, however the series arrive). Its counts stay in the fleet totals.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from telemetry_otel import Collection
from telemetry_otel.views._fleet_collection import REQUIRED, AgentCollection, agent_collection
from telemetry_otel.views._fleet_query import PrometheusClient, Sample
from telemetry_otel.views._series import read_series
from telemetry_otel.vocabulary import AGENT_LABEL, BUS_NAME, BUS_REQUESTS, SERVICE_NAME, SERVICE_REQUESTS

__all__ = [
    "DEFAULT_DOWN_AFTER_SECONDS",
    "DEFAULT_LOOKBACK_SECONDS",
    "DEFAULT_WINDOW_SECONDS",
    "INDEXED_ONLY",
    "QUERIES",
    "REQUESTS_PER_READ",
    "SERIES_MATCHES",
    "AgentData",
    "FleetData",
    "FleetSettings",
    "FleetSource",
]

#: How far back agents are looked for (``last_over_time``): one day.
DEFAULT_LOOKBACK_SECONDS = 86_400.0
#: The window of rates and windowed quantiles (``rate``, ``increase``): five minutes.
DEFAULT_WINDOW_SECONDS = 300.0
#: An agent whose newest collection is older than this is down (Prometheus's own lookback delta).
DEFAULT_DOWN_AFTER_SECONDS = 300.0

#: Why an agent the series index lists but whose samples no query returns is ``unknown``.
INDEXED_ONLY = (
    "the TSDB's series index lists this agent but holds no sample of it yet "
    "(a newly started agent; or its samples are older than the lookback)"
)

#: Every query of a refresh, by what it answers; ``{lookback}`` and ``{window}`` are durations.
QUERIES: Mapping[str, str] = {
    "series": 'last_over_time({{agent!=""}}[{lookback}])',
    "up": "last_over_time(up[{lookback}])",
    "service_rate": 'sum by (agent, service_name) (rate(service_requests_total{{agent!=""}}[{window}]))',
    "bus_rate": 'sum by (agent, bus_name) (rate(bus_requests_total{{agent!=""}}[{window}]))',
    "p95_window": "histogram_quantile(0.95, sum by (agent, le) "
    '(rate(service_request_duration_seconds_bucket{{agent!="",service_category!=""}}[{window}])))',
    "fleet_p95_window": "histogram_quantile(0.95, sum by (le) "
    '(rate(service_request_duration_seconds_bucket{{agent!="",service_category!=""}}[{window}])))',
    "p95_since_start": "histogram_quantile(0.95, sum by (agent, le) "
    '(last_over_time(service_request_duration_seconds_bucket{{agent!="",service_category!=""}}[{lookback}])))',
    "fleet_p95_since_start": "histogram_quantile(0.95, sum by (le) "
    '(last_over_time(service_request_duration_seconds_bucket{{agent!="",service_category!=""}}[{lookback}])))',
}
#: The selectors of the one ``/api/v1/series`` request of a refresh: the series every agent has.
SERIES_MATCHES: tuple[str, ...] = tuple(f'{name}{{agent!=""}}' for name in REQUIRED)
#: What one refresh costs the TSDB, whatever the number of agents or services.
REQUESTS_PER_READ = len(QUERIES) + 1
_RATE_SCOPE = InstrumentationScope("telemetry_otel.views.fleet", None, None, None)


@dataclass(frozen=True)
class FleetSettings:
    """How the fleet is read: ``lookback_seconds`` to find agents, ``window_seconds`` for rates,
    ``down_after_seconds`` for an agent's newest collection, ``ignore_labels`` that the scrape adds
    (``job``, ``instance``, and any ``external_labels``)."""

    lookback_seconds: float = DEFAULT_LOOKBACK_SECONDS
    window_seconds: float = DEFAULT_WINDOW_SECONDS
    down_after_seconds: float = DEFAULT_DOWN_AFTER_SECONDS
    ignore_labels: tuple[str, ...] = ("job", "instance")

    def __post_init__(self) -> None:
        for name in ("lookback_seconds", "window_seconds", "down_after_seconds"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")

    def promql(self, key: str) -> str:
        """The query ``key`` of :data:`QUERIES` with this lookback and window."""
        return QUERIES[key].format(
            lookback=_duration(self.lookback_seconds), window=_duration(self.window_seconds)
        )


def _duration(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


@dataclass(frozen=True)
class AgentData:
    """One agent as the TSDB holds it."""

    agent: str
    collection: Collection
    #: The collection ``window_seconds`` earlier as the TSDB's ``rate`` implies it (request
    #: counters only): the views' rates are then the TSDB's. None: no sample in the window.
    previous: Collection | None
    missing: tuple[str, ...]
    collected_at: float | None
    age_seconds: float | None
    #: The last ``up`` of the agent's scrape targets (None: the TSDB has no ``up`` for them).
    scrape_up: bool | None
    down_reason: str | None
    request_rate_per_second: float | None
    latency_p95_window_seconds: float | None
    latency_p95_seconds: float | None
    #: Why the agent's state is unknown though it is not down (:data:`INDEXED_ONLY`), or None.
    unknown_reason: str | None = None

    @property
    def down(self) -> bool:
        """The agent is down or stale (:attr:`down_reason` says which)."""
        return self.down_reason is not None


@dataclass(frozen=True)
class FleetData:
    """Every agent of one refresh, with the fleet-wide quantiles and what the refresh cost."""

    time_unix: float
    agents: Mapping[str, AgentData]
    settings: FleetSettings
    queries: int
    duration_seconds: float
    latency_p95_window_seconds: float | None
    latency_p95_seconds: float | None
    notes: tuple[str, ...] = field(default=())


class FleetSource:
    """Reads the fleet from one TSDB: :meth:`read` sends :data:`QUERIES` and one series request,
    nothing per agent."""

    def __init__(self, client: PrometheusClient, settings: FleetSettings | None = None) -> None:
        self.client = client
        self.settings = settings or FleetSettings()

    async def read(self, at_unix: float | None = None) -> FleetData:
        """Every agent as of ``at_unix`` (default: now); a ``TsdbError`` when a query fails."""
        now = time.time() if at_unix is None else at_unix
        started = time.perf_counter()
        keys = list(QUERIES)
        start = now - self.settings.lookback_seconds
        found, answers = await asyncio.gather(
            asyncio.to_thread(self.client.series, SERIES_MATCHES, start, now),
            asyncio.gather(
                *(asyncio.to_thread(self.client.query, self.settings.promql(key), now) for key in keys)
            ),
        )
        results = dict(zip(keys, answers, strict=True))
        indexed: dict[str, set[str]] = {}
        for labels in found:
            agent = labels.get(AGENT_LABEL, "")
            if agent:
                indexed.setdefault(agent, set()).add(labels.get("__name__", ""))
        agents = self._agents(results, indexed, now)
        return FleetData(
            time_unix=now,
            agents=agents,
            settings=self.settings,
            queries=REQUESTS_PER_READ,
            duration_seconds=time.perf_counter() - started,
            latency_p95_window_seconds=_first_value(results["fleet_p95_window"]),
            latency_p95_seconds=_first_value(results["fleet_p95_since_start"]),
        )

    def _agents(
        self, results: Mapping[str, list[Sample]], indexed: Mapping[str, set[str]], now: float
    ) -> dict[str, AgentData]:
        settings = self.settings
        by_agent: dict[str, list[Sample]] = {agent: [] for agent in indexed}
        for sample in results["series"]:
            by_agent.setdefault(sample.labels.get(AGENT_LABEL, ""), []).append(sample)
        by_agent.pop("", None)
        up = {(s.labels.get("job", ""), s.labels.get("instance", "")): s.value for s in results["up"]}
        service_rate = _by(results["service_rate"], "service_name")
        bus_rate = _by(results["bus_rate"], "bus_name")
        p95_window = {s.labels.get(AGENT_LABEL, ""): s.value for s in results["p95_window"]}
        p95 = {s.labels.get(AGENT_LABEL, ""): s.value for s in results["p95_since_start"]}
        agents: dict[str, AgentData] = {}
        for agent in sorted(by_agent):
            samples = by_agent[agent]
            built = agent_collection(samples, ignore_labels=settings.ignore_labels)
            unindexed = [name for name in REQUIRED if name not in indexed.get(agent, ())]
            missing = (*built.missing, *(name for name in unindexed if name not in built.missing))
            targets = {(s.labels.get("job", ""), s.labels.get("instance", "")) for s in samples}
            known = [up[target] for target in targets if target in up]
            scrape_up = None if not known else any(value == 1 for value in known)
            age = None if built.collected_at is None else max(0.0, now - built.collected_at)
            down_reason = unknown_reason = None
            if not samples:  # found by the series index only: no sample says it is down
                unknown_reason = INDEXED_ONLY
            elif scrape_up is False:
                down_reason = "its scrape target is down (up == 0)"
            elif age is not None and age > settings.down_after_seconds:
                down_reason = f"no collection for {age:.0f} s (more than {settings.down_after_seconds:g} s)"
            elif age is None:
                down_reason = "no telemetry_collection_timestamp_seconds within the lookback"
            services = service_rate.get(agent, {})
            buses = bus_rate.get(agent, {})
            window = settings.window_seconds
            agents[agent] = AgentData(
                agent=agent,
                collection=built.collection,
                previous=_previous(built, services, buses, window),
                missing=missing,
                collected_at=built.collected_at,
                age_seconds=age,
                scrape_up=scrape_up,
                down_reason=down_reason,
                request_rate_per_second=math.fsum(services.values()) if services else None,
                latency_p95_window_seconds=_finite(p95_window.get(agent)),
                latency_p95_seconds=_finite(p95.get(agent)),
                unknown_reason=unknown_reason,
            )
        return agents


def _by(samples: Sequence[Sample], key: str) -> dict[str, dict[str, float]]:
    found: dict[str, dict[str, float]] = {}
    for sample in samples:
        if math.isfinite(sample.value):
            found.setdefault(sample.labels.get(AGENT_LABEL, ""), {})[sample.labels.get(key, "")] = (
                sample.value
            )
    return found


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _first_value(samples: Sequence[Sample]) -> float | None:
    return _finite(samples[0].value) if samples else None


def _previous(
    built: AgentCollection, services: Mapping[str, float], buses: Mapping[str, float], window: float
) -> Collection | None:
    """The request counters ``window`` seconds before the collection: now less the TSDB's rate
    times the window (its ``increase``), so that the views' rates are the TSDB's."""
    if not services and not buses:
        return None
    current_services, current_buses = read_series(built.collection)
    now = built.collection.time_unix_nano
    metrics = []
    for name, key, rates, current in (
        (SERVICE_REQUESTS, SERVICE_NAME, services, current_services),
        (BUS_REQUESTS, BUS_NAME, buses, current_buses),
    ):
        points = []
        for owner, rate in sorted(rates.items()):
            series = current.get(owner)
            total = None if series is None else series.plain(name)
            if total is not None:
                points.append(NumberDataPoint({key: owner}, now, now, max(0.0, total - rate * window)))
        if points:
            metrics.append(
                Metric(name, "", "{request}", Sum(points, AggregationTemporality.CUMULATIVE, True))
            )
    resource = Resource.get_empty()
    data = MetricsData(
        [ResourceMetrics(resource, [ScopeMetrics(_RATE_SCOPE, metrics, "")], "")] if metrics else []
    )
    return Collection(
        metrics=data,
        outcomes={},
        time_unix_nano=now - int(window * 1e9),
        duration_seconds=0.0,
        sdk_disabled=False,
    )
