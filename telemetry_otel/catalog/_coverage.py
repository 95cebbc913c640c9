"""Coverage: what a runtime really emitted (one ``MetricsData``) against what its catalog declares.

A declared metric is *seen* when at least one point of it was emitted. Per owner, a metric is seen
for service ``S`` when a point carries ``service.name = S``, for bus ``B`` when a point carries
``bus.name = B``, and for a component when it was emitted at all. ``services: all`` (``buses:
all``) expands to every service (bus) named by a point of the data or by an owner in the catalog.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from opentelemetry.sdk.metrics.export import ExponentialHistogram, Gauge, Histogram, MetricsData, Sum

from telemetry_otel._index import OwnedMetric, OwnerIndex
from telemetry_otel.catalog._model import (
    PRIORITIES,
    Catalog,
    Location,
    MetricDefinition,
    OwnerKind,
    Priority,
)
from telemetry_otel.vocabulary import BUS_NAME, OVERFLOW

__all__ = [
    "EXCLUDED_SCOPES",
    "FINDING_KINDS",
    "OVERFLOW_ATTRIBUTE",
    "CoverageFinding",
    "CoverageReport",
    "MissingMetric",
    "OwnerCoverage",
    "compare",
]

#: Instrumentation scopes left out of coverage: the views' derived series (status, score,
#: quantiles) exist only in the views' metric formats, never in what the runtime emits.
EXCLUDED_SCOPES = frozenset({"telemetry_otel.views"})
#: Every kind of coverage finding; all but ``missing_metric`` are conformance violations.
FINDING_KINDS: tuple[str, ...] = (
    "missing_metric",
    "undeclared_metric",
    "unit_mismatch",
    "instrument_mismatch",
    "undeclared_attribute",
    "undefined_enum_value",
    "missing_attribute",
    "undeclared_owner",
)
#: The attribute of the SDK's cardinality-overflow series: such points are exempt from attribute checks.
OVERFLOW_ATTRIBUTE = OVERFLOW
_EXAMPLES = 3
_KEPT_VALUES = 64


@dataclass(frozen=True)
class CoverageFinding:
    """One difference between the catalog and the emitted data.

    ``location`` is the metric's declaration in the catalog (None for an undeclared metric);
    ``priority`` is the declared priority (None for an undeclared metric).
    """

    kind: str
    metric: str
    message: str
    priority: Priority | None = None
    location: Location | None = None

    @property
    def violation(self) -> bool:
        """True for a conformance violation (anything but a missing metric)."""
        return self.kind != "missing_metric"

    def __str__(self) -> str:
        where = f" ({self.location})" if self.location is not None else ""
        return f"{self.kind}: {self.metric}: {self.message}{where}"


@dataclass(frozen=True)
class OwnerCoverage:
    """Coverage of one service, bus or component: the metrics declared for it and those it emitted."""

    kind: OwnerKind
    name: str
    declared: tuple[str, ...]
    seen: tuple[str, ...]

    @property
    def label(self) -> str:
        """``service llm``, ``bus memory``, ``component collector``."""
        return f"{self.kind} {self.name}"

    @property
    def missing(self) -> tuple[str, ...]:
        """Declared for this owner but not emitted by it."""
        seen = set(self.seen)
        return tuple(name for name in self.declared if name not in seen)

    @property
    def percent(self) -> float:
        """Seen / declared, in percent (100 when nothing is declared)."""
        return _percent(len(self.seen), len(self.declared))


@dataclass(frozen=True)
class MissingMetric:
    """A declared metric that was not emitted at all, or not by every owner it declares.

    ``missing_for`` lists the owners (``service x``) that did not emit it; it is empty for a
    component's metric that was not emitted.
    """

    definition: MetricDefinition
    emitted: bool
    missing_for: tuple[str, ...]

    @property
    def name(self) -> str:
        """The metric's name."""
        return self.definition.name

    @property
    def priority(self) -> Priority:
        """The metric's declared priority."""
        return self.definition.priority

    def describe(self) -> str:
        """What is missing, in words."""
        if not self.emitted:
            return "not emitted"
        return f"not emitted by {', '.join(self.missing_for)}"


@dataclass(frozen=True)
class CoverageReport:
    """The comparison of one run's metrics with a catalog."""

    sources: tuple[str, ...]
    declared: tuple[str, ...]
    seen: tuple[str, ...]
    emitted: tuple[str, ...]
    owners: tuple[OwnerCoverage, ...]
    missing: tuple[MissingMetric, ...]
    findings: tuple[CoverageFinding, ...]

    @property
    def percent(self) -> float:
        """Declared metrics seen / declared metrics, in percent (100 when nothing is declared)."""
        return _percent(len(self.seen), len(self.declared))

    @property
    def violations(self) -> tuple[CoverageFinding, ...]:
        """The conformance findings: every finding but the missing metrics."""
        return tuple(finding for finding in self.findings if finding.violation)

    def below(self, percent: float) -> list[str]:
        """The coverages under ``percent``: overall and per owner, as ``label (x %)``."""
        found = []
        if self.percent < percent:
            found.append(f"overall ({self.percent:.1f} %)")
        found += [
            f"{owner.label} ({owner.percent:.1f} %)" for owner in self.owners if owner.percent < percent
        ]
        return found

    def passed(self, fail_under: float | None = None) -> bool:
        """True without violations and, with ``fail_under``, with no coverage below it."""
        return not self.violations and (fail_under is None or not self.below(fail_under))

    def next_missing(self) -> MissingMetric | None:
        """The missing metric to add first: highest priority, then not emitted at all, then by name."""
        return self.missing[0] if self.missing else None


