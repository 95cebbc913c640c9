"""The catalog's model: metric and attribute definitions, owners, priorities and findings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias

__all__ = [
    "ANNOTATION_KEY",
    "INSTRUMENTS",
    "PRIORITIES",
    "STABILITY_LEVELS",
    "AttributeDefinition",
    "Catalog",
    "CatalogError",
    "Finding",
    "Instrument",
    "Location",
    "MetricDefinition",
    "Owner",
    "OwnerKind",
    "Priority",
]

#: Instrument kinds of the Weaver format (the synchronous names, for observables too).
Instrument: TypeAlias = Literal["counter", "updowncounter", "gauge", "histogram"]
INSTRUMENTS: tuple[Instrument, ...] = ("counter", "updowncounter", "gauge", "histogram")
#: How much a missing metric matters; ``coverage todo`` lists by priority, HIGH first.
Priority: TypeAlias = Literal["HIGH", "MEDIUM", "LOW"]
PRIORITIES: tuple[Priority, ...] = ("HIGH", "MEDIUM", "LOW")
#: Stability levels of the Weaver format.
STABILITY_LEVELS: tuple[str, ...] = ("development", "alpha", "beta", "release_candidate", "stable")
#: Key of this project's annotations in a group's ``annotations`` map.
ANNOTATION_KEY = "telemetry_otel"
#: What reports a metric: services (``service.name``), buses (``bus.name``) or a runtime component.
OwnerKind: TypeAlias = Literal["service", "bus", "component"]


class CatalogError(Exception):
    """A catalog that cannot be read at all (missing file, invalid YAML); the message names file:line."""


@dataclass(frozen=True, order=True)
class Location:
    """Where something is declared: a file and a 1-based line."""

    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class Finding:
    """One violation of a catalog rule, at the line that causes it."""

    rule: str
    message: str
    location: Location

    def __str__(self) -> str:
        return f"{self.location}: {self.rule}: {self.message}"


@dataclass(frozen=True)
class Owner:
    """Who reports a metric, from ``annotations.telemetry_otel.owner``.

    ``kind`` is ``service`` (points carry ``service.name``), ``bus`` (points carry ``bus.name``) or
    ``component`` (a part of the runtime itself, such as the collector). ``names`` lists the
    services or buses; None means every one the runtime has (``services: all``, ``buses: all``).
    A component owner always has exactly one name.
    """

    kind: OwnerKind
    names: tuple[str, ...] | None

    def describe(self) -> str:
        """The owner as written in the catalog, for reports (``services: all``, ``bus: llm``)."""
        plural = "buses" if self.kind == "bus" else f"{self.kind}s"
        if self.names is None:
            return f"{plural}: all"
        if len(self.names) == 1:
            return f"{self.kind}: {self.names[0]}"
        return f"{plural}: {', '.join(self.names)}"


@dataclass(frozen=True)
class AttributeDefinition:
    """An attribute defined in the catalog (``id`` in a group's ``attributes``).

    ``type`` is the Weaver type (``string``, ``int``, ``template[string]``...) or ``enum``, in which
    case ``members`` holds the allowed values.
    """

    name: str
    type: str
    brief: str
    members: tuple[str | int | float | bool, ...] | None
    location: Location


@dataclass(frozen=True)
class MetricDefinition:
    """A ``type: metric`` group, with its attributes resolved through ``ref`` and ``extends``.

    ``attributes`` maps each attribute a point may carry to its requirement level (``required``,
    ``conditionally_required``, ``recommended`` or ``opt_in``).
    """

    id: str
    name: str
    instrument: Instrument
    unit: str
    brief: str
    stability: str
    attributes: Mapping[str, str]
    owner: Owner
    priority: Priority
    location: Location
    note: str = ""


@dataclass(frozen=True)
class Catalog:
    """A loaded catalog: its well-formed metric and attribute definitions and its rule findings.

    A catalog with findings still lists every metric group that was well formed enough to use
    (of duplicates, the first); :attr:`ok` tells whether it passed every rule.
    """

    sources: tuple[str, ...]
    metrics: Mapping[str, MetricDefinition]
    attributes: Mapping[str, AttributeDefinition]
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        """True when the catalog passed every rule."""
        return not self.findings

    def metric(self, name: str) -> MetricDefinition:
        """The definition of metric ``name``; a ``KeyError`` naming the catalog when there is none."""
        try:
            return self.metrics[name]
        except KeyError:
            where = ", ".join(self.sources) or "the catalog"
            raise KeyError(f"metric {name!r} is not declared in {where}") from None
