"""``service.uptime``: produced from the component registry at each read, not through the SDK.

An SDK observable gauge costs a callback, an ``Observation`` and an aggregation (with its lock and
exemplar reservoir) per component on every collection, and keeps that storage for good. The
uptime of a component is a subtraction: the producer writes the gauge's points directly, shaped as
the SDK would have (no start time, the read's time), and the runtime's read caps them at the
cardinality limit like any produced metric.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from opentelemetry.sdk.metrics.export import Gauge, Metric, NumberDataPoint
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from telemetry_otel import Component
from telemetry_otel.vocabulary import SERVICE_UPTIME

__all__ = ["UPTIME_METRIC", "UptimeProducer"]

UPTIME_METRIC = (SERVICE_UPTIME, "s", "Time since the service was instrumented.")


class UptimeProducer:
    """Produces ``service.uptime`` (s) for every registered component, at the read's time."""

    def __init__(self, scope: InstrumentationScope, components: Callable[[], Iterable[Component]]) -> None:
        self._scope = scope
        #: The registered components, read at each read (``telemetry.components.registered``).
        self._components = components

    @property
    def scope(self) -> InstrumentationScope:
        """The instrumentation scope of the produced metric."""
        return self._scope

    def produce(self, time_unix_nano: int) -> Iterable[Metric]:
        """One gauge point per registered component: seconds since it was registered."""
        points = [
            NumberDataPoint(
                attributes=dict(component.attributes),
                start_time_unix_nano=None,  # type: ignore[arg-type]  # a gauge has none, as in the SDK
                time_unix_nano=time_unix_nano,
                value=(time_unix_nano - component.started_unix_nano) / 1e9,
            )
            for component in self._components()
        ]
        if not points:
            return []
        name, unit, description = UPTIME_METRIC
        return [Metric(name=name, description=description, unit=unit, data=Gauge(data_points=points))]