@dataclass
class _Seen:
    """What the data holds for one metric name."""

    units: set[str] = field(default_factory=set)
    instruments: set[str] = field(default_factory=set)
    points: int = 0
    overflow_points: int = 0
    keys: dict[str, int] = field(default_factory=dict)
    values: dict[str, list[object]] = field(default_factory=dict)
    services: set[str] = field(default_factory=set)
    buses: set[str] = field(default_factory=set)

    def add(self, attributes: Mapping[str, object]) -> None:
        if attributes.get(OVERFLOW_ATTRIBUTE) is True:
            self.overflow_points += 1  # the SDK's overflow series: it carries no other attribute
            return
        self.points += 1
        for key, value in attributes.items():
            self.keys[key] = self.keys.get(key, 0) + 1
            kept = self.values.setdefault(key, [])
            if len(kept) < _KEPT_VALUES and value not in kept:
                kept.append(value)
        bus = attributes.get(BUS_NAME)
        if isinstance(bus, str):  # a service's point may name a bus too: seen for both
            self.buses.add(bus)


def observe(data: MetricsData) -> dict[str, _Seen]:
    """Every metric of ``data`` by name (scopes in :data:`EXCLUDED_SCOPES` left out), with the
    services and buses it was seen for, read through the data's owner index."""
    index = OwnerIndex.of(data)
    seen: dict[str, _Seen] = {}
    groups: list[tuple[str | None, str | None, OwnedMetric]] = [
        *((service, None, owned) for service, metrics in index.services.items() for owned in metrics),
        *((None, bus, owned) for bus, metrics in index.buses.items() for owned in metrics),
        *((None, bus, owned) for (bus, _), metrics in index.providers.items() for owned in metrics),
        *((None, None, owned) for owned in index.unowned),
    ]
    for service, bus, owned in sorted(groups, key=lambda group: group[2].position):
        if owned.scope.name in EXCLUDED_SCOPES:
            continue
        metric = owned.metric
        entry = seen.setdefault(metric.name, _Seen())
        entry.units.add(metric.unit or "")
        entry.instruments.add(_instrument(metric.data))
        if service is not None:
            entry.services.add(service)
        if bus is not None:
            entry.buses.add(bus)
        for point in owned.points:
            entry.add(dict(point.attributes or {}))
    return seen


def _instrument(data: object) -> str:
    if isinstance(data, Sum):
        return "counter" if data.is_monotonic else "updowncounter"
    if isinstance(data, Gauge):
        return "gauge"
    if isinstance(data, Histogram | ExponentialHistogram):
        return "histogram"
    return type(data).__name__


def compare(catalog: Catalog, data: MetricsData) -> CoverageReport:
    """Compare what ``data`` holds with what ``catalog`` declares."""
    seen = observe(data)
    universe = _universe(catalog, seen)
    owners: dict[tuple[OwnerKind, str], tuple[list[str], list[str]]] = {}
    missing: list[MissingMetric] = []
    findings: list[CoverageFinding] = []
    for definition in catalog.metrics.values():
        emitted = seen.get(definition.name)
        expected = _expected(definition, universe)
        got = _got(definition, emitted)
        for key in expected:
            declared, found = owners.setdefault(key, ([], []))
            declared.append(definition.name)
            if key in got:
                found.append(definition.name)
        missing_for = tuple(f"{kind} {name}" for kind, name in expected if (kind, name) not in got)
        if emitted is None or missing_for:
            gap = MissingMetric(definition, emitted is not None, missing_for)
            missing.append(gap)
            findings.append(
                _finding(definition, "missing_metric", f"{gap.describe()} ({definition.priority})")
            )
        if emitted is not None:
            findings += _conformance(catalog, definition, emitted)
    for name, emitted in seen.items():
        if name not in catalog.metrics:
            findings.append(CoverageFinding("undeclared_metric", name, _undeclared(emitted)))
    missing.sort(key=lambda gap: (PRIORITIES.index(gap.priority), gap.emitted, gap.name))
    findings.sort(key=lambda finding: (FINDING_KINDS.index(finding.kind), finding.metric, finding.message))
    order: dict[str, int] = {"service": 0, "bus": 1, "component": 2}
    return CoverageReport(
        sources=catalog.sources,
        declared=tuple(catalog.metrics),
        seen=tuple(name for name in catalog.metrics if name in seen),
        emitted=tuple(sorted(seen)),
        owners=tuple(
            OwnerCoverage(kind, name, tuple(declared), tuple(found))
            for (kind, name), (declared, found) in sorted(
                owners.items(), key=lambda i: (order[i[0][0]], i[0][1])
            )
        ),
        missing=tuple(missing),
        findings=tuple(findings),
    )


