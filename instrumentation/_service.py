"""``instrument_service``: the standard vitals and snapshot metrics of a service in one call."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from telemetry_otel import (
    HEALTH_STATUSES,
    Component,
    HealthStatus,
    SnapshotFunction,
    Telemetry,
    __version__,
    current_telemetry,
)
from telemetry_otel.instrumentation._exemplars import ALWAYS_ON, TRACE_BASED, exemplar_mode
from telemetry_otel.instrumentation._snapshots import MetricKind, SnapshotMetric, SnapshotMetrics, truncate
from telemetry_otel.instrumentation._timer import RequestTimer, timer_class
from telemetry_otel.instrumentation._uptime import UptimeProducer
from telemetry_otel.instrumentation._vitals import RequestVitals, VitalsProducer
from telemetry_otel.vocabulary import (
    HEALTH_STATUS,
    SERVICE_CATEGORY,
    SERVICE_HEALTH,
    SERVICE_NAME,
    VITALS_SCOPE_NAME,
)

__all__ = ["SCOPE_NAME", "InstrumentedService", "instrument_service"]

_Callback = Callable[[CallbackOptions], Iterable[Observation]]

#: Instrumentation scope of every metric this package records for services.
SCOPE_NAME = VITALS_SCOPE_NAME

HEALTH_METRIC = (
    SERVICE_HEALTH,
    "{status}",
    "Health the service reports: 1 for its current health.status, 0 for the others.",
)


class InstrumentedService:
    """A service (or bus provider) with its standard vitals.

    Record each request with :meth:`record_request` (or ``service.request()``: ``with``,
    ``async with`` or a decorator), report health with :meth:`report_health`; uptime is published
    automatically and the snapshot function, when given, is read once per collection cycle.
    """

    __slots__ = ("_closed", "_state", "_telemetry", "_vitals", "component", "record_request", "request")

    def __init__(
        self,
        telemetry: Telemetry,
        component: Component,
        vitals: RequestVitals | None,
        state: _State | None,
    ) -> None:
        self.component = component
        self._telemetry = telemetry
        self._vitals = vitals
        self._state = state
        self._closed = False
        #: ``record_request(seconds, error=False)``: count one request and its latency (no-op when
        #: the SDK is disabled). Bound once, so a call costs one method dispatch.
        self.record_request = _recorder(vitals, exemplar_mode(telemetry.config.exemplar_filter))
        #: ``request()``: time one request: ``with service.request():``, ``async with
        #: service.request():``, or ``@service.request()`` on a sync or async function (each call
        #: is one request). An exception counts as an error and propagates; cancellation and
        #: interrupts (``BaseException`` that is not an ``Exception``) record nothing. It is this
        #: service's :class:`RequestTimer` class, so making a timer runs no Python code.
        self.request: Callable[[], RequestTimer] = timer_class(self.record_request)

    @property
    def name(self) -> str:
        """The service's name, the value of its ``service.name`` attribute."""
        return self.component.name

    def report_health(self, status: HealthStatus, reason: str | None = None) -> None:
        """Set the health this service reports (``pass``, ``warn`` or ``fail``) with its reason."""
        self.component.report_health(status, reason)

    @property
    def telemetry(self) -> Telemetry:
        """The telemetry runtime the service is registered on."""
        return self._telemetry

    def close(self) -> None:
        """Unregister the service: its metrics stop at the next collection (a second call does nothing)."""
        if self._closed:
            return
        self._closed = True
        state = self._state
        if state is not None:
            if self._vitals is not None:
                state.vitals.unbind(self._vitals)
            state.snapshots.withdraw(self.component)
        self._telemetry.components.remove(self.component.name)


def _ignore(seconds: float, error: bool = False) -> None:
    """The no-op recorder used when the SDK is disabled."""


class Recorder(Protocol):
    """``record_request(seconds, error=False)``."""

    def __call__(self, seconds: float, error: bool = False) -> None: ...


def _recorder(vitals: RequestVitals | None, mode: int) -> Recorder:
    """The recorder for ``OTEL_METRICS_EXEMPLAR_FILTER``: without exemplars, the plain fast path."""
    if vitals is None:
        return _ignore
    if mode == TRACE_BASED:
        return vitals.record_traced
    return vitals.record_always if mode == ALWAYS_ON else vitals.record


@dataclass
class _State:
    """What instrumentation keeps per telemetry runtime: the vitals producer and observables.

    It holds no reference to the runtime, so a runtime that is shut down and dropped is collected.
    """

    vitals: VitalsProducer
    snapshots: SnapshotMetrics


