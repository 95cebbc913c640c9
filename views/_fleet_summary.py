"""The fleet summary: how many agents are healthy, degraded, down or unknown, totals and rates over
all of them, and one entry per agent. Pure: a typed :class:`FleetModel` built from a
:class:`FleetData` and each agent's model, read by the JSON document and by the fleet page.

An agent's ``state``: ``down`` when :class:`AgentData` says so (its last counts stay in the totals),
else ``unknown`` when the series every agent has are missing (its services are not known) or when
the TSDB's index lists it without any sample (``unknown_reason`` says so), else
``healthy`` for an overall ``pass`` and ``degraded`` for ``warn`` or ``fail``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from telemetry_otel.views._fleet_collection import REQUIRED
from telemetry_otel.views._fleet_source import AgentData, FleetData, FleetSettings
from telemetry_otel.views._numbers import add, ratio
from telemetry_otel.views._state import Model, OverallStatus

__all__ = [
    "AGENT_STATES",
    "AgentRow",
    "AgentState",
    "FleetModel",
    "agent_meta",
    "agent_state",
    "fleet_document",
    "fleet_json",
    "fleet_meta",
    "fleet_model",
]

AgentState: TypeAlias = Literal["healthy", "degraded", "down", "unknown"]
AGENT_STATES: tuple[AgentState, ...] = ("healthy", "degraded", "down", "unknown")


def agent_state(agent: AgentData, model: Model) -> AgentState:
    """The agent's state in the fleet (see the module docstring)."""
    if agent.down:
        return "down"
    if agent.unknown_reason is not None or any(name in agent.missing for name in REQUIRED):
        return "unknown"
    return "healthy" if model.status == "pass" else "degraded"


def agent_meta(fleet: FleetData, agent: AgentData, source: str) -> dict[str, Any]:
    """What an agent's views over a TSDB add: where they come from, its liveness, what is missing."""
    settings = fleet.settings
    return {
        "source": source,
        "down": agent.down,
        "down_reason": agent.down_reason,
        "unknown_reason": agent.unknown_reason,
        "last_collection_age_seconds": _rounded(agent.age_seconds),
        "scrape_up": agent.scrape_up,
        "missing": list(agent.missing),
        "window_seconds": settings.window_seconds,
        "lookback_seconds": settings.lookback_seconds,
        "rates": f"TSDB rate() over the last {settings.window_seconds:g} s",
        "latency_p95_window_seconds": agent.latency_p95_window_seconds,
        "queries": fleet.queries,
    }


def fleet_meta(fleet: FleetData, source: str) -> dict[str, Any]:
    """What a fleet view over a TSDB adds: where it comes from, its window and cost."""
    settings = fleet.settings
    return {
        "source": source,
        "agents": len(fleet.agents),
        "down": sorted(name for name, agent in fleet.agents.items() if agent.down),
        "window_seconds": settings.window_seconds,
        "lookback_seconds": settings.lookback_seconds,
        "rates": f"TSDB rate() over the last {settings.window_seconds:g} s",
        "queries": fleet.queries,
        "components": "named agent/name",
    }


@dataclass(frozen=True)
class AgentRow:
    """One agent in the fleet summary, as its model and the TSDB read say."""

    name: str
    state: AgentState
    status: OverallStatus
    reason: str | None
    down_reason: str | None
    unknown_reason: str | None
    last_collection_age_seconds: float | None
    scrape_up: bool | None
    missing: tuple[str, ...]
    services: Mapping[str, int]
    requests: float | None
    errors: float | None
    error_ratio: float | None
    #: The agent's own summary rate over the TSDB (its runtime services, as :attr:`requests`).
    rate_per_second: float | None
    latency_p95_seconds: float | None
    latency_p95_window_seconds: float | None


