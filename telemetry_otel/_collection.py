"""One collection cycle: every component's snapshot in parallel under a timeout, then one SDK read."""

from __future__ import annotations

import asyncio
import functools
import inspect
import math
import time
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, TypeAlias, cast

from opentelemetry.sdk.metrics.export import MetricsData

from telemetry_otel._components import (
    AttributeValue,
    Component,
    HealthReport,
    SnapshotFunction,
    SnapshotKind,
    SnapshotValue,
)
from telemetry_otel._index import OwnerIndex

__all__ = [
    "STILL_RUNNING",
    "Collection",
    "ComponentKind",
    "ComponentOutcome",
    "ComponentRecord",
    "CoroutineRunner",
    "HostRecord",
    "Outcome",
    "WorkerRecord",
    "collect_snapshots",
    "freeze_components",
]

#: ``service``: a runtime service (it has a category); ``provider``: a bus-only provider.
ComponentKind: TypeAlias = Literal["service", "provider"]
#: Runs a snapshot coroutine somewhere else (another thread's event loop); None: the running loop.
CoroutineRunner: TypeAlias = Callable[[Coroutine[Any, Any, Any]], "asyncio.Future[Any]"]

Outcome: TypeAlias = Literal["ok", "error", "timeout", "none"]
#: The error of a snapshot whose previous call has not returned: the same text every cycle (how long
#: it has been running is not in it; ``telemetry.collection.snapshot.age`` keeps growing meanwhile).
STILL_RUNNING = "previous snapshot still running (not called again until it returns)"


@dataclass(frozen=True)
class ComponentOutcome:
    """How one component's snapshot went in one collection cycle.

    ``outcome`` is ``none`` for a component without a snapshot function. ``problems`` lists values
    the snapshot returned that could not be used, one ``"<metric>: <why>"`` each: a name the
    component did not declare, a value that is not a finite number, a negative counter. They are
    dropped, never replaced by 0. ``unknown`` names the declared metrics that have no value in this
    cycle (not returned, ``None``, or dropped): they are absent from the output, never 0.
    """

    name: str
    outcome: Outcome
    error: str | None
    duration_seconds: float
    last_success_unix_nano: int | None
    problems: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()


@dataclass(frozen=True)
class ComponentRecord:
    """One component as it stood in one collection cycle: what it is, what it reported, where it sits.

    Plain data, frozen when the cycle read the metrics, so that every consumer of the cycle sees the
    same health and bus membership as the metrics, however the live registry changes afterwards.
    """

    name: str
    category: str | None
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    #: The component has a snapshot function (its values come from the cycle's snapshots).
    has_snapshot: bool = False
    #: The health the component had reported when the cycle read the metrics (None: never reported).
    health: HealthReport | None = None
    #: The buses the component is a provider of, by bus name (sorted).
    buses: tuple[str, ...] = ()
    started_unix_nano: int | None = None

    @property
    def kind(self) -> ComponentKind:
        """``service`` for a runtime service (it has a category), ``provider`` for a bus-only one."""
        return "service" if self.category is not None else "provider"

    @property
    def is_service(self) -> bool:
        """True for a runtime service (it belongs to a category), False for a bus-only provider."""
        return self.category is not None


@dataclass(frozen=True)
class WorkerRecord:
    """One live worker process of a host picture, as the host aggregator last heard from it."""

    instance_id: str
    pid: int | None
    #: Reports the host has received from it.
    reports: int
    last_report_unix_nano: int
    #: Its counters as of its last report: metric name -> the sum over the metric's series.
    counters: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class HostRecord:
    """Where a host picture came from: the live workers, how many have retired, which fold it is."""

    workers: tuple[WorkerRecord, ...]
    #: Workers gone (exited or killed) whose last counts are folded into the retired totals.
    retired_workers: int
    #: The aggregator's picture number: it grows with every report and every retirement.
    generation: int
    aggregator_pid: int | None = None


def freeze_components(
    components: list[Component], buses: Mapping[str, Mapping[str, str]]
) -> tuple[ComponentRecord, ...]:
    """The records of ``components`` as they stand now, with their bus membership from ``buses``."""
    memberships: dict[str, set[str]] = {}
    for bus, providers in buses.items():
        for component in providers.values():
            memberships.setdefault(component, set()).add(bus)
    return tuple(
        ComponentRecord(
            name=component.name,
            category=component.category,
            attributes=MappingProxyType(dict(component.attributes)),
            has_snapshot=component.snapshot_function is not None,
            health=component.health,
            buses=tuple(sorted(memberships.get(component.name, ()))),
            started_unix_nano=component.started_unix_nano,
        )
        for component in components
    )


