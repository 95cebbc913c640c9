"""The health view as ``application/health+json`` (draft-inadarei-api-health-check)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from telemetry_otel import __version__

__all__ = ["health_json"]


def health_json(health: Mapping[str, Any], agent: str) -> dict[str, Any]:
    """Map the ``health`` view's document to an ``application/health+json`` document.

    ``status`` is the overall pass | warn | fail. ``checks`` holds one entry per service
    (``<name>:health``, ``componentType`` = its category) and per bus (``<bus>:providers``,
    ``componentType`` = ``bus``). health+json knows no ``unknown``: a service whose health is
    unknown is a ``warn`` check whose ``output`` starts with ``unknown:``, never a pass.
    """
    checks: dict[str, list[dict[str, Any]]] = {}
    for name, service in health.get("services", {}).items():
        checks[f"{name}:health"] = [_check(name, service.get("category") or "provider", service)]
    for name, bus in health.get("buses", {}).items():
        checks[f"{name}:providers"] = [_check(name, "bus", bus)]
    document: dict[str, Any] = {
        "status": health["status"],
        "version": __version__.split(".")[0],
        "releaseId": __version__,
        "serviceId": agent,
        "description": f"telemetry of agent {agent}",
        "checks": checks,
    }
    if health.get("reason"):
        document["output"] = health["reason"]
    return document


def _check(component: str, kind: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    status = entry.get("status", "unknown")
    reason = entry.get("reason")
    check: dict[str, Any] = {"componentId": component, "componentType": kind}
    if status == "unknown":
        check["status"] = "warn"
        check["output"] = f"unknown: {reason}" if reason else "unknown"
    else:
        check["status"] = status
        if reason:
            check["output"] = reason
    return check
