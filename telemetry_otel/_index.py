"""The owner index: every data point of one read, grouped by the owner it belongs to, built once.

Owners are read from the data point attributes: a runtime service (``service.name``), a bus
(``bus.name`` without ``bus.provider``: the bus's aggregate series) and a bus provider (``bus.name``
with ``bus.provider``). A point that names a service belongs to that service whatever else it
carries. Everything else is unowned. Buses, views, the detailed document and catalog coverage read
a collection through this index instead of each walking ``MetricsData`` on its own; a bus then
touches only the points of its providers, however many series the read holds.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypeAlias

from opentelemetry.sdk.metrics.export import (
    ExponentialHistogramDataPoint,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from telemetry_otel.vocabulary import BUS_NAME, BUS_PROVIDER, SERVICE_NAME

__all__ = ["DataPoint", "OwnedMetric", "OwnerIndex"]

#: A data point the index keeps.
DataPoint: TypeAlias = NumberDataPoint | HistogramDataPoint | ExponentialHistogramDataPoint


@dataclass(frozen=True)
class OwnedMetric:
    """The points of one metric that belong to one owner, with the metric and scope they came from.

    ``metric`` is the whole metric as read (its name, unit, description and data kind); ``points``
    are only this owner's, in the metric's order; ``position`` is the metric's place in the read
    (0 for the first metric), to restore the read's order across owners.
    """

    scope: InstrumentationScope
    metric: Metric
    points: Sequence[DataPoint]
    position: int

    @property
    def name(self) -> str:
        """The metric's name."""
        return self.metric.name


_Groups: TypeAlias = dict[str, list[OwnedMetric]]


class OwnerIndex:
    """Every point of one ``MetricsData`` by owner: services, buses, bus providers, and the rest.

    Build it with :meth:`of` (one pass over the data). Read-only once built.
    """

    __slots__ = ("_buses", "_names", "_providers", "_resource", "_services", "_unowned")

    def __init__(
        self,
        services: _Groups,
        buses: _Groups,
        providers: dict[tuple[str, str], list[OwnedMetric]],
        unowned: list[OwnedMetric],
        names: frozenset[str],
        resource: Resource | None,
    ) -> None:
        self._services = services
        self._buses = buses
        self._providers = providers
        self._unowned = unowned
        self._names = names
        self._resource = resource

    @classmethod
    def of(cls, data: MetricsData) -> OwnerIndex:
        """Index ``data`` in one pass over its points."""
        services: _Groups = {}
        buses: _Groups = {}
        providers: dict[tuple[str, str], list[OwnedMetric]] = {}
        unowned: list[OwnedMetric] = []
        names: set[str] = set()
        position = 0
        resource: Resource | None = None
        for resource_metrics in data.resource_metrics:
            resource = resource or resource_metrics.resource
            for scope_metrics in resource_metrics.scope_metrics:
                scope = scope_metrics.scope
                for metric in scope_metrics.metrics:
                    names.add(metric.name)
                    _index_metric(scope, metric, position, services, buses, providers, unowned)
                    position += 1
        return cls(services, buses, providers, unowned, frozenset(names), resource)

    @property
    def resource(self) -> Resource | None:
        """The resource of the first ``ResourceMetrics`` read (None when the data was empty)."""
        return self._resource

    @property
    def metric_names(self) -> frozenset[str]:
        """Every metric name in the data."""
        return self._names

    @property
    def services(self) -> Mapping[str, Sequence[OwnedMetric]]:
        """``service.name`` -> that service's metrics (only its points in each)."""
        return MappingProxyType(self._services)

    @property
    def buses(self) -> Mapping[str, Sequence[OwnedMetric]]:
        """``bus.name`` -> that bus's aggregate metrics (per-provider points are in :attr:`providers`)."""
        return MappingProxyType(self._buses)

    @property
    def providers(self) -> Mapping[tuple[str, str], Sequence[OwnedMetric]]:
        """``(bus.name, bus.provider)`` -> that provider's per-provider bus metrics."""
        return MappingProxyType(self._providers)

    @property
    def unowned(self) -> Sequence[OwnedMetric]:
        """Metrics (their points) that name no service and no bus, and metrics without points."""
        return tuple(self._unowned)

    def service(self, name: str) -> Sequence[OwnedMetric]:
        """The metrics of service ``name`` (empty when it has none)."""
        return self._services.get(name, ())

    def bus(self, name: str) -> Sequence[OwnedMetric]:
        """The aggregate metrics of bus ``name`` (empty when it has none)."""
        return self._buses.get(name, ())

    def owned(self) -> Iterator[tuple[str, str, OwnedMetric]]:
        """``(kind, owner, metric)`` for every owned group: kind is service, bus or provider (whose
        owner is ``bus/provider``)."""
        for kind, groups in (("service", self._services), ("bus", self._buses)):
            for owner, metrics in groups.items():
                for owned in metrics:
                    yield kind, owner, owned
        for (bus, provider), metrics in self._providers.items():
            for owned in metrics:
                yield "provider", f"{bus}/{provider}", owned


def _index_metric(
    scope: InstrumentationScope,
    metric: Metric,
    position: int,
    services: _Groups,
    buses: _Groups,
    providers: dict[tuple[str, str], list[OwnedMetric]],
    unowned: list[OwnedMetric],
) -> None:
    """Split one metric's points by owner and append a group per owner."""
    points: Sequence[DataPoint] = metric.data.data_points
    # Most points of a large read belong to nobody: find the owned ones in one cheap pass first.
    owned_points = [
        point
        for point in points
        if (attributes := point.attributes) and (SERVICE_NAME in attributes or BUS_NAME in attributes)
    ]
    if not owned_points:  # a metric without points is listed too: it was emitted
        unowned.append(OwnedMetric(scope, metric, points, position))
        return
    by_service: dict[str, list[DataPoint]] = {}
    by_bus: dict[str, list[DataPoint]] = {}
    by_provider: dict[tuple[str, str], list[DataPoint]] = {}
    rest: list[DataPoint] = []
    for point in points:
        attributes = point.attributes
        if attributes:
            service = attributes.get(SERVICE_NAME)
            if isinstance(service, str):
                if service in by_service:
                    by_service[service].append(point)
                else:
                    by_service[service] = [point]
                continue
            bus = attributes.get(BUS_NAME)
            if isinstance(bus, str):
                provider = attributes.get(BUS_PROVIDER)
                if isinstance(provider, str):
                    by_provider.setdefault((bus, provider), []).append(point)
                else:
                    by_bus.setdefault(bus, []).append(point)
                continue
        rest.append(point)
    for service, owned in by_service.items():
        services.setdefault(service, []).append(OwnedMetric(scope, metric, owned, position))
    for bus, owned in by_bus.items():
        buses.setdefault(bus, []).append(OwnedMetric(scope, metric, owned, position))
    for key, owned in by_provider.items():
        providers.setdefault(key, []).append(OwnedMetric(scope, metric, owned, position))
    if rest:
        unowned.append(OwnedMetric(scope, metric, rest, position))
