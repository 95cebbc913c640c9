"""The per-bus section of a view: the bus question answered from the bus series of one collection."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.metrics.export import HistogramDataPoint, NumberDataPoint

from telemetry_otel import DataPoint, OwnerIndex
from telemetry_otel.vocabulary import BUS_NAME, BUS_PREFIX, BUS_PROVIDER, BUS_PROVIDER_PREFIX

__all__ = ["render_buses"]

_COUNTS = {"requests": "requests", "failures": "failures", "processed": "processed"}
_PROVIDER_COUNTS = {
    "providers": "providers_total",
    "providers.healthy": "providers_healthy",
    "providers.unknown": "providers_unknown",
}


def render_buses(index: OwnerIndex, membership: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """Per bus: providers total/healthy/unknown, requests, failures, processed, failure ratio,
    merged latency distribution, busiest provider and a per-provider breakdown.

    Every number comes from the ``bus.*`` series the buses derived in this collection (read through
    its owner ``index``); a number no series carries is ``None`` (unknown), never 0.
    """
    sections: dict[str, dict[str, Any]] = {bus: _empty(providers) for bus, providers in membership.items()}
    for bus, groups in index.buses.items():
        for owned in groups:
            if not owned.name.startswith(BUS_PREFIX):
                continue
            section = sections.setdefault(bus, _empty({}))
            for point in owned.points:
                if _own_attributes(point, (BUS_NAME,)):
                    continue  # a stream split by its own attributes: part of "detailed" only
                _bus_point(section, owned.name, point)
    for (bus, provider), groups in index.providers.items():
        for owned in groups:
            if not owned.name.startswith(BUS_PREFIX):
                continue
            section = sections.setdefault(bus, _empty({}))
            for point in owned.points:
                if not _own_attributes(point, (BUS_NAME, BUS_PROVIDER)):
                    _provider_point(section, provider, owned.name, point)
    for section in sections.values():
        _derive(section)
    return sections


def _own_attributes(point: DataPoint, owner_keys: tuple[str, ...]) -> bool:
    """Whether the point carries attributes beyond the ones naming its owner."""
    return any(key not in owner_keys for key in point.attributes or {})


def _empty(providers: Mapping[str, str]) -> dict[str, Any]:
    return {
        "providers_total": None,
        "providers_healthy": None,
        "providers_unknown": None,
        "requests": None,
        "failures": None,
        "processed": None,
        "failure_ratio": None,
        "latency": None,
        "busiest_provider": None,
        "providers": {
            name: {
                "component": component,
                "requests": None,
                "failures": None,
                "processed": None,
                "failure_ratio": None,
            }
            for name, component in providers.items()
        },
    }


def _bus_point(section: dict[str, Any], name: str, point: object) -> None:
    stem = name.removeprefix(BUS_PREFIX)
    if isinstance(point, NumberDataPoint):
        if stem in _COUNTS:
            section[_COUNTS[stem]] = point.value
        elif stem in _PROVIDER_COUNTS:
            section[_PROVIDER_COUNTS[stem]] = point.value
    elif isinstance(point, HistogramDataPoint) and stem == "request.duration":
        section["latency"] = {
            "count": point.count,
            "sum_seconds": point.sum,
            "buckets": [
                {"le": bound, "count": count}
                for bound, count in zip([*point.explicit_bounds, "+Inf"], point.bucket_counts, strict=True)
            ],
        }


def _provider_point(section: dict[str, Any], provider: str, name: str, point: object) -> None:
    stem = name.removeprefix(BUS_PROVIDER_PREFIX)
    if stem in _COUNTS and isinstance(point, NumberDataPoint):
        entry = section["providers"].setdefault(
            provider,
            {"component": None, "requests": None, "failures": None, "processed": None, "failure_ratio": None},
        )
        entry[_COUNTS[stem]] = point.value


def _ratio(failures: float | None, requests: float | None) -> float | None:
    if failures is None or not requests:
        return None  # no request yet: the ratio is unknown, not 0
    return failures / requests


def _derive(section: dict[str, Any]) -> None:
    section["failure_ratio"] = _ratio(section["failures"], section["requests"])
    busiest: tuple[float, str] | None = None
    for name, entry in section["providers"].items():
        entry["failure_ratio"] = _ratio(entry["failures"], entry["requests"])
        if entry["requests"] and (busiest is None or entry["requests"] > busiest[0]):
            busiest = (entry["requests"], name)
    section["busiest_provider"] = None if busiest is None else busiest[1]
