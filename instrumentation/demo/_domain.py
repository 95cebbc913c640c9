"""The domain numbers a few services keep besides their vitals (graph size, audit events...)."""

from __future__ import annotations

import random

from telemetry_otel import SnapshotValue
from telemetry_otel.instrumentation import SnapshotMetric
from telemetry_otel.instrumentation.demo._metrics import (
    AUDIT_EVENTS,
    GRAPH_NODES,
    INCIDENTS_ACTIVE,
    SECRETS_ACCESSED,
    TASKS_ACTIVE,
)
from telemetry_otel.instrumentation.demo._sampling import poisson

__all__ = ["Domain", "domain_for"]


class Domain:
    """Domain state of one component, updated per request and per tick; the base keeps none."""

    metrics: tuple[SnapshotMetric, ...] = ()

    def on_request(self, rng: random.Random, error: bool) -> None:
        """Account for one request the component handled."""

    def on_tick(self, rng: random.Random, dt: float, failing: int) -> None:
        """Advance by ``dt`` seconds; ``failing`` components reported ``fail`` at the last tick."""

    def snapshot(self) -> dict[str, SnapshotValue]:
        """The current domain values by metric name."""
        return {}


class _MemoryGraph(Domain):
    metrics = (GRAPH_NODES,)

    def __init__(self) -> None:
        self.nodes = 12_000

    def on_request(self, rng: random.Random, error: bool) -> None:
        if not error and rng.random() < 0.25:
            self.nodes += rng.randint(1, 3)

    def on_tick(self, rng: random.Random, dt: float, failing: int) -> None:
        if rng.random() < 0.05 * dt:  # occasional consolidation prunes old nodes
            self.nodes = max(0, self.nodes - rng.randint(20, 200))

    def snapshot(self) -> dict[str, SnapshotValue]:
        return {GRAPH_NODES.name: self.nodes}


class _AuditLog(Domain):
    metrics = (AUDIT_EVENTS,)

    def __init__(self) -> None:
        self.events = 0

    def on_request(self, rng: random.Random, error: bool) -> None:
        self.events += rng.randint(1, 3)

    def snapshot(self) -> dict[str, SnapshotValue]:
        return {AUDIT_EVENTS.name: self.events}


class _TaskTable(Domain):
    metrics = (TASKS_ACTIVE,)

    def __init__(self) -> None:
        self.active = 3

    def on_tick(self, rng: random.Random, dt: float, failing: int) -> None:
        finished = sum(1 for _ in range(self.active) if rng.random() < 0.3 * dt)
        self.active = min(64, self.active - finished + poisson(rng, 1.2 * dt))

    def snapshot(self) -> dict[str, SnapshotValue]:
        return {TASKS_ACTIVE.name: self.active}


class _SecretAccesses(Domain):
    metrics = (SECRETS_ACCESSED,)

    def __init__(self) -> None:
        self.accessed = 0

    def on_request(self, rng: random.Random, error: bool) -> None:
        if not error:
            self.accessed += 1

    def snapshot(self) -> dict[str, SnapshotValue]:
        return {SECRETS_ACCESSED.name: self.accessed}


class _Incidents(Domain):
    metrics = (INCIDENTS_ACTIVE,)

    def __init__(self) -> None:
        self.active = 0

    def on_tick(self, rng: random.Random, dt: float, failing: int) -> None:
        self.active = failing

    def snapshot(self) -> dict[str, SnapshotValue]:
        return {INCIDENTS_ACTIVE.name: self.active}


def domain_for(name: str) -> Domain:
    """Fresh domain state for the component ``name`` (the empty base for most components)."""
    if name == "memory":
        return _MemoryGraph()
    if name == "audit":
        return _AuditLog()
    if name == "task_scheduler":
        return _TaskTable()
    if name in ("secrets", "secrets_tool"):
        return _SecretAccesses()
    if name == "incident_management":
        return _Incidents()
    return Domain()
