"""The health view as ``application/health+json`` (draft-inadarei-api-health-check)."""

from __future__ import annotations

from typing import Any

from telemetry_otel import __version__
from telemetry_otel.views._state import Model, Status

__all__ = ["health_json"]


def health_json(model: Model, agent: str) -> dict[str, Any]:
    """The ``application/health+json`` document of ``model`` (the health view's typed model).

    ``status`` is the overall pass | warn | fail. ``checks`` holds one entry per service
    (``<name>:health``, ``componentType`` = its category) and per bus (``<bus>:providers``,
    ``componentType`` = ``bus``). health+json knows no ``unknown``: a service whose health is
    unknown is a ``warn`` check whose ``output`` starts with ``unknown:``, never a pass.
    """
    checks: dict[str, list[dict[str, Any]]] = {}
    for state in model.services:
        checks[f"{state.name}:health"] = [
            _check(state.name, state.category or "provider", state.status, state.reason)
        ]
    for bus in model.buses:
        checks[f"{bus.name}:providers"] = [_check(bus.name, "bus", bus.status, bus.reason)]
    document: dict[str, Any] = {
        "status": model.status,
        "version": __version__.split(".")[0],
        "releaseId": __version__,
        "serviceId": agent,
        "description": f"telemetry of agent {agent}",
        "checks": checks,
    }
    if model.reason:
        document["output"] = model.reason
    return document


def _check(component: str, kind: str, status: Status, reason: str | None) -> dict[str, Any]:
    check: dict[str, Any] = {"componentId": component, "componentType": kind}
    if status == "unknown":
        check["status"] = "warn"
        check["output"] = f"unknown: {reason}" if reason else "unknown"
    else:
        check["status"] = status
        if reason:
            check["output"] = reason
    return check
