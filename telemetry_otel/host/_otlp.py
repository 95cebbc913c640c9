"""OTLP between the workers and the host: SDK ``MetricsData`` to protobuf bytes and back.

Workers send what they recorded as a standard OTLP/HTTP ``ExportMetricsServiceRequest`` (the
encoder is the OpenTelemetry exporter's own), so anything that receives OTLP (an OpenTelemetry
Collector) can take the host aggregator's place. :func:`decode_request` turns such a request back
into SDK objects, so that every encoder and view of this package reads a host picture unchanged.
Exemplars are not carried back (a host picture has none).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Buckets,
    ExponentialHistogram,
    ExponentialHistogramDataPoint,
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

__all__ = ["OTLP_CONTENT_TYPE", "decode_request", "encode_request"]

#: The content type of an OTLP/HTTP protobuf request.
OTLP_CONTENT_TYPE = "application/x-protobuf"


def encode_request(data: MetricsData) -> bytes:
    """``data`` as the body of an OTLP/HTTP ``POST /v1/metrics``."""
    return bytes(encode_metrics(data).SerializeToString())


def decode_request(body: bytes) -> MetricsData:
    """The SDK metric data of an OTLP ``ExportMetricsServiceRequest`` body (``ValueError``: not one)."""
    request = ExportMetricsServiceRequest()
    try:
        request.ParseFromString(body)
    except Exception as exc:  # protobuf raises its own DecodeError
        raise ValueError(f"not an OTLP ExportMetricsServiceRequest: {exc}") from None
    return MetricsData(
        resource_metrics=[
            ResourceMetrics(
                resource=Resource(_attributes(rm.resource.attributes), rm.schema_url),
                scope_metrics=[
                    ScopeMetrics(
                        scope=InstrumentationScope(
                            sm.scope.name, sm.scope.version or None, sm.schema_url or None, None
                        ),
                        metrics=[_metric(metric) for metric in sm.metrics],
                        schema_url=sm.schema_url,
                    )
                    for sm in rm.scope_metrics
                ],
                schema_url=rm.schema_url,
            )
            for rm in request.resource_metrics
        ]
    )


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(item) for item in value.array_value.values)
    if kind is None:
        return None
    return getattr(value, kind)


def _attributes(items: Sequence[KeyValue]) -> dict[str, Any]:
    return {item.key: _value(item.value) for item in items}


def _number(point: pb.NumberDataPoint) -> NumberDataPoint:
    value: int | float = point.as_int if point.WhichOneof("value") == "as_int" else point.as_double
    return NumberDataPoint(
        _attributes(point.attributes), point.start_time_unix_nano, point.time_unix_nano, value
    )


def _temporality(value: int) -> AggregationTemporality:
    return AggregationTemporality(value) if value else AggregationTemporality.CUMULATIVE


def _buckets(buckets: pb.ExponentialHistogramDataPoint.Buckets) -> Buckets:
    return Buckets(buckets.offset, list(buckets.bucket_counts))


def _metric(metric: pb.Metric) -> Metric:
    kind = metric.WhichOneof("data")
    data: Any
    if kind == "sum":
        data = Sum(
            [_number(p) for p in metric.sum.data_points],
            _temporality(metric.sum.aggregation_temporality),
            metric.sum.is_monotonic,
        )
    elif kind == "gauge":
        data = Gauge([_number(p) for p in metric.gauge.data_points])
    elif kind == "histogram":
        data = Histogram(
            [
                HistogramDataPoint(
                    attributes=_attributes(p.attributes),
                    start_time_unix_nano=p.start_time_unix_nano,
                    time_unix_nano=p.time_unix_nano,
                    count=p.count,
                    sum=p.sum,
                    bucket_counts=list(p.bucket_counts),
                    explicit_bounds=list(p.explicit_bounds),
                    min=p.min,
                    max=p.max,
                )
                for p in metric.histogram.data_points
            ],
            _temporality(metric.histogram.aggregation_temporality),
        )
    elif kind == "exponential_histogram":
        data = ExponentialHistogram(
            [
                ExponentialHistogramDataPoint(
                    attributes=_attributes(p.attributes),
                    start_time_unix_nano=p.start_time_unix_nano,
                    time_unix_nano=p.time_unix_nano,
                    count=p.count,
                    sum=p.sum,
                    scale=p.scale,
                    zero_count=p.zero_count,
                    positive=_buckets(p.positive),
                    negative=_buckets(p.negative),
                    flags=p.flags,
                    min=p.min,
                    max=p.max,
                )
                for p in metric.exponential_histogram.data_points
            ],
            _temporality(metric.exponential_histogram.aggregation_temporality),
        )
    else:
        raise ValueError(f"metric {metric.name!r} has no data this decoder knows ({kind})")
    return Metric(metric.name, metric.description, metric.unit, data)