@dataclass(frozen=True)
class FleetModel:
    """The typed fleet summary: the JSON document and the fleet page both read it."""

    time_unix: float
    agents: tuple[AgentRow, ...]
    counts: Mapping[AgentState, int]
    requests: float | None
    errors: float | None
    error_ratio: float | None
    rate_per_second: float | None
    latency_p95_seconds: float | None
    latency_p95_window_seconds: float | None
    settings: FleetSettings
    source: str
    queries: int
    query_seconds: float


def fleet_model(fleet: FleetData, models: Mapping[str, Model], source: str) -> FleetModel:
    """The fleet summary of one read: agent counts by state, totals and rates, each agent."""
    rows: list[AgentRow] = []
    counts = dict.fromkeys(AGENT_STATES, 0)
    for name, agent in fleet.agents.items():
        model = models[name]
        state = agent_state(agent, model)
        counts[state] += 1
        rows.append(
            AgentRow(
                name=name,
                state=state,
                status=model.status,
                reason=model.reason,
                down_reason=agent.down_reason,
                unknown_reason=agent.unknown_reason,
                last_collection_age_seconds=_rounded(agent.age_seconds),
                scrape_up=agent.scrape_up,
                missing=agent.missing,
                services=dict(model.counts),
                requests=model.requests,
                errors=model.errors,
                error_ratio=model.error_ratio,
                rate_per_second=model.request_rate,
                latency_p95_seconds=agent.latency_p95_seconds,
                latency_p95_window_seconds=agent.latency_p95_window_seconds,
            )
        )
    total, failed = add(row.requests for row in rows), add(row.errors for row in rows)
    rates = [row.rate_per_second for row in rows if row.rate_per_second is not None]
    return FleetModel(
        time_unix=fleet.time_unix,
        agents=tuple(rows),
        counts=counts,
        requests=total,
        errors=failed,
        error_ratio=None if total is None or failed is None else ratio(failed, total),
        rate_per_second=math.fsum(rates) if rates else None,
        latency_p95_seconds=fleet.latency_p95_seconds,
        latency_p95_window_seconds=fleet.latency_p95_window_seconds,
        settings=fleet.settings,
        source=source,
        queries=fleet.queries,
        query_seconds=fleet.duration_seconds,
    )


def fleet_json(model: FleetModel) -> dict[str, Any]:
    """The fleet summary document of ``model`` (built once per response)."""
    settings = model.settings
    return {
        "agent": "fleet",
        "view": "summary",
        "agents": {"total": len(model.agents), **model.counts},
        "requests": {
            "total": model.requests,
            "errors": model.errors,
            "error_ratio": model.error_ratio,
            "rate_per_second": model.rate_per_second,
        },
        "latency_p95_seconds": model.latency_p95_seconds,
        "latency_p95_window_seconds": model.latency_p95_window_seconds,
        "window_seconds": settings.window_seconds,
        "lookback_seconds": settings.lookback_seconds,
        "down_after_seconds": settings.down_after_seconds,
        "by_agent": {
            row.name: {
                "state": row.state,
                "status": row.status,
                "reason": row.reason,
                "down_reason": row.down_reason,
                "unknown_reason": row.unknown_reason,
                "last_collection_age_seconds": row.last_collection_age_seconds,
                "scrape_up": row.scrape_up,
                "missing": list(row.missing),
                "services": dict(row.services),
                "requests": {
                    "total": row.requests,
                    "errors": row.errors,
                    "error_ratio": row.error_ratio,
                    "rate_per_second": row.rate_per_second,
                },
                "latency_p95_seconds": row.latency_p95_seconds,
                "latency_p95_window_seconds": row.latency_p95_window_seconds,
            }
            for row in model.agents
        },
        "source": {
            "url": model.source,
            "queries": model.queries,
            "query_seconds": round(model.query_seconds, 6),
        },
    }


def fleet_document(fleet: FleetData, models: Mapping[str, Model], source: str) -> dict[str, Any]:
    """The fleet summary as JSON: :func:`fleet_json` of :func:`fleet_model`."""
    return fleet_json(fleet_model(fleet, models, source))


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
