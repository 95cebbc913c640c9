"""The metric catalog: the runtime's metrics declared in the OpenTelemetry Weaver registry format.

A catalog is one or more YAML files of Weaver semantic-convention groups (``type: metric`` with
``metric_name``, ``instrument``, ``unit``, ``brief``, ``stability`` and attributes), plus this
project's annotations naming each metric's owner and priority. See docs/catalog.md.

Example::

    from telemetry_otel.catalog import compare, load_catalog

    catalog = load_catalog("catalog.yaml")
    for finding in catalog.findings:          # rule violations, each at file:line
        print(finding)
    report = compare(catalog, collection.metrics)   # what a collection really holds
    print(report.percent, [gap.name for gap in report.missing])
"""

from __future__ import annotations

from importlib import resources

from telemetry_otel.catalog._check import RULES
from telemetry_otel.catalog._check import build_catalog as _build_catalog
from telemetry_otel.catalog._coverage import (
    FINDING_KINDS,
    CoverageFinding,
    CoverageReport,
    MissingMetric,
    OwnerCoverage,
    compare,
)
from telemetry_otel.catalog._load import CatalogSource
from telemetry_otel.catalog._load import read_documents as _read_documents
from telemetry_otel.catalog._model import (
    INSTRUMENTS,
    PRIORITIES,
    AttributeDefinition,
    Catalog,
    CatalogError,
    Finding,
    Instrument,
    Location,
    MetricDefinition,
    Owner,
    OwnerKind,
    Priority,
)
from telemetry_otel.catalog._report import (
    coverage_json,
    next_json,
    render_check,
    render_coverage,
    render_next,
    render_todo,
    todo_json,
)

__all__ = [
    "DEMO_CATALOG_PACKAGE",
    "DEMO_CATALOG_RESOURCE",
    "FINDING_KINDS",
    "INSTRUMENTS",
    "PRIORITIES",
    "RULES",
    "AttributeDefinition",
    "Catalog",
    "CatalogError",
    "CatalogSource",
    "CoverageFinding",
    "CoverageReport",
    "Finding",
    "Instrument",
    "Location",
    "MetricDefinition",
    "MissingMetric",
    "Owner",
    "OwnerCoverage",
    "OwnerKind",
    "Priority",
    "check_catalog",
    "compare",
    "coverage_json",
    "demo_catalog",
    "load_catalog",
    "next_json",
    "render_check",
    "render_coverage",
    "render_next",
    "render_todo",
    "todo_json",
]

#: The package that ships the demo runtime's catalog (named, never imported, by the core).
DEMO_CATALOG_PACKAGE = "telemetry_otel.instrumentation.demo"
#: The demo catalog's file name in that package.
DEMO_CATALOG_RESOURCE = "catalog.yaml"


def load_catalog(*sources: CatalogSource) -> Catalog:
    """Read and check the catalog made of every file of ``sources`` (files or directories).

    Rule violations are in the result's ``findings``; a file that cannot be read or is not valid
    YAML is a :class:`CatalogError` whose message names ``file:line``.
    """
    if not sources:
        raise CatalogError("no catalog file given")
    return _build_catalog([document for source in sources for document in _read_documents(source)])


def check_catalog(*sources: CatalogSource) -> tuple[Finding, ...]:
    """The rule violations of the catalog made of ``sources`` (empty when it is valid)."""
    return load_catalog(*sources).findings


def demo_catalog() -> Catalog:
    """The demo runtime's catalog, shipped in the package (``importlib.resources``)."""
    return load_catalog(resources.files(DEMO_CATALOG_PACKAGE) / DEMO_CATALOG_RESOURCE)
