"""The exporters' own series: ``telemetry.export.*`` per exporter, merged into every collection."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from opentelemetry.sdk.metrics.export import AggregationTemporality, Gauge, Metric, NumberDataPoint, Sum
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from telemetry_otel._version import __version__
from telemetry_otel.exporters._retry import DROP_REASONS, DeliveryStats
from telemetry_otel.vocabulary import (
    COLLECTOR_SCOPE_NAME,
    TELEMETRY_EXPORT_DROPPED,
    TELEMETRY_EXPORT_DROPPED_DELTA,
    TELEMETRY_EXPORT_FAILED,
    TELEMETRY_EXPORT_LAST_SUCCESS_AGE,
    TELEMETRY_EXPORT_LATE,
    TELEMETRY_EXPORT_QUEUE_BYTES,
    TELEMETRY_EXPORT_QUEUE_LENGTH,
    TELEMETRY_EXPORT_REASON,
    TELEMETRY_EXPORT_RETRIED,
    TELEMETRY_EXPORT_SENT,
    TELEMETRY_EXPORTER,
)

__all__ = ["ExportMetrics"]


class ExportMetrics:
    """A metric producer over the delivery stats of every exporter of a pipeline.

    Counters (from the runtime's start): ``telemetry.export.sent`` (batches delivered),
    ``.failed`` (attempts that failed), ``.retried`` (attempts after a failure), ``.late`` (attempts
    the deadline ended), ``.dropped`` per ``telemetry.export.reason`` (every reason, 0 until one
    happens) and ``.dropped.delta`` (dropped delta batches, whose change is lost for good). Gauges:
    ``.queue.length`` (batches waiting), ``.queue.bytes`` and ``.last_success.age`` (s since the last
    delivery; absent before the first). Every point has ``telemetry.exporter``.
    """

    def __init__(self, stats: Callable[[], Sequence[DeliveryStats]], start_unix_nano: int) -> None:
        self._stats = stats
        self._start = start_unix_nano
        self._scope = InstrumentationScope(COLLECTOR_SCOPE_NAME, __version__, None, None)

    @property
    def scope(self) -> InstrumentationScope:
        """The collector's instrumentation scope."""
        return self._scope

    def produce(self, time_unix_nano: int) -> Iterable[Metric]:
        """The series as of ``time_unix_nano``."""
        now, start = time_unix_nano, self._start
        every = list(self._stats())
        if not every:
            return []
        cumulative = AggregationTemporality.CUMULATIVE

        def counter(name: str, description: str, unit: str, value: Callable[[DeliveryStats], int]) -> Metric:
            points = [NumberDataPoint({TELEMETRY_EXPORTER: s.exporter}, start, now, value(s)) for s in every]
            return Metric(name, description, unit, Sum(points, cumulative, is_monotonic=True))

        def gauge(name: str, description: str, unit: str, value: Callable[[DeliveryStats], float]) -> Metric:
            points = [NumberDataPoint({TELEMETRY_EXPORTER: s.exporter}, now, now, value(s)) for s in every]
            return Metric(name, description, unit, Gauge(points))

        dropped = [
            NumberDataPoint(
                {TELEMETRY_EXPORTER: s.exporter, TELEMETRY_EXPORT_REASON: reason},
                start,
                now,
                s.dropped_by_reason.get(reason, 0),
            )
            for s in every
            for reason in DROP_REASONS
        ]
        ages = [
            NumberDataPoint(
                {TELEMETRY_EXPORTER: s.exporter}, now, now, max(0.0, now / 1e9 - s.last_success_unix)
            )
            for s in every
            if s.last_success_unix is not None
        ]
        metrics = [
            counter(TELEMETRY_EXPORT_SENT, "Batches delivered.", "{batch}", lambda s: s.sent),
            counter(
                TELEMETRY_EXPORT_FAILED,
                "Export attempts that failed.",
                "{attempt}",
                lambda s: s.failed_attempts,
            ),
            counter(
                TELEMETRY_EXPORT_RETRIED, "Export attempts after a failure.", "{attempt}", lambda s: s.retried
            ),
            counter(
                TELEMETRY_EXPORT_LATE,
                "Export attempts ended by their deadline.",
                "{attempt}",
                lambda s: s.late,
            ),
            Metric(
                TELEMETRY_EXPORT_DROPPED,
                "Batches dropped, by reason.",
                "{batch}",
                Sum(dropped, cumulative, is_monotonic=True),
            ),
            counter(
                TELEMETRY_EXPORT_DROPPED_DELTA,
                "Delta batches dropped: their change is lost for good.",
                "{batch}",
                lambda s: s.dropped_delta,
            ),
            gauge(
                TELEMETRY_EXPORT_QUEUE_LENGTH,
                "Batches waiting for delivery.",
                "{batch}",
                lambda s: s.buffered,
            ),
            gauge(
                TELEMETRY_EXPORT_QUEUE_BYTES,
                "Bytes of batches waiting for delivery.",
                "By",
                lambda s: s.buffered_bytes,
            ),
        ]
        if ages:
            metrics.append(
                Metric(TELEMETRY_EXPORT_LAST_SUCCESS_AGE, "Time since the last delivery.", "s", Gauge(ages))
            )
        return metrics
