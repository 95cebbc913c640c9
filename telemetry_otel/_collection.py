"""One collection cycle: every component's snapshot in parallel under a timeout, then one SDK read."""

from __future__ import annotations

import asyncio
import inspect
import math
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, cast

from opentelemetry.sdk.metrics.export import MetricsData

from telemetry_otel._components import Component, SnapshotFunction, SnapshotValue

__all__ = ["Collection", "ComponentOutcome", "Outcome", "collect_snapshots"]

Outcome: TypeAlias = Literal["ok", "error", "timeout", "none"]


@dataclass(frozen=True)
class ComponentOutcome:
    """How one component's snapshot went in one collection cycle.

    ``outcome`` is ``none`` for a component without a snapshot function. ``problems`` lists values
    the snapshot returned that could not be used (they are dropped, not replaced by 0).
    """

    name: str
    outcome: Outcome
    error: str | None
    duration_seconds: float
    last_success_unix_nano: int | None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class Collection:
    """The result of one collection cycle: the metric data and how each component fared."""

    metrics: MetricsData
    outcomes: Mapping[str, ComponentOutcome]
    time_unix_nano: int
    duration_seconds: float
    sdk_disabled: bool


async def collect_snapshots(
    components: list[Component],
    *,
    timeout_seconds: float,
    executor: ThreadPoolExecutor,
) -> dict[str, ComponentOutcome]:
    """Run every component's snapshot function concurrently, each bounded by ``timeout_seconds``.

    Synchronous functions run on ``executor`` so they never block the event loop. A successful
    snapshot is stored on its component for the observable callbacks to read; a failed one leaves
    the last good snapshot in place and records the error.
    """
    results = await asyncio.gather(
        *(_collect_one(component, timeout_seconds, executor) for component in components)
    )
    return {outcome.name: outcome for outcome in results}


async def _collect_one(
    component: Component, timeout_seconds: float, executor: ThreadPoolExecutor
) -> ComponentOutcome:
    function = component.snapshot_function
    if function is None:
        return ComponentOutcome(component.name, "none", None, 0.0, None)
    started = time.perf_counter()
    running_since = component.snapshot_running_since
    if running_since is not None:
        # A call from an earlier cycle has not returned (a thread cannot be stopped, and a coroutine
        # may ignore its cancellation): do not stack another on it.
        stuck = time.monotonic() - running_since
        return _failed(component, "timeout", f"previous snapshot still running after {stuck:.1f} s", started)
    call = _start(component, function, executor)
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
    snapshot, problems = _clean(raw)
    now = time.time_ns()
    component.snapshot = snapshot
    component.snapshot_time_unix_nano = now
    component.last_error = None
    return ComponentOutcome(component.name, "ok", None, time.perf_counter() - started, now, tuple(problems))


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
    component: Component, function: SnapshotFunction, executor: ThreadPoolExecutor
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
        future = asyncio.ensure_future(function())
        future.add_done_callback(finished)
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


def _clean(raw: Mapping[object, object]) -> tuple[dict[str, SnapshotValue], list[str]]:
    """Keep the usable values of a snapshot; describe each one dropped."""
    kept: dict[str, SnapshotValue] = {}
    problems: list[str] = []
    for key, value in raw.items():
        if not isinstance(key, str):
            problems.append(f"a key of type {type(key).__name__} is not a metric name")
            continue
        if value is None:
            continue
        if isinstance(value, list | tuple):
            series = [item for item in value if _is_series(item)]
            if len(series) != len(value):
                problems.append(f"{key}: {len(value) - len(series)} series are not (attributes, number)")
            kept[key] = cast(SnapshotValue, series)
        elif isinstance(value, int | float) and _is_number(value):
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
