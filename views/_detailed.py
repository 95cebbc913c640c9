"""The detailed view: every metric point of one collection, grouped by service and bus."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from opentelemetry.sdk.metrics.export import (
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    Sum,
)

from telemetry_otel import Collection, ComponentRecord
from telemetry_otel.views._buses import render_buses

__all__ = ["iso_time", "render_detailed"]

_IDENTITY_KEYS = ("service.name", "service.category")


def render_detailed(
    collection: Collection,
    components: Sequence[ComponentRecord],
    buses: Mapping[str, Mapping[str, str]],
) -> dict[str, Any]:
    """Build the detailed JSON document from one collection (pure: no I/O, no clock)."""
    per_service: dict[str, list[dict[str, Any]]] = {component.name: [] for component in components}
    unattributed: list[dict[str, Any]] = []
    per_bus: dict[str, list[dict[str, Any]]] = {}
    resource: dict[str, Any] = {}
    for resource_metrics in collection.metrics.resource_metrics:
        resource.update(_jsonable_attributes(resource_metrics.resource.attributes))
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                _split(metric, scope_metrics.scope.name, per_service, per_bus, unattributed)

    services: dict[str, Any] = {}
    providers: dict[str, Any] = {}
    for component in components:
        outcome = collection.outcomes.get(component.name)
        entry = {
            "category": component.category,
            "health": None
            if component.health is None
            else {"status": component.health.status, "reason": component.health.reason},
            "snapshot": None
            if outcome is None
            else {
                "outcome": outcome.outcome,
                "error": outcome.error,
                "duration_seconds": outcome.duration_seconds,
                "last_success": iso_time(outcome.last_success_unix_nano),
                "problems": list(outcome.problems),
                "unknown": list(outcome.unknown),
            },
            "metrics": per_service.get(component.name, []),
        }
        (services if component.is_service else providers)[component.name] = entry

    categories: dict[str, list[str]] = {}
    for component in components:
        if component.category is not None:
            categories.setdefault(component.category, []).append(component.name)

    return {
        "timestamp": iso_time(collection.time_unix_nano),
        "view": "detailed",
        "sdk_disabled": collection.sdk_disabled,
        "collection_duration_seconds": collection.duration_seconds,
        "resource": resource,
        "totals": {
            "services": len(services),
            "providers": len(providers),
            "categories": len(categories),
            "buses": len(buses),
        },
        "categories": categories,
        "services": services,
        "buses": {
            bus: {**section, "metrics": per_bus.get(bus, [])}
            for bus, section in render_buses(collection.metrics, buses).items()
        },
        "providers": providers,
        "other_metrics": unattributed,
    }


def _split(
    metric: Metric,
    scope: str,
    per_service: dict[str, list[dict[str, Any]]],
    per_bus: dict[str, list[dict[str, Any]]],
    unattributed: list[dict[str, Any]],
) -> None:
    """Add ``metric``'s points to the service (``service.name``) or bus (``bus.name``) they belong to."""
    grouped: dict[tuple[str, str] | None, list[dict[str, Any]]] = {}
    for point in metric.data.data_points:
        attributes = dict(point.attributes or {})
        service = attributes.get("service.name")
        bus = attributes.get("bus.name")
        key: tuple[str, str] | None = None
        if isinstance(service, str) and service in per_service:
            key = ("service", service)
            for identity in _IDENTITY_KEYS:
                attributes.pop(identity, None)
        elif isinstance(bus, str):
            key = ("bus", bus)
            attributes.pop("bus.name")
        grouped.setdefault(key, []).append(_point(point, attributes))
    for owner, points in grouped.items():
        entry = {
            "name": metric.name,
            "unit": metric.unit or "",
            "description": metric.description or "",
            "type": _kind(metric),
            "scope": scope,
            "points": points,
        }
        if owner is None:
            unattributed.append(entry)
        elif owner[0] == "service":
            per_service[owner[1]].append(entry)
        else:
            per_bus.setdefault(owner[1], []).append(entry)


def _kind(metric: Metric) -> str:
    data = metric.data
    if isinstance(data, Sum):
        return "counter" if data.is_monotonic else "updowncounter"
    if isinstance(data, Gauge):
        return "gauge"
    if isinstance(data, Histogram):
        return "histogram"
    return type(data).__name__.lower()


def _point(point: object, attributes: Mapping[str, Any]) -> dict[str, Any]:
    rendered: dict[str, Any] = {"attributes": _jsonable_attributes(attributes)}
    if isinstance(point, NumberDataPoint):
        rendered["value"] = _number(point.value)
    elif isinstance(point, HistogramDataPoint):
        rendered.update(
            count=point.count,
            sum=_number(point.sum),
            min=_number(point.min),
            max=_number(point.max),
            buckets=[
                {"le": _number(bound), "count": count}
                for bound, count in zip([*point.explicit_bounds, math.inf], point.bucket_counts, strict=True)
            ],
        )
    return rendered


def _number(value: float | int) -> float | int | str:
    """JSON has no NaN or infinities: they are written as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
    return value


def _jsonable_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    """Attribute values as JSON can carry them: sequences as lists, NaN and infinities as strings."""
    return {key: _jsonable(value) for key, value in (attributes or {}).items()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(item) for item in value]
    if isinstance(value, float):
        return _number(value)
    return value


def iso_time(time_unix_nano: int | None) -> str | None:
    """A Unix time in nanoseconds as ISO 8601 UTC text (``...Z``); None stays None."""
    if time_unix_nano is None:
        return None
    return datetime.fromtimestamp(time_unix_nano / 1e9, UTC).isoformat().replace("+00:00", "Z")
