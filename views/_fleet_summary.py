"""The fleet document: how many agents are healthy, degraded, down or unknown, totals and rates over
all of them, and one entry per agent. Pure: built from a :class:`FleetData` and each agent's model.

An agent's ``state``: ``down`` when :class:`AgentData` says so (its last counts stay in the totals),
else ``unknown`` when the series every agent has are missing (its services are not known), else
``healthy`` for an overall ``pass`` and ``degraded`` for ``warn`` or ``fail``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal, TypeAlias

from telemetry_otel.views._fleet_collection import REQUIRED
from telemetry_otel.views._fleet_source import AgentData, FleetData
from telemetry_otel.views._numbers import add, ratio
from telemetry_otel.views._state import Model

__all__ = ["AGENT_STATES", "AgentState", "agent_meta", "agent_state", "fleet_document", "fleet_meta"]

AgentState: TypeAlias = Literal["healthy", "degraded", "down", "unknown"]
AGENT_STATES: tuple[AgentState, ...] = ("healthy", "degraded", "down", "unknown")


def agent_state(agent: AgentData, model: Model) -> AgentState:
    """The agent's state in the fleet (see the module docstring)."""
    if agent.down:
        return "down"
    if any(name in agent.missing for name in REQUIRED):
        return "unknown"
    return "healthy" if model.status == "pass" else "degraded"


def agent_meta(fleet: FleetData, agent: AgentData, source: str) -> dict[str, Any]:
    """What an agent's views over a TSDB add: where they come from, its liveness, what is missing."""
    settings = fleet.settings
    return {
        "source": source,
        "down": agent.down,
        "down_reason": agent.down_reason,
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


def fleet_document(fleet: FleetData, models: Mapping[str, Model], source: str) -> dict[str, Any]:
    """The fleet summary: agent counts by state, totals and rates over all agents, each agent."""
    by_agent: dict[str, Any] = {}
    counts = dict.fromkeys(AGENT_STATES, 0)
    requests, errors, rates = [], [], []
    for name, agent in fleet.agents.items():
        model = models[name]
        state = agent_state(agent, model)
        counts[state] += 1
        requests.append(model.requests)
        errors.append(model.errors)
        # The agent's own summary rate over the TSDB (its runtime services, as its requests total).
        if model.request_rate is not None:
            rates.append(model.request_rate)
        by_agent[name] = {
            "state": state,
            "status": model.status,
            "reason": model.reason,
            "down_reason": agent.down_reason,
            "last_collection_age_seconds": _rounded(agent.age_seconds),
            "scrape_up": agent.scrape_up,
            "missing": list(agent.missing),
            "services": dict(model.counts),
            "requests": {
                "total": model.requests,
                "errors": model.errors,
                "error_ratio": model.error_ratio,
                "rate_per_second": model.request_rate,
            },
            "latency_p95_seconds": agent.latency_p95_seconds,
            "latency_p95_window_seconds": agent.latency_p95_window_seconds,
        }
    total, failed = add(requests), add(errors)
    settings = fleet.settings
    return {
        "agent": "fleet",
        "view": "summary",
        "agents": {"total": len(fleet.agents), **counts},
        "requests": {
            "total": total,
            "errors": failed,
            "error_ratio": None if total is None or failed is None else ratio(failed, total),
            "rate_per_second": math.fsum(rates) if rates else None,
        },
        "latency_p95_seconds": fleet.latency_p95_seconds,
        "latency_p95_window_seconds": fleet.latency_p95_window_seconds,
        "window_seconds": settings.window_seconds,
        "lookback_seconds": settings.lookback_seconds,
        "down_after_seconds": settings.down_after_seconds,
        "by_agent": by_agent,
        "source": {
            "url": source,
            "queries": fleet.queries,
            "query_seconds": round(fleet.duration_seconds, 6),
        },
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