def _universe(catalog: Catalog, seen: Mapping[str, _Seen]) -> dict[OwnerKind, set[str]]:
    universe: dict[OwnerKind, set[str]] = {"service": set(), "bus": set()}
    for emitted in seen.values():
        universe["service"] |= emitted.services
        universe["bus"] |= emitted.buses
    for definition in catalog.metrics.values():
        owner = definition.owner
        if owner.kind in universe and owner.names is not None:
            universe[owner.kind].update(owner.names)
    return universe


def _expected(
    definition: MetricDefinition, universe: Mapping[OwnerKind, set[str]]
) -> list[tuple[OwnerKind, str]]:
    owner = definition.owner
    names = owner.names if owner.names is not None else tuple(sorted(universe.get(owner.kind, ())))
    return [(owner.kind, name) for name in names]


def _got(definition: MetricDefinition, emitted: _Seen | None) -> set[tuple[OwnerKind, str]]:
    if emitted is None:
        return set()
    owner = definition.owner
    if owner.kind == "service":
        return {("service", name) for name in emitted.services}
    if owner.kind == "bus":
        return {("bus", name) for name in emitted.buses}
    return {("component", name) for name in owner.names or ()}


def _conformance(catalog: Catalog, definition: MetricDefinition, emitted: _Seen) -> list[CoverageFinding]:
    found: list[CoverageFinding] = []
    if emitted.units != {definition.unit}:
        units = " and ".join(repr(unit) for unit in sorted(emitted.units))
        found.append(
            _finding(definition, "unit_mismatch", f"emitted in {units}, declared in {definition.unit!r}")
        )
    if emitted.instruments != {definition.instrument}:
        kinds = " and ".join(_article(kind) for kind in sorted(emitted.instruments))
        found.append(
            _finding(
                definition,
                "instrument_mismatch",
                f"emitted as {kinds}, declared as {_article(definition.instrument)}",
            )
        )
    for key in sorted(emitted.keys):
        if key not in definition.attributes:
            found.append(
                _finding(
                    definition,
                    "undeclared_attribute",
                    f"points carry attribute {key!r} (e.g. {_examples(emitted.values[key])}), "
                    "which the catalog does not list for this metric",
                )
            )
    for key, level in definition.attributes.items():
        attribute = catalog.attributes.get(key)
        if attribute is not None and attribute.members is not None and key in emitted.values:
            unknown = [value for value in emitted.values[key] if value not in attribute.members]
            if unknown:
                found.append(
                    _finding(
                        definition,
                        "undefined_enum_value",
                        f"attribute {key!r} takes {_examples(unknown)}, not a member of its enum "
                        f"({_examples(attribute.members, limit=len(attribute.members))})",
                    )
                )
        lacking = emitted.points - emitted.keys.get(key, 0)
        if level == "required" and lacking:
            found.append(
                _finding(
                    definition,
                    "missing_attribute",
                    f"{lacking} of {emitted.points} points lack the required attribute {key!r}",
                )
            )
    owner = definition.owner
    if owner.names is not None and owner.kind in ("service", "bus"):
        emitters = emitted.services if owner.kind == "service" else emitted.buses
        extra = sorted(emitters - set(owner.names))
        if extra:
            found.append(
                _finding(
                    definition,
                    "undeclared_owner",
                    f"emitted by {owner.kind} {', '.join(extra)}, which its owner ({owner.describe()}) "
                    "does not name",
                )
            )
    return found


def _finding(definition: MetricDefinition, kind: str, message: str) -> CoverageFinding:
    return CoverageFinding(kind, definition.name, message, definition.priority, definition.location)


def _undeclared(emitted: _Seen) -> str:
    kinds = " and ".join(_article(kind) for kind in sorted(emitted.instruments))
    units = " and ".join(repr(unit) for unit in sorted(emitted.units))
    by = ""
    if emitted.services:
        by = f" by service {_examples(sorted(emitted.services), quote=False)}"
    elif emitted.buses:
        by = f" by bus {_examples(sorted(emitted.buses), quote=False)}"
    points = emitted.points + emitted.overflow_points
    return f"emitted as {kinds} in {units}{by} ({points} points) but not declared in the catalog"


def _article(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


def _examples(values: Iterable[object], *, limit: int = _EXAMPLES, quote: bool = True) -> str:
    items = list(values)
    shown = [repr(value) if quote else str(value) for value in items[:limit]]
    more = f", ... ({len(items)} in all)" if len(items) > limit else ""
    return ", ".join(shown) + more


def _percent(part: int, whole: int) -> float:
    return 100.0 if whole == 0 else 100.0 * part / whole
