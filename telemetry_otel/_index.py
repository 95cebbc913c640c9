"""The owner index: every data point of one read, grouped by the owner it belongs to, built once.

Owners are read from the data point attributes: a runtime service (``service.name``), a bus
(``bus.name`` without ``bus.provider``: the bus's aggregate series) and a bus provider (``bus.name``
with ``bus.provider``). A point that names a service belongs to that service whatever else it
carries. Everything else is unowned. Buses, views, the detailed document and catalog coverage read
a collection through this index instead of each walking ``MetricsData`` on its own; a bus then
touches only the points of its providers, however many series the read holds.

Building the index still visits every point once, to find the owned ones. A runtime that reads the
same SDK storage again and again keeps an :class:`IndexMemo`: for a synchronous instrument, the SDK's
cumulative storage hands out the same attributes object for a series on every read and only appends
new series, so a metric whose points were all unowned last time is checked again only from its
first new point. (An observable instrument's read leaves out the series its callback did not
report this time, so its points are always looked at.)
"""

from __future__ import annotations

from collections.abc import Container, Iterator, Mapping, Sequence
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

__all__ = ["DataPoint", "IndexMemo", "MetricKey", "OwnedMetric", "OwnerIndex"]

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

#: Which metric of a read: its scope's name, version and schema URL, and the metric's name.
MetricKey: TypeAlias = tuple[str, str | None, str | None, str]


class IndexMemo:
    """What earlier indexes learned: the metrics whose points all belonged to no owner.

    Only metrics the caller names as append-only are remembered: those of synchronous SDK
    instruments read with cumulative temporality (:func:`telemetry_otel._reader.append_only_metrics`),
    whose storage keeps one attributes object per series for the series' lifetime, emits every
    series on every read and only appends new ones. An entry is ``(count, first, last)``: the
    metric's first ``count`` points were unowned, and ``first`` and ``last`` are the attributes
    objects of its first and ``count``-th point. It is used only while the metric's points still
    start with those very objects at those places, so the same leading series. Anything else (a
    producer's fresh points, storage emptied after a fork) fails the check and the metric is indexed
    in full. Entries hold references to the two objects, so they cannot be freed and their identity
    reused. Safe to share between threads: a stale entry still checks itself.
    """

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[MetricKey, tuple[int, object, object]] = {}

    def unowned_prefix(self, key: MetricKey, points: Sequence[DataPoint]) -> int:
        """How many leading ``points`` are known to be unowned (0 when nothing is known)."""
        entry = self._entries.get(key)
        if entry is None:
            return 0
        count, first, last = entry
        if len(points) < count:
            return 0
        if points[0].attributes is not first or points[count - 1].attributes is not last:
            return 0
        return count

    def remember(self, entries: dict[MetricKey, tuple[int, object, object]]) -> None:
        """Replace what is known with ``entries`` (the metrics of the latest index only)."""
        self._entries = entries

    def __len__(self) -> int:
        return len(self._entries)


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
    def of(
        cls,
        data: MetricsData,
        memo: IndexMemo | None = None,
        append_only: Container[MetricKey] = frozenset(),
    ) -> OwnerIndex:
        """Index ``data`` in one pass over its points.

        With ``memo`` (kept by the caller between reads of the same storage), points of the
        ``append_only`` metrics that an earlier index of that memo found unowned are not visited
        again, and the memo learns this read's append-only metrics.
        """
        services: _Groups = {}
        buses: _Groups = {}
        providers: dict[tuple[str, str], list[OwnedMetric]] = {}
        unowned: list[OwnedMetric] = []
        names: set[str] = set()
        learned: dict[MetricKey, tuple[int, object, object]] = {}
        groups = (services, buses, providers, unowned)
        position = 0
        resource: Resource | None = None
        for resource_metrics in data.resource_metrics:
            resource = resource or resource_metrics.resource
            for scope_metrics in resource_metrics.scope_metrics:
                scope = scope_metrics.scope
                for metric in scope_metrics.metrics:
                    names.add(metric.name)
                    points: Sequence[DataPoint] = metric.data.data_points
                    key = (scope.name, scope.version, scope.schema_url, metric.name)
                    trusted = memo is not None and key in append_only
                    known = memo.unowned_prefix(key, points) if memo is not None and trusted else 0
                    if _index_metric(scope, metric, position, known, *groups) and points and trusted:
                        learned[key] = (len(points), points[0].attributes, points[-1].attributes)
                    position += 1
        if memo is not None:
            memo.remember(learned)
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
    known_unowned: int,
    services: _Groups,
    buses: _Groups,
    providers: dict[tuple[str, str], list[OwnedMetric]],
    unowned: list[OwnedMetric],
) -> bool:
    """Split one metric's points by owner and append a group per owner; True when none is owned.

    The first ``known_unowned`` points are known to be unowned and are not looked at.
    """
    points: Sequence[DataPoint] = metric.data.data_points
    # Most points of a large read belong to nobody: find the owned ones in one cheap pass first.
    unread = points[known_unowned:] if known_unowned else points
    owned_points = [
        point
        for point in unread
        if (attributes := point.attributes) and (SERVICE_NAME in attributes or BUS_NAME in attributes)
    ]
    if not owned_points:  # a metric without points is listed too: it was emitted
        unowned.append(OwnedMetric(scope, metric, points, position))
        return True
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
    return False
