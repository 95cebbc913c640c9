"""Rendering: catalog findings, the coverage report, its to-do list and next item, as text or JSON."""

from __future__ import annotations

from typing import Any

from telemetry_otel.catalog._coverage import FINDING_KINDS, CoverageReport, MissingMetric
from telemetry_otel.catalog._model import PRIORITIES, Catalog

__all__ = [
    "coverage_json",
    "next_json",
    "render_check",
    "render_coverage",
    "render_next",
    "render_todo",
    "todo_json",
]

_TITLES = {
    "missing_metric": "missing metrics",
    "undeclared_metric": "undeclared metrics",
    "unit_mismatch": "unit mismatches",
    "instrument_mismatch": "instrument mismatches",
    "undeclared_attribute": "undeclared attributes",
    "undefined_enum_value": "values outside an enum",
    "missing_attribute": "missing required attributes",
    "undeclared_owner": "undeclared owners",
}


def render_check(catalog: Catalog) -> str:
    """``catalog check`` output: one ``file:line: rule: message`` line per finding, then a summary."""
    lines = [str(finding) for finding in catalog.findings]
    where = ", ".join(catalog.sources)
    if catalog.findings:
        lines.append(f"{where}: {_count(len(catalog.findings), 'violation')}")
    else:
        metrics, attributes = (
            _count(len(catalog.metrics), "metric"),
            _count(len(catalog.attributes), "attribute"),
        )
        lines.append(f"{where}: ok ({metrics}, {attributes})")
    return "\n".join(lines)


def render_coverage(report: CoverageReport, *, source: str, fail_under: float | None = None) -> str:
    """The full coverage report as text."""
    lines = [
        f"coverage of {', '.join(report.sources)}",
        f"by {source}",
        "",
        f"coverage: {len(report.seen)}/{len(report.declared)} declared metrics seen "
        f"({report.percent:.1f} %), {len(report.emitted)} metrics emitted",
        "",
        "by owner (seen/declared):",
    ]
    width = max((len(owner.label) for owner in report.owners), default=0)
    for owner in report.owners:
        counts = f"{len(owner.seen)}/{len(owner.declared)}"
        lines.append(f"  {owner.label:<{width}}  {counts:>7}  {owner.percent:5.1f} %")
    lines.append("")
    for kind in FINDING_KINDS:
        findings = [finding for finding in report.findings if finding.kind == kind]
        title = _TITLES[kind]
        if not findings:
            lines.append(f"{title}: none")
            continue
        lines += ["", f"{title} ({len(findings)}):"]
        if kind == "missing_metric":
            lines += [_missing_line(gap) for gap in report.missing]
        else:
            lines += [
                f"  {finding.metric}: {finding.message}" + _at(finding.location) for finding in findings
            ]
    lines += ["", _verdict(report, fail_under)]
    return "\n".join(lines)


def render_todo(report: CoverageReport) -> str:
    """``coverage todo``: the missing metrics grouped by priority, HIGH first."""
    if not report.missing:
        return _nothing_missing(report)
    lines = [
        f"{_count(len(report.missing), 'declared metric')} to add "
        f"(coverage {len(report.seen)}/{len(report.declared)}, {report.percent:.1f} %):"
    ]
    for priority in PRIORITIES:
        gaps = [gap for gap in report.missing if gap.priority == priority]
        if gaps:
            lines.append(f"{priority} ({len(gaps)}):")
            lines += [_missing_line(gap, priority=False) for gap in gaps]
    return "\n".join(lines)


def render_next(report: CoverageReport) -> str:
    """``coverage next``: the highest-priority missing metric, on one line."""
    gap = report.next_missing()
    if gap is None:
        return _nothing_missing(report)
    definition = gap.definition
    return (
        f"{gap.priority} {gap.name}: {gap.describe()} "
        f"({definition.instrument} in {definition.unit!r}, owner {definition.owner.describe()}, "
        f"declared at {definition.location})"
    )


def coverage_json(report: CoverageReport, *, source: str, fail_under: float | None = None) -> dict[str, Any]:
    """The full coverage report as a JSON-ready document."""
    counts = {kind: 0 for kind in FINDING_KINDS}
    for finding in report.findings:
        counts[finding.kind] += 1
    return {
        "catalog": list(report.sources),
        "source": source,
        "coverage": _summary(report),
        "owners": [
            {
                "kind": owner.kind,
                "name": owner.name,
                "declared": len(owner.declared),
                "seen": len(owner.seen),
                "percent": round(owner.percent, 2),
                "missing": list(owner.missing),
            }
            for owner in report.owners
        ],
        "missing": [_missing_json(gap) for gap in report.missing],
        "undeclared": [finding.metric for finding in report.findings if finding.kind == "undeclared_metric"],
        "counts": counts,
        "findings": [
            {
                "kind": finding.kind,
                "metric": finding.metric,
                "message": finding.message,
                "priority": finding.priority,
                "location": str(finding.location) if finding.location is not None else None,
            }
            for finding in report.findings
        ],
        "fail_under": fail_under,
        "below": report.below(fail_under) if fail_under is not None else [],
        "passed": report.passed(fail_under),
    }


def todo_json(report: CoverageReport) -> dict[str, Any]:
    """``coverage todo --json``: the missing metrics by priority."""
    return {
        "catalog": list(report.sources),
        "coverage": _summary(report),
        "todo": {
            priority: [_missing_json(gap) for gap in report.missing if gap.priority == priority]
            for priority in PRIORITIES
        },
    }


def next_json(report: CoverageReport) -> dict[str, Any]:
    """``coverage next --json``: the highest-priority missing metric, or null."""
    gap = report.next_missing()
    return {
        "catalog": list(report.sources),
        "coverage": _summary(report),
        "next": _missing_json(gap) if gap is not None else None,
    }


def _summary(report: CoverageReport) -> dict[str, Any]:
    return {"declared": len(report.declared), "seen": len(report.seen), "percent": round(report.percent, 2)}


def _missing_json(gap: MissingMetric) -> dict[str, Any]:
    definition = gap.definition
    return {
        "metric": gap.name,
        "priority": gap.priority,
        "instrument": definition.instrument,
        "unit": definition.unit,
        "brief": definition.brief,
        "owner": definition.owner.describe(),
        "emitted": gap.emitted,
        "missing_for": list(gap.missing_for),
        "location": str(definition.location),
    }


def _missing_line(gap: MissingMetric, *, priority: bool = True) -> str:
    prefix = f"{gap.priority:<6} " if priority else ""
    return f"  {prefix}{gap.name}: {gap.describe()}{_at(gap.definition.location)}"


def _at(location: object) -> str:
    return f" ({location})" if location is not None else ""


def _nothing_missing(report: CoverageReport) -> str:
    return f"nothing missing: all {_count(len(report.declared), 'declared metric')} are emitted"


def _verdict(report: CoverageReport, fail_under: float | None) -> str:
    reasons = []
    if report.violations:
        reasons.append(_count(len(report.violations), "conformance finding"))
    below = report.below(fail_under) if fail_under is not None else []
    if below:
        reasons.append(f"below --fail-under {fail_under:g} %: {', '.join(below)}")
    if reasons:
        return f"result: FAIL ({'; '.join(reasons)})"
    gate = f", every coverage at or above --fail-under {fail_under:g} %" if fail_under is not None else ""
    return f"result: ok (no conformance findings{gate})"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
