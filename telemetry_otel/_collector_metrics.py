"""The collector's own metrics: how collection cycles went, per component and overall."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence

from opentelemetry.sdk.metrics.export import AggregationTemporality, Gauge, Metric, NumberDataPoint, Sum
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from telemetry_otel._collection import ComponentOutcome, ComponentRecord
from telemetry_otel._component_metrics import ReasonTextsSeen, component_series
from telemetry_otel._version import __version__
from telemetry_otel.vocabulary import (
    COLLECTOR_SCOPE_NAME,
    SERVICE_NAME,
    TELEMETRY_COLLECTION_DURATION,
    TELEMETRY_COLLECTION_ERRORS,
    TELEMETRY_COLLECTION_PROBLEMS,
    TELEMETRY_COLLECTION_SNAPSHOT_AGE,
    TELEMETRY_COLLECTION_TIMEOUTS,
    TELEMETRY_COLLECTION_UP,
    TELEMETRY_COLLECTIONS,
)

__all__ = ["COLLECTOR_SCOPE_NAME", "CollectorMetrics"]

#: Instrumentation scope of the collector's own metrics.


class CollectorMetrics:
    """A metric producer fed by every collection cycle.

    Series: ``telemetry.collections`` (cycles run), ``telemetry.collection.duration`` (s, the last
    cycle's snapshot phase), and per component (``service.name``): ``telemetry.collection.up``
    (1 when its last snapshot succeeded, 0 when it raised or timed out), ``telemetry.collection.errors``
    and ``telemetry.collection.timeouts`` (cycles that failed that way), ``telemetry.collection.problems``
    (snapshot values dropped as unusable: one per problem of an outcome), and
    ``telemetry.collection.snapshot.age`` (s since its last good snapshot; absent before the first).
    Components without a snapshot function have no ``up`` or ``age`` series: nothing is collected.
    With :meth:`record_components`, the cycle's components, reported health and outcomes follow
    (``_component_metrics``), so that ``/metrics`` alone describes the collection.
    """

    def __init__(self) -> None:
        self._scope = InstrumentationScope(COLLECTOR_SCOPE_NAME, __version__, None, None)
        self._counting_from_zero()

    def _counting_from_zero(self) -> None:
        """Every count and reading as at start: a new process, or a forked child."""
        self._lock = threading.Lock()
        self._start = time.time_ns()
        self._cycles = 0
        self._last_duration: float | None = None
        self._last: dict[str, ComponentOutcome] = {}
        self._errors: dict[str, int] = {}
        self._timeouts: dict[str, int] = {}
        self._problems: dict[str, int] = {}
        self._last_outcomes: dict[str, ComponentOutcome] = {}
        self._records: tuple[ComponentRecord, ...] = ()
        self._reason_texts: ReasonTextsSeen = {}
        self._buses: Mapping[str, Mapping[str, str]] = {}

    def reset_after_fork(self) -> None:
        """A forked child counts its own cycles from zero."""
        self._counting_from_zero()

    @property
    def scope(self) -> InstrumentationScope:
        """The collector's instrumentation scope."""
        return self._scope

    def record(self, outcomes: Mapping[str, ComponentOutcome], duration_seconds: float) -> None:
        """Account for one cycle's outcomes."""
        with self._lock:
            self._cycles += 1
            self._last_duration = duration_seconds
            self._last = {name: o for name, o in outcomes.items() if o.outcome != "none"}
            self._last_outcomes = dict(outcomes)
            for name, outcome in self._last.items():
                self._errors.setdefault(name, 0)
                self._timeouts.setdefault(name, 0)
                self._problems[name] = self._problems.get(name, 0) + len(outcome.problems)
                if outcome.outcome == "error":
                    self._errors[name] += 1
                elif outcome.outcome == "timeout":
                    self._timeouts[name] += 1

    def record_components(
        self, records: Sequence[ComponentRecord], buses: Mapping[str, Mapping[str, str]]
    ) -> None:
        """The cycle's frozen components and bus membership, published with the cycle's metrics."""
        with self._lock:
            self._records, self._buses = tuple(records), buses

    def produce(self, time_unix_nano: int) -> Iterable[Metric]:
        """The collector's series as of ``time_unix_nano``."""
        with self._lock:
            if not self._cycles:
                return []
            now, start = time_unix_nano, self._start
            up, age = [], []
            for name, outcome in self._last.items():
                attributes = {SERVICE_NAME: name}
                up.append(NumberDataPoint(attributes, now, now, 1 if outcome.outcome == "ok" else 0))
                if outcome.last_success_unix_nano is not None:
                    seconds = max(0.0, (now - outcome.last_success_unix_nano) / 1e9)
                    age.append(NumberDataPoint(attributes, now, now, seconds))
            cumulative = AggregationTemporality.CUMULATIVE
            errors = [NumberDataPoint({SERVICE_NAME: n}, start, now, v) for n, v in self._errors.items()]
            timeouts = [NumberDataPoint({SERVICE_NAME: n}, start, now, v) for n, v in self._timeouts.items()]
            problems = [NumberDataPoint({SERVICE_NAME: n}, start, now, v) for n, v in self._problems.items()]
            metrics = [
                Metric(
                    TELEMETRY_COLLECTIONS,
                    "Collection cycles run.",
                    "{cycle}",
                    Sum([NumberDataPoint({}, start, now, self._cycles)], cumulative, is_monotonic=True),
                ),
                Metric(
                    TELEMETRY_COLLECTION_DURATION,
                    "Duration of the last collection cycle's snapshot phase.",
                    "s",
                    Gauge([NumberDataPoint({}, now, now, self._last_duration or 0.0)]),
                ),
                Metric(
                    TELEMETRY_COLLECTION_UP,
                    "1 when the component's last snapshot succeeded.",
                    "{status}",
                    Gauge(up),
                ),
                Metric(
                    TELEMETRY_COLLECTION_ERRORS,
                    "Snapshots that raised.",
                    "{cycle}",
                    Sum(errors, cumulative, is_monotonic=True),
                ),
                Metric(
                    TELEMETRY_COLLECTION_TIMEOUTS,
                    "Snapshots that timed out.",
                    "{cycle}",
                    Sum(timeouts, cumulative, is_monotonic=True),
                ),
                Metric(
                    TELEMETRY_COLLECTION_PROBLEMS,
                    "Snapshot values dropped: undeclared, not a finite number, or a negative counter.",
                    "{problem}",
                    Sum(problems, cumulative, is_monotonic=True),
                ),
                Metric(
                    TELEMETRY_COLLECTION_SNAPSHOT_AGE,
                    "Time since the component's last good snapshot.",
                    "s",
                    Gauge(age),
                ),
            ]
            metrics += component_series(
                self._records, self._buses, self._last_outcomes, now, self._reason_texts
            )
            return [metric for metric in metrics if metric.data.data_points]
