"""The registry of instrumented components (services and bus providers) and their reported state."""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

__all__ = [
    "HEALTH_STATUSES",
    "Component",
    "ComponentRegistry",
    "HealthReport",
    "HealthStatus",
    "Snapshot",
    "SnapshotFunction",
    "SnapshotKind",
    "SnapshotValue",
]

HealthStatus: TypeAlias = Literal["pass", "warn", "fail"]
HEALTH_STATUSES: tuple[HealthStatus, ...] = ("pass", "warn", "fail")

AttributeValue: TypeAlias = str | bool | int | float
#: One value of a snapshot: a number, ``None`` (unknown: nothing is emitted), or several
#: ``(attributes, number)`` pairs for a metric with more than one series.
SnapshotValue: TypeAlias = float | int | Sequence[tuple[Mapping[str, AttributeValue], float | int]] | None
#: What a snapshot function returns: metric name -> value. A missing name is unknown, never 0.
Snapshot: TypeAlias = Mapping[str, SnapshotValue]
SnapshotFunction: TypeAlias = Callable[[], Snapshot | Awaitable[Snapshot]]
#: The instrument kind of a metric a snapshot function returns: it says which values are usable
#: (a counter is never negative).
SnapshotKind: TypeAlias = Literal["gauge", "counter", "updowncounter"]


@dataclass(frozen=True)
class HealthReport:
    """A component's own statement of its health, with the reason when it is not ``pass``."""

    status: HealthStatus
    reason: str | None
    time_unix_nano: int


@dataclass
class Component:
    """One instrumented component: a runtime service (it has a category) or a bus provider.

    The collector fills ``snapshot``/``snapshot_time_unix_nano`` on each successful collection and
    ``last_error`` when the snapshot function raised or timed out. ``snapshot_metrics`` names the
    metrics the snapshot function may return, with their kind: a value under any other name, or one
    its kind cannot take (a negative counter), is dropped and reported as a problem. None: the names
    are not checked.
    """

    name: str
    category: str | None
    attributes: Mapping[str, AttributeValue]
    snapshot_function: SnapshotFunction | None = None
    snapshot_metrics: Mapping[str, SnapshotKind] | None = None
    started_unix_nano: int = field(default_factory=time.time_ns)
    health: HealthReport | None = None
    snapshot: Snapshot | None = None
    snapshot_time_unix_nano: int | None = None
    last_error: str | None = None
    #: ``time.monotonic()`` at which a synchronous snapshot call still running was started.
    snapshot_running_since: float | None = None

    @property
    def is_service(self) -> bool:
        """True for a runtime service (it belongs to a category), False for a bus-only provider."""
        return self.category is not None

    def report_health(self, status: HealthStatus, reason: str | None = None) -> None:
        """Record the component's health as reported by the component itself."""
        if status not in HEALTH_STATUSES:
            raise ValueError(f"health status {status!r} is not one of {', '.join(HEALTH_STATUSES)}")
        self.health = HealthReport(status, reason, time.time_ns())


class ComponentRegistry:
    """Thread-safe set of components keyed by unique name, plus bus membership."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._components: dict[str, Component] = {}
        self._buses: dict[str, dict[str, str]] = {}

    def reset_after_fork(self) -> None:
        """In a forked child: the lock re-made, and no snapshot call of the parent's threads running."""
        self._lock = threading.Lock()
        for component in self._components.values():
            component.snapshot_running_since = None

    def add(self, component: Component) -> Component:
        """Register ``component``; a second component with the same name is an error."""
        with self._lock:
            if component.name in self._components:
                raise ValueError(f"a component named {component.name!r} is already registered")
            self._components[component.name] = component
        return component

    def remove(self, name: str) -> None:
        """Forget the component ``name`` and its bus memberships (unknown names are ignored)."""
        with self._lock:
            self._components.pop(name, None)
            for providers in self._buses.values():
                for provider, component_name in list(providers.items()):
                    if component_name == name:
                        del providers[provider]

    def get(self, name: str) -> Component | None:
        """The component registered as ``name``, or None."""
        with self._lock:
            return self._components.get(name)

    def registered(self) -> list[Component]:
        """The registered components, in registration order (a copy)."""
        with self._lock:
            return list(self._components.values())

    def __iter__(self) -> Iterator[Component]:
        return iter(self.registered())

    def __len__(self) -> int:
        with self._lock:
            return len(self._components)

    def declare_bus(self, bus: str) -> None:
        """Make ``bus`` known even while it has no provider; a second bus of that name is an error.

        Two buses of one name would give two series with identical attributes (an invalid
        exposition), so the name is refused like a duplicate component name.
        """
        with self._lock:
            if bus in self._buses:
                raise ValueError(f"a bus named {bus!r} is already registered")
            self._buses[bus] = {}

    def remove_bus(self, bus: str) -> None:
        """Forget ``bus`` and its providers, so that its name may be used again (unknown: ignored)."""
        with self._lock:
            self._buses.pop(bus, None)

    def attach(self, bus: str, provider: str, component: str) -> None:
        """Attach the registered component ``component`` to ``bus`` as provider ``provider``."""
        with self._lock:
            if component not in self._components:
                raise ValueError(f"no component named {component!r} is registered")
            providers = self._buses.setdefault(bus, {})
            if provider in providers:
                raise ValueError(f"bus {bus!r} already has a provider named {provider!r}")
            providers[provider] = component

    def detach(self, bus: str, provider: str) -> None:
        """Remove ``provider`` from ``bus`` (unknown names are ignored)."""
        with self._lock:
            self._buses.get(bus, {}).pop(provider, None)

    def buses(self) -> dict[str, dict[str, str]]:
        """Bus name -> (provider name -> component name), a copy."""
        with self._lock:
            return {bus: dict(providers) for bus, providers in self._buses.items()}
