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

from telemetry_otel import Collection, ComponentRecord, OwnedMetric
from telemetry_otel.views._buses import render_buses
from telemetry_otel.views._parts import host_section
from telemetry_otel.vocabulary import BUS_NAME, SERVICE_CATEGORY, SERVICE_NAME

__all__ = ["iso_time", "render_detailed"]

_IDENTITY_KEYS = (SERVICE_NAME, SERVICE_CATEGORY)


def render_detailed(
    collection: Collection,
    components: Sequence[ComponentRecord],
    buses: Mapping[str, Mapping[str, str]],
) -> dict[str, Any]:
    """Build the detailed JSON document from one collection (pure: no I/O, no clock).

    Points are grouped through the collection's owner index: each component's own metrics, each
    bus's (aggregate and per provider), and every other point (of no component) in ``other_metrics``,
    each list in the order of the read.
    """
    index = collection.index
    known = {component.name for component in components}
    per_service = {
        name: [_entry(owned, _without(owned, _IDENTITY_KEYS)) for owned in index.service(name)]
        for name in known
    }
    per_bus: dict[str, list[dict[str, Any]]] = {}
    bus_groups: dict[str, list[OwnedMetric]] = {bus: list(owned) for bus, owned in index.buses.items()}
    for (bus, _), owned in index.providers.items():
        bus_groups.setdefault(bus, []).extend(owned)
    for bus, groups in bus_groups.items():
        per_bus[bus] = [_entry(group[0], points) for group, points in _by_position(groups, (BUS_NAME,))]
    strangers = [group for name, groups in index.services.items() if name not in known for group in groups]
    unattributed = [
        _entry(group[0], points)
        for group, points in _by_position([*index.unowned, *strangers], ())
        if points  # a metric without points has nothing to show
    ]
    resource: dict[str, Any] = {}
    for resource_metrics in collection.metrics.resource_metrics:
        resource.update(_jsonable_attributes(resource_metrics.resource.attributes))

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
        "host": host_section(collection.host),
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
            for bus, section in render_buses(index, buses).items()
        },
        "providers": providers,
        "other_metrics": unattributed,
    }


def _without(owned: OwnedMetric, keys: Sequence[str]) -> list[dict[str, Any]]:
    """The owner's points as JSON, without the attributes that name the owner."""
    rendered = []
    for point in owned.points:
        attributes = dict(point.attributes or {})
        for key in keys:
            attributes.pop(key, None)
        rendered.append(_point(point, attributes))
    return rendered


def _by_position(
    groups: Sequence[OwnedMetric], keys: Sequence[str]
) -> list[tuple[list[OwnedMetric], list[dict[str, Any]]]]:
    """Groups of the same metric (a bus's providers, owners of no component) merged into one entry
    each, in read order, their points in the metric's own order."""
    by_position: dict[int, list[OwnedMetric]] = {}
    for owned in sorted(groups, key=lambda group: group.position):
        by_position.setdefault(owned.position, []).append(owned)
    merged = []
    for members in by_position.values():
        first = members[0]
        if len(members) > 1:
            wanted = {id(point) for member in members for point in member.points}
            ordered = [point for point in first.metric.data.data_points if id(point) in wanted]
            first = OwnedMetric(first.scope, first.metric, ordered, first.position)
        merged.append((members, _without(first, keys)))
    return merged


def _entry(owned: OwnedMetric, points: list[dict[str, Any]]) -> dict[str, Any]:
    metric = owned.metric
    return {
        "name": metric.name,
        "unit": metric.unit or "",
        "description": metric.description or "",
        "type": _kind(metric),
        "scope": owned.scope.name,
        "points": points,
    }


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
