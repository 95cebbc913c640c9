"""The typed model every view renders from: per component, bus and category state, and the whole.

Built once per collection and query by :func:`telemetry_otel.views._build.build_model`; the rules
are documented in ``docs/views.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from telemetry_otel import HealthStatus
from telemetry_otel.views._inputs import ViewInputs
from telemetry_otel.views._numbers import age, ratio
from telemetry_otel.views._quantiles import Buckets
from telemetry_otel.views._thresholds import Alert

__all__ = [
    "RANK",
    "SCORE_WEIGHTS",
    "STATUSES",
    "BusState",
    "CategoryState",
    "ComponentState",
    "Model",
    "OverallStatus",
    "ScoreInput",
    "Status",
]


Status: TypeAlias = Literal["pass", "warn", "fail", "unknown"]
OverallStatus: TypeAlias = Literal["pass", "warn", "fail"]
STATUSES: tuple[Status, ...] = ("pass", "warn", "fail", "unknown")
RANK: Mapping[str, int] = {"pass": 0, "warn": 1, "fail": 2}

#: Health score weights, in the order the inputs are listed.
SCORE_WEIGHTS: Mapping[str, int] = {
    "availability": 40,
    "error_ratio": 20,
    "latency": 15,
    "resource_pressure": 15,
    "circuit_breakers": 10,
}


@dataclass(frozen=True)
class ComponentState:
    """One component (runtime service or bus-only provider) as read from one collection."""

    name: str
    category: str | None
    #: ok | error | timeout | none (no snapshot function); None when the collection has no outcome for it.
    outcome: str | None
    snapshot_error: str | None
    snapshot_duration_seconds: float | None
    problems: tuple[str, ...]
    has_snapshot: bool
    #: Seconds since the last successful snapshot (None: no snapshot function, or never succeeded).
    last_success_age_seconds: float | None
    reported_status: HealthStatus | None
    reported_reason: str | None
    reported_age_seconds: float | None
    status: Status
    reason: str | None
    alerts: tuple[Alert, ...]
    uptime_seconds: float | None
    requests: float | None
    errors: float | None
    request_rate: float | None
    latency: Buckets | None
    queue_depth: float | None
    #: ``process.cpu.utilization`` divided by the CPU count: a fraction of the host.
    cpu_utilization: float | None
    memory_usage_bytes: float | None
    memory_utilization: float | None
    circuit_breaker: str | None
    tokens_input: float | None
    tokens_output: float | None
    cost: float | None
    cache_hits: float | None
    cache_misses: float | None

    @property
    def is_service(self) -> bool:
        """True for a runtime service (it has a category)."""
        return self.category is not None

    @property
    def error_ratio(self) -> float | None:
        """errors / requests; None before the first request."""
        return ratio(self.errors, self.requests)

    @property
    def cache_hit_ratio(self) -> float | None:
        """hits / (hits + misses); None before the first cache lookup."""
        if self.cache_hits is None or self.cache_misses is None:
            return None
        return ratio(self.cache_hits, self.cache_hits + self.cache_misses)

    @property
    def availability(self) -> float | None:
        """1 when the status is pass or warn, 0 when fail, None when unknown."""
        return None if self.status == "unknown" else float(self.status != "fail")

    @property
    def source(self) -> str:
        """``snapshot`` when a snapshot function supplies values, ``live`` when all are recorded live."""
        return "snapshot" if self.has_snapshot else "live"


@dataclass(frozen=True)
class BusState:
    """One bus: its providers' statuses and its own ``bus.*`` series."""

    name: str
    providers: Mapping[str, str]
    provider_states: Mapping[str, ComponentState | None]
    status: Status
    reason: str | None
    numbers: Mapping[str, float]
    latency: Buckets | None
    request_rate: float | None

    def number(self, stem: str) -> float | None:
        """The value of the bus series ``bus.<stem>`` (None when absent)."""
        return self.numbers.get(stem)


@dataclass(frozen=True)
class CategoryState:
    """The roll-up of one category's selected services."""

    name: str
    members: tuple[str, ...]
    status: Status
    reason: str | None
    counts: Mapping[str, int]


@dataclass(frozen=True)
class ScoreInput:
    """One input of the health score: the measured value, its 0-1 score and its weight."""

    name: str
    weight: int
    value: float | None
    score: float | None

    def as_dict(self) -> dict[str, Any]:
        """The input as a JSON object."""
        return {"value": self.value, "score": self.score, "weight": self.weight}


@dataclass(frozen=True)
class Model:
    """The selected services and buses of one collection and everything derived from them."""

    inputs: ViewInputs
    services: tuple[ComponentState, ...]
    buses: tuple[BusState, ...]
    categories: tuple[CategoryState, ...]
    alerts: tuple[Alert, ...]
    status: OverallStatus
    reason: str | None
    counts: Mapping[str, int]
    requests: float | None
    errors: float | None
    request_rate: float | None
    latency: Buckets | None
    cpu_utilization: float | None
    memory_utilization: float | None
    breakers_total: int
    breakers_open: int
    score: float | None
    score_inputs: tuple[ScoreInput, ...]
    #: Names of the components the filter selected (services, and providers named by ``service``).
    selected: frozenset[str]

    @property
    def error_ratio(self) -> float | None:
        """Σ errors / Σ requests over the selected services; None without requests."""
        return ratio(self.errors, self.requests)

    @property
    def availability(self) -> float | None:
        """Fraction of selected services with a known status that are pass or warn."""
        known = [state.availability for state in self.services if state.availability is not None]
        return sum(known) / len(known) if known else None

    @property
    def age_seconds(self) -> float:
        """Seconds between the collection and ``now``."""
        return age(self.inputs.now_unix_nano, self.inputs.collection.time_unix_nano) or 0.0

    def alert_counts(self) -> dict[str, int]:
        """Active alerts per severity."""
        return {
            severity: sum(alert.severity == severity for alert in self.alerts)
            for severity in ("critical", "warning")
        }