def _frozen_buses(buses: Mapping[str, Mapping[str, str]]) -> Mapping[str, Mapping[str, str]]:
    return MappingProxyType({bus: MappingProxyType(dict(providers)) for bus, providers in buses.items()})


@dataclass(frozen=True, eq=False)
class Collection:
    """The complete, immutable state of one collection cycle.

    ``metrics`` is the metric data of the cycle's one read, ``outcomes`` how each component's
    snapshot went, ``components`` every component as it stood when the metrics were read (kind,
    category, reported health, bus membership) and ``buses`` the bus membership (bus -> provider ->
    component). It is plain data: a runtime makes one per cycle, and anything else (an aggregator of
    worker processes, a query of a time-series database) can build one, which every view and format
    then reads unchanged. ``start_unix_nano`` is when the cycle began and ``time_unix_nano`` when it
    read the metrics.
    """

    metrics: MetricsData
    outcomes: Mapping[str, ComponentOutcome]
    time_unix_nano: int
    duration_seconds: float
    sdk_disabled: bool
    components: tuple[ComponentRecord, ...] = ()
    buses: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    start_unix_nano: int | None = None
    #: For a host picture of several worker processes: its workers (None: one process's own cycle).
    host: HostRecord | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "outcomes", MappingProxyType(dict(self.outcomes)))
        object.__setattr__(self, "components", tuple(self.components))
        object.__setattr__(self, "buses", _frozen_buses(self.buses))

    @functools.cached_property
    def index(self) -> OwnerIndex:
        """The collection's data points by owner (service, bus, bus provider), built on first use."""
        return OwnerIndex.of(self.metrics)

    def component(self, name: str) -> ComponentRecord | None:
        """The record of the component ``name`` in this cycle, or None."""
        for record in self.components:
            if record.name == name:
                return record
        return None


async def collect_snapshots(
    components: list[Component],
    *,
    timeout_seconds: float,
    executor: ThreadPoolExecutor,
    run_coroutine: CoroutineRunner | None = None,
) -> dict[str, ComponentOutcome]:
    """Run every component's snapshot function concurrently, each bounded by ``timeout_seconds``.

    Synchronous functions run on ``executor`` so they never block the event loop. A successful
    snapshot is stored on its component for the observable callbacks to read; a failed one leaves
    the last good snapshot in place and records the error. Coroutine functions run on the running
    event loop, or through ``run_coroutine`` (the loop of the server that hosts the runtime).
    """
    # A component without a snapshot function has nothing to run: its outcome is made here, not in
    # a task of its own (a task per component was most of a cycle of a thousand services).
    outcomes = {
        component.name: ComponentOutcome(component.name, "none", None, 0.0, None)
        for component in components
        if component.snapshot_function is None
    }
    running = [component for component in components if component.snapshot_function is not None]
    if running:
        results = await asyncio.gather(
            *(_collect_one(component, timeout_seconds, executor, run_coroutine) for component in running)
        )
        outcomes.update((outcome.name, outcome) for outcome in results)
    return {component.name: outcomes[component.name] for component in components}


async def _collect_one(
    component: Component,
    timeout_seconds: float,
    executor: ThreadPoolExecutor,
    run_coroutine: CoroutineRunner | None,
) -> ComponentOutcome:
    function = component.snapshot_function
    if function is None:
        return ComponentOutcome(component.name, "none", None, 0.0, None)
    started = time.perf_counter()
    running_since = component.snapshot_running_since
    if running_since is not None:
        # A call from an earlier cycle has not returned (a thread cannot be stopped, and a coroutine
        # may ignore its cancellation): do not stack another on it. The text is the same every cycle
        # (a reason is a label of /metrics: a text that changes is a new series each collection).
        return _failed(component, "timeout", STILL_RUNNING, started)
    try:
        call = _start(component, function, executor, run_coroutine)
    except Exception as exc:  # no thread or loop could take the call (at exit, a closed host loop)
        component.snapshot_running_since = None
        return _failed(component, "error", f"snapshot could not start: {type(exc).__name__}: {exc}", started)
    done, _ = await asyncio.wait({call}, timeout=timeout_seconds)
    if not done:
        call.cancel()  # never awaited: a snapshot that ignores cancellation cannot hold the cycle
        error = f"snapshot timed out after {timeout_seconds * 1000:.0f} ms"
        return _failed(component, "timeout", error, started)
    try:
        raw = call.result()
        if inspect.isawaitable(raw):  # a plain function that returned a coroutine
            remaining = max(0.0, timeout_seconds - (time.perf_counter() - started))
            raw = await asyncio.wait_for(raw, remaining)
    except TimeoutError:
        error = f"snapshot timed out after {timeout_seconds * 1000:.0f} ms"
        return _failed(component, "timeout", error, started)
    except Exception as exc:  # a service's snapshot may raise anything; report it, never propagate
        return _failed(component, "error", f"{type(exc).__name__}: {exc}", started)
    if not isinstance(raw, Mapping):
        error = f"snapshot returned {type(raw).__name__}, expected a mapping of metric name to value"
        return _failed(component, "error", error, started)
    declared = component.snapshot_metrics
    snapshot, problems = _clean(raw, declared)
    unknown = () if declared is None else tuple(name for name in declared if name not in snapshot)
    now = time.time_ns()
    component.snapshot = snapshot
    component.snapshot_time_unix_nano = now
    component.last_error = None
    duration = time.perf_counter() - started
    return ComponentOutcome(component.name, "ok", None, duration, now, tuple(problems), unknown)


