"""Pin the public API: a name leaves or joins ``__all__`` only on purpose."""

from __future__ import annotations

import importlib

import pytest

EXPECTED = {
    "telemetry_otel": {
        "HEALTH_STATUSES",
        "CachedCollection",
        "Collection",
        "CollectionCache",
        "Component",
        "ComponentOutcome",
        "ComponentRegistry",
        "ConfigurationError",
        "HealthReport",
        "HealthStatus",
        "MetricAggregator",
        "MetricProducer",
        "Outcome",
        "Snapshot",
        "SnapshotFunction",
        "SnapshotValue",
        "Telemetry",
        "TelemetryConfig",
        "__version__",
        "current_telemetry",
        "get_meter",
        "setup_telemetry",
        "shutdown_telemetry",
    },
    "telemetry_otel.instrumentation": {
        "BUS_SCOPE_NAME",
        "Bus",
        "BusConfigurationError",
        "DEFAULT_GAUGE_RULE",
        "GAUGE_RULES",
        "GaugeRule",
        "LATENCY_BUCKETS",
        "SCOPE_NAME",
        "InstrumentedService",
        "MetricKind",
        "SnapshotMetric",
        "counter",
        "from_catalog",
        "gauge",
        "instrument_service",
        "updown_counter",
    },
    "telemetry_otel.catalog": {
        "DEMO_CATALOG_PACKAGE",
        "DEMO_CATALOG_RESOURCE",
        "EXCLUDED_SCOPES",
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
    },
    "telemetry_otel.views": {
        "FORMATS",
        "HEALTH_JSON",
        "QUERY_PARAMETERS",
        "VIEWS",
        "Alert",
        "RenderedView",
        "Thresholds",
        "ViewInputs",
        "create_app",
        "health_json",
        "render_detailed",
        "render_view",
        "view_metrics",
    },
    "telemetry_otel.formats": {
        "OPENMETRICS_CONTENT_TYPE",
        "PROMETHEUS_TEXT_CONTENT_TYPE",
        "encode_graphite",
        "encode_influx",
        "encode_openmetrics",
        "encode_prometheus_text",
        "negotiate_exposition",
        "wants_gzip",
    },
    "telemetry_otel.exporters": {
        "EXPORTER_NAMES",
        "DeliveryStats",
        "DeltaConverter",
        "ExportPipeline",
        "GraphiteExporter",
        "InfluxExporter",
        "MetricsSource",
        "OTLPExporter",
        "PermanentExportError",
        "PushExporter",
        "RetryPolicy",
        "RetryingExporter",
        "exporters_from_env",
    },
}


@pytest.mark.parametrize("module_name", sorted(EXPECTED))
def test_all_is_exactly_the_public_api(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert set(module.__all__) == EXPECTED[module_name]
    public = {name for name in vars(module) if not name.startswith("_")} | {"__version__"} & set(vars(module))
    imported_modules = {name for name in public if type(getattr(module, name)).__name__ == "module"}
    assert public - imported_modules - {"annotations"} == EXPECTED[module_name]
    for name in module.__all__:
        assert getattr(module, name) is not None
