"""``label_agent``: every sample of ``/metrics`` names its agent, a clashing attribute is kept."""

from __future__ import annotations

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from prometheus_client.parser import text_string_to_metric_families

from telemetry_otel.formats import encode_prometheus_text, label_agent

SCOPE = InstrumentationScope("s", "1", None, None)


def _data(resource: Resource) -> MetricsData:
    metrics = [
        Metric(
            "work.done",
            "",
            "{item}",
            Sum([NumberDataPoint({"agent": "other"}, 0, 1, 3)], AggregationTemporality.CUMULATIVE, True),
        ),
        Metric("work.depth", "", "{item}", Gauge([NumberDataPoint({"service.name": "db"}, 0, 1, 2)])),
        Metric(
            "work.time",
            "",
            "s",
            Histogram(
                [HistogramDataPoint(None, 0, 1, 1, 0.5, [0, 1], [1.0], 0.5, 0.5, None)],
                AggregationTemporality.CUMULATIVE,
            ),
        ),
    ]
    return MetricsData([ResourceMetrics(resource, [ScopeMetrics(SCOPE, metrics, "")], "")])


def test_every_sample_carries_the_resource_service_name_as_agent() -> None:
    text = encode_prometheus_text(label_agent(_data(Resource.create({"service.name": "fleet-a"}))))
    families = [family for family in text_string_to_metric_families(text) if family.name != "target_info"]
    samples = [sample for family in families for sample in family.samples]
    assert samples
    assert all(sample.labels["agent"] == "fleet-a" for sample in samples)
    done = next(sample for sample in samples if sample.name == "work_done_total")
    assert done.labels["exported_agent"] == "other"  # the point's own attribute is kept, renamed
    depth = next(sample for sample in samples if sample.name == "work_depth")
    assert depth.labels["service_name"] == "db"


def test_a_resource_without_a_service_name_is_left_alone() -> None:
    data = _data(Resource.get_empty())
    assert label_agent(data).resource_metrics[0] is data.resource_metrics[0]
