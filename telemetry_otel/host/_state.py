"""A worker's components, health and snapshot outcomes as JSON, and the host's merge of them.

Metrics travel as OTLP; what OTLP has no place for (the component records a view reads: category,
reported health, bus membership, how each snapshot went) travels as a small JSON document next to
them. The host merges the live workers' documents:

* a component is listed once, as the worker that reported last describes it;
* its health is the worst any live worker reports (``fail`` > ``warn`` > ``pass`` > none), with
  that worker's reason;
* its snapshot outcome is the worst of the workers' (``error`` and ``timeout`` > ``ok`` > ``none``),
  its last success the most recent;
* bus membership is the union.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

from telemetry_otel._collection import Collection, ComponentOutcome, ComponentRecord, Outcome
from telemetry_otel._components import HealthReport, HealthStatus

__all__ = ["HostState", "merge_states", "state_document"]

_HEALTH_RANK = {None: 0, "pass": 1, "warn": 2, "fail": 3}
_OUTCOME_RANK = {"none": 0, "ok": 1, "timeout": 2, "error": 3}

#: (components, outcomes, buses) of a host picture.
HostState = tuple[tuple[ComponentRecord, ...], dict[str, ComponentOutcome], dict[str, dict[str, str]]]


def state_document(collection: Collection) -> dict[str, Any]:
    """The JSON-ready state of one worker's collection."""
    return {
        "components": [_record(record) for record in collection.components],
        "outcomes": [_outcome(outcome) for outcome in collection.outcomes.values()],
        "buses": {bus: dict(providers) for bus, providers in collection.buses.items()},
    }


def merge_states(documents: Iterable[Mapping[str, Any]]) -> HostState:
    """The host's components, outcomes and buses from the live workers' documents (oldest first)."""
    records: dict[str, ComponentRecord] = {}
    health: dict[str, HealthReport | None] = {}
    outcomes: dict[str, ComponentOutcome] = {}
    buses: dict[str, dict[str, str]] = {}
    for document in documents:
        for raw in document.get("components", ()):
            record = _from_record(raw)
            records[record.name] = record
            known = health.get(record.name)
            if record.name not in health or _rank_health(record.health) > _rank_health(known):
                health[record.name] = record.health
        for raw in document.get("outcomes", ()):
            outcome = _from_outcome(raw)
            known_outcome = outcomes.get(outcome.name)
            if known_outcome is None:
                outcomes[outcome.name] = outcome
                continue
            worse = (
                outcome
                if _OUTCOME_RANK[outcome.outcome] > _OUTCOME_RANK[known_outcome.outcome]
                else known_outcome
            )
            successes = [
                t for t in (outcome.last_success_unix_nano, known_outcome.last_success_unix_nano) if t
            ]
            outcomes[outcome.name] = ComponentOutcome(
                worse.name,
                worse.outcome,
                worse.error,
                max(outcome.duration_seconds, known_outcome.duration_seconds),
                max(successes) if successes else None,
                tuple(dict.fromkeys([*known_outcome.problems, *outcome.problems])),
                tuple(dict.fromkeys([*known_outcome.unknown, *outcome.unknown])),
            )
        for bus, providers in dict(document.get("buses", {})).items():
            buses.setdefault(bus, {}).update(providers)
    merged = tuple(
        ComponentRecord(
            name=record.name,
            category=record.category,
            attributes=record.attributes,
            has_snapshot=record.has_snapshot,
            health=health.get(record.name),
            buses=record.buses,
            started_unix_nano=record.started_unix_nano,
        )
        for record in records.values()
    )
    return merged, outcomes, buses


def _rank_health(report: HealthReport | None) -> int:
    return _HEALTH_RANK[None if report is None else report.status]


def _record(record: ComponentRecord) -> dict[str, Any]:
    health = record.health
    return {
        "name": record.name,
        "category": record.category,
        "attributes": dict(record.attributes),
        "has_snapshot": record.has_snapshot,
        "health": None
        if health is None
        else {"status": health.status, "reason": health.reason, "time_unix_nano": health.time_unix_nano},
        "buses": list(record.buses),
        "started_unix_nano": record.started_unix_nano,
    }


def _from_record(raw: Mapping[str, Any]) -> ComponentRecord:
    health = raw.get("health")
    return ComponentRecord(
        name=str(raw["name"]),
        category=raw.get("category"),
        attributes=dict(raw.get("attributes") or {}),
        has_snapshot=bool(raw.get("has_snapshot")),
        health=None
        if not health
        else HealthReport(
            cast(HealthStatus, health["status"]), health.get("reason"), int(health["time_unix_nano"])
        ),
        buses=tuple(raw.get("buses") or ()),
        started_unix_nano=raw.get("started_unix_nano"),
    )


def _outcome(outcome: ComponentOutcome) -> dict[str, Any]:
    return {
        "name": outcome.name,
        "outcome": outcome.outcome,
        "error": outcome.error,
        "duration_seconds": outcome.duration_seconds,
        "last_success_unix_nano": outcome.last_success_unix_nano,
        "problems": list(outcome.problems),
        "unknown": list(outcome.unknown),
    }


def _from_outcome(raw: Mapping[str, Any]) -> ComponentOutcome:
    return ComponentOutcome(
        name=str(raw["name"]),
        outcome=cast(Outcome, raw["outcome"]),
        error=raw.get("error"),
        duration_seconds=float(raw.get("duration_seconds") or 0.0),
        last_success_unix_nano=raw.get("last_success_unix_nano"),
        problems=tuple(raw.get("problems") or ()),
        unknown=tuple(raw.get("unknown") or ()),
    )