_states: weakref.WeakKeyDictionary[Telemetry, _State] = weakref.WeakKeyDictionary()
_states_lock = threading.Lock()


def _state_for(telemetry: Telemetry) -> _State:
    with _states_lock:
        state = _states.get(telemetry)
        if state is None:
            meter = telemetry.get_meter(SCOPE_NAME, __version__)
            scope = InstrumentationScope(SCOPE_NAME, __version__, None, None)
            snapshots = SnapshotMetrics(
                meter,
                cardinality_limit=telemetry.config.cardinality_limit,
                attribute_value_length_limit=telemetry.config.attribute_value_length_limit,
            )
            state = _State(VitalsProducer(scope), snapshots)
            telemetry.add_producer(state.vitals)
            telemetry.add_producer(UptimeProducer(scope, telemetry.components.registered))
            meter.create_observable_gauge(
                HEALTH_METRIC[0], [_health_callback(telemetry)], HEALTH_METRIC[1], HEALTH_METRIC[2]
            )
            _states[telemetry] = state
        return state


def _health_callback(telemetry: Telemetry) -> _Callback:
    def observe(options: CallbackOptions) -> Iterable[Observation]:
        observations: list[Observation] = []
        for component in telemetry.components:
            report = component.health
            if report is None:  # not reported: unknown, so nothing is emitted
                continue
            for status in HEALTH_STATUSES:
                value = 1 if status == report.status else 0
                observations.append(Observation(value, {**component.attributes, HEALTH_STATUS: status}))
        return observations

    return observe


def instrument_service(
    name: str,
    *,
    category: str | None = None,
    snapshot: SnapshotFunction | None = None,
    metrics: Iterable[SnapshotMetric] = (),
    telemetry: Telemetry | None = None,
) -> InstrumentedService:
    """Register a service and give it the standard vitals in one call.

    Vitals: ``service.uptime`` (s), ``service.health`` (per ``health.status``), ``service.requests``,
    ``service.errors`` and ``service.request.duration`` (s, histogram from 100 us to 60 s). Every
    series carries ``service.name`` and, for runtime services, ``service.category``. ``snapshot``
    (sync or async) returns the values of ``metrics`` by name; it runs once per collection cycle.

    The declaration is checked: a snapshot function without ``metrics``, or a metric declared twice,
    is a ``ValueError`` here; a name the function returns without having declared it, or a negative
    counter, is dropped at collection, listed in the outcome's ``problems``, logged (rate-limited)
    and turns the service's status to ``warn``. A declared metric the function does not return is
    unknown: absent from the output, never 0.

    ``name`` and ``category`` are attribute values: each is cut to its first
    ``attribute_value_length_limit`` characters (``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT``, 256 by
    default), and the service is registered under the cut name (two names equal once cut are the
    same name, refused as a duplicate).
    """
    metrics = list(metrics)
    if metrics and snapshot is None:
        raise ValueError(f"service {name!r} declares snapshot metrics but has no snapshot function")
    if snapshot is not None and not metrics:
        raise ValueError(
            f"service {name!r} has a snapshot function but declares no metrics: list every metric it "
            "returns in metrics=[counter(...), gauge(...), updown_counter(...)]"
        )
    declared: dict[str, MetricKind] = {}
    for metric in metrics:
        if metric.name in declared:
            raise ValueError(f"service {name!r} declares the snapshot metric {metric.name!r} twice")
        declared[metric.name] = metric.kind
    runtime = telemetry if telemetry is not None else current_telemetry()
    length = runtime.config.attribute_value_length_limit
    name = truncate(name, length)
    category = None if category is None else truncate(category, length)
    attributes: dict[str, str] = {SERVICE_NAME: name}
    if category is not None:
        attributes[SERVICE_CATEGORY] = category
    component = Component(
        name=name,
        category=category,
        attributes=attributes,
        snapshot_function=snapshot,
        snapshot_metrics=declared if snapshot is not None else None,
    )
    runtime.components.add(component)
    if runtime.disabled:
        return InstrumentedService(runtime, component, None, None)
    state = _state_for(runtime)
    try:
        state.snapshots.declare(component, metrics)
    except ValueError:
        runtime.components.remove(name)
        raise
    vitals = state.vitals.bind(attributes)
    return InstrumentedService(runtime, component, vitals, state)