def _failed(component: Component, outcome: Outcome, error: str, started: float) -> ComponentOutcome:
    component.last_error = error
    return ComponentOutcome(
        component.name,
        outcome,
        error,
        time.perf_counter() - started,
        component.snapshot_time_unix_nano,
    )


def _start(
    component: Component,
    function: SnapshotFunction,
    executor: ThreadPoolExecutor,
    run_coroutine: CoroutineRunner | None,
) -> asyncio.Future[Any]:
    """Start the snapshot (a task for a coroutine function, a pool thread otherwise), marked running.

    The mark is cleared when the call itself ends: for a thread, when the function returns (a
    cancelled wrapper does not stop it); for a task, when the coroutine finishes.
    """
    component.snapshot_running_since = time.monotonic()

    def finished(_: object) -> None:
        component.snapshot_running_since = None

    future: asyncio.Future[Any]
    if inspect.iscoroutinefunction(function):
        if run_coroutine is None:
            future = asyncio.ensure_future(function())
            future.add_done_callback(finished)
        else:
            # On another loop, cancelling the local wrapper ends at once while the coroutine may run
            # on: the coroutine itself clears the mark when it really ends.
            async def tracked() -> Any:
                try:
                    return await function()
                finally:
                    component.snapshot_running_since = None

            coroutine = tracked()
            try:
                future = run_coroutine(coroutine)
            except BaseException:
                coroutine.close()  # never started: no "never awaited" warning
                raise
    else:
        thread_call = executor.submit(function)
        thread_call.add_done_callback(finished)
        future = asyncio.wrap_future(thread_call)
    future.add_done_callback(_retrieve)
    return future


def _retrieve(done: asyncio.Future[Any]) -> None:
    """Retrieve a late outcome: a failure after the timeout is reported already, not to be logged."""
    if not done.cancelled():
        done.exception()


def _clean(
    raw: Mapping[object, object], declared: Mapping[str, SnapshotKind] | None
) -> tuple[dict[str, SnapshotValue], list[str]]:
    """Keep the usable values of a snapshot; describe each one dropped.

    With ``declared`` (metric name -> kind), a name it does not hold is dropped, and so is a negative
    value of a counter (a counter never goes below zero: the true value is unknown).
    """
    kept: dict[str, SnapshotValue] = {}
    problems: list[str] = []
    for key, value in raw.items():
        if not isinstance(key, str):
            problems.append(f"a key of type {type(key).__name__} is not a metric name")
            continue
        if declared is not None and key not in declared:
            problems.append(f"{key}: returned but not declared in the service's metrics")
            continue
        if value is None:
            continue
        monotonic = declared is not None and declared[key] == "counter"
        if isinstance(value, list | tuple):
            series = [item for item in value if _is_series(item)]
            if len(series) != len(value):
                problems.append(f"{key}: {len(value) - len(series)} series are not (attributes, number)")
            if monotonic:
                negative = sum(1 for item in series if item[1] < 0)
                if negative:
                    problems.append(f"{key}: {negative} series have a negative value, not a counter value")
                    series = [item for item in series if item[1] >= 0]
            if series:  # no series left: unknown, like a metric not returned
                kept[key] = cast(SnapshotValue, series)
        elif isinstance(value, int | float) and _is_number(value):
            if monotonic and value < 0:
                problems.append(f"{key}: a negative value is not a counter value")
                continue
            kept[key] = value
        else:
            problems.append(f"{key}: {_describe(value)} is not a finite number")
    return kept, problems


def _describe(value: object) -> str:
    """A value named without echoing it (a snapshot may return a secret by mistake): NaN and the
    infinities as themselves, anything else by its type."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return f"a {type(value).__name__}"


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_series(item: object) -> bool:
    return isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], Mapping) and _is_number(item[1])
