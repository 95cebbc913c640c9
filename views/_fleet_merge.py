"""The whole fleet as one collection: every agent's components, buses and points, named
``agent/name``, so that the six views render the fleet as they render one agent.

A down agent's components keep their last counts (the fleet totals include them) but not their
last status: each gets the outcome ``error`` naming why the agent is down, which the views show as
``unknown`` with that reason, never as the ``pass`` it last reported.
"""

from __future__ import annotations

import dataclasses

from opentelemetry.sdk.metrics.export import Metric, MetricsData, ResourceMetrics, ScopeMetrics
from opentelemetry.util.types import AnyValue, Attributes

from telemetry_otel import Collection, ComponentOutcome
from telemetry_otel.views._fleet_source import AgentData, FleetData
from telemetry_otel.vocabulary import BUS_NAME, SERVICE_NAME

__all__ = ["fleet_collections", "owner"]


def owner(agent: str, name: str) -> str:
    """The name of an agent's component or bus in the fleet's collection."""
    return f"{agent}/{name}"


def fleet_collections(fleet: FleetData) -> tuple[Collection, Collection | None]:
    """The fleet's collection and, when some agent has one, its predecessor (for rates)."""
    agents = list(fleet.agents.values())
    window_nano = int(fleet.settings.window_seconds * 1e9)
    current = _merged([(agent, agent.collection) for agent in agents], fleet.time_unix)
    previous_parts = [(agent, agent.previous) for agent in agents if agent.previous is not None]
    previous = (
        _merged([(agent, part) for agent, part in previous_parts if part is not None], fleet.time_unix)
        if previous_parts
        else None
    )
    if previous is not None:
        previous = dataclasses.replace(previous, time_unix_nano=current.time_unix_nano - window_nano)
    return current, previous


def _merged(parts: list[tuple[AgentData, Collection]], at_unix: float) -> Collection:
    records, outcomes, buses, resource_metrics = [], {}, {}, []
    times = []
    for agent, collection in parts:
        name = agent.agent
        times.append(collection.time_unix_nano)
        for record in collection.components:
            renamed = owner(name, record.name)
            attributes = {**record.attributes, SERVICE_NAME: renamed}
            records.append(
                dataclasses.replace(
                    record,
                    name=renamed,
                    attributes=attributes,
                    buses=tuple(owner(name, bus) for bus in record.buses),
                )
            )
        for component, outcome in collection.outcomes.items():
            outcomes[owner(name, component)] = _outcome(agent, owner(name, component), outcome)
        for bus, providers in collection.buses.items():
            buses[owner(name, bus)] = {provider: owner(name, part) for provider, part in providers.items()}
        for original in collection.metrics.resource_metrics:
            scopes = [
                ScopeMetrics(
                    scope.scope, [_renamed(metric, name) for metric in scope.metrics], scope.schema_url
                )
                for scope in original.scope_metrics
            ]
            resource_metrics.append(ResourceMetrics(original.resource, scopes, original.schema_url))
    return Collection(
        metrics=MetricsData(resource_metrics),
        outcomes=outcomes,
        time_unix_nano=max(times) if times else int(at_unix * 1e9),
        duration_seconds=0.0,
        sdk_disabled=False,
        components=tuple(records),
        buses=buses,
    )


def _outcome(agent: AgentData, name: str, outcome: ComponentOutcome) -> ComponentOutcome:
    if agent.down:
        return ComponentOutcome(
            name, "error", f"agent down: {agent.down_reason}", 0.0, outcome.last_success_unix_nano
        )
    return dataclasses.replace(outcome, name=name)


def _renamed(metric: Metric, agent: str) -> Metric:
    points = [
        dataclasses.replace(point, attributes=_attributes(point.attributes, agent))
        for point in metric.data.data_points
    ]
    data = dataclasses.replace(metric.data, data_points=points)  # type: ignore[arg-type]
    return Metric(name=metric.name, description=metric.description, unit=metric.unit, data=data)


def _attributes(attributes: Attributes, agent: str) -> dict[str, AnyValue]:
    own = dict(attributes or {})
    for key in (SERVICE_NAME, BUS_NAME):
        value = own.get(key)
        if isinstance(value, str):
            own[key] = owner(agent, value)
    return own
