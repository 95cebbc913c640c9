"""``from_catalog``: snapshot metrics whose unit and description come from the catalog."""

from __future__ import annotations

import asyncio
import pathlib

import pytest

from telemetry_otel import Telemetry
from telemetry_otel.catalog import Catalog, demo_catalog, load_catalog
from telemetry_otel.instrumentation import SnapshotMetric, from_catalog, instrument_service
from telemetry_otel.instrumentation.demo import _metrics as demo_metrics

CATALOG = """\
groups:
  - id: registry.store
    type: attribute_group
    brief: Store attributes.
    attributes:
      - {id: service.name, type: string, stability: development, brief: Service.}
"""
METRIC = """
  - id: metric.{name}
    type: metric
    metric_name: {name}
    brief: {brief}
    instrument: {instrument}
    unit: "{unit}"
    stability: development
    attributes: [{{ref: service.name}}]
    annotations: {{telemetry_otel: {{owner: {{service: store}}, priority: MEDIUM}}}}
"""


@pytest.fixture
def catalog(tmp_path: pathlib.Path) -> Catalog:
    text = CATALOG + "".join(
        METRIC.format(name=name, brief=brief, instrument=instrument, unit=unit)
        for name, brief, instrument, unit in [
            ("store.items", "Items held.", "updowncounter", "{item}"),
            ("store.reads", "Reads served since start.", "counter", "{read}"),
            ("store.fill", "Fraction of the store in use.", "gauge", "1"),
            ("store.read.duration", "Time a read took.", "histogram", "s"),
        ]
    )
    path = tmp_path / "store.yaml"
    path.write_text(text, encoding="utf-8")
    loaded = load_catalog(path)
    assert loaded.ok, [str(finding) for finding in loaded.findings]
    return loaded


def test_kind_unit_and_description_come_from_the_catalog(catalog: Catalog) -> None:
    assert from_catalog(catalog, "store.items") == SnapshotMetric(
        "store.items", "updowncounter", "{item}", "Items held."
    )
    assert from_catalog(catalog, "store.reads") == SnapshotMetric(
        "store.reads", "counter", "{read}", "Reads served since start."
    )
    assert from_catalog(catalog, "store.fill") == SnapshotMetric(
        "store.fill", "gauge", "1", "Fraction of the store in use."
    )


def test_a_histogram_is_not_a_snapshot_metric(catalog: Catalog) -> None:
    with pytest.raises(
        ValueError, match=r"'store.read.duration' is declared as a histogram at .*store.yaml:\d+"
    ):
        from_catalog(catalog, "store.read.duration")


def test_an_undeclared_metric_is_an_error_naming_the_catalog(catalog: Catalog) -> None:
    with pytest.raises(ValueError, match=r"metric 'store.writes' is not declared in .*store.yaml"):
        from_catalog(catalog, "store.writes")


def test_a_service_publishes_the_catalog_definition(telemetry: Telemetry, catalog: Catalog) -> None:
    instrument_service(
        "store",
        snapshot=lambda: {"store.items": 12, "store.fill": 0.5},
        metrics=[from_catalog(catalog, "store.items"), from_catalog(catalog, "store.fill")],
        telemetry=telemetry,
    )
    data = asyncio.run(telemetry.collect()).metrics
    emitted = {
        metric.name: (metric.unit, metric.description)
        for resource_metrics in data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
    }
    assert emitted["store.items"] == ("{item}", "Items held.")
    assert emitted["store.fill"] == ("1", "Fraction of the store in use.")


def test_every_demo_snapshot_metric_is_defined_by_the_shipped_catalog() -> None:
    catalog = demo_catalog()
    kinds = {"counter": "counter", "gauge": "gauge", "updowncounter": "updowncounter"}
    published = [getattr(demo_metrics, name) for name in demo_metrics.__all__ if name != "CATALOG"]
    assert len(published) == 17
    for metric in published:
        definition = catalog.metric(metric.name)
        assert metric == from_catalog(catalog, metric.name)
        assert (metric.kind, metric.unit, metric.description) == (
            kinds[definition.instrument],
            definition.unit,
            definition.brief,
        )
