"""``render_view``: one of the six views of one collection, as a JSON document plus derived OTel series."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.metrics.export import (
    Gauge,
    Histogram,
    Metric,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from telemetry_otel import DataPoint, __version__
from telemetry_otel.views._build import build_model, select
from telemetry_otel.views._detailed import render_detailed
from telemetry_otel.views._health_view import HEALTH_SOURCES, render_health
from telemetry_otel.views._inputs import ViewInputs
from telemetry_otel.views._operational import OPERATIONAL_SOURCES, render_operational
from telemetry_otel.views._performance import PERFORMANCE_SOURCES, render_performance
from telemetry_otel.views._reliability import RELIABILITY_SOURCES, render_reliability
from telemetry_otel.views._series import metric_names
from telemetry_otel.views._state import Model
from telemetry_otel.views._summary import SUMMARY_SOURCES, render_summary
from telemetry_otel.vocabulary import BUS_NAME

__all__ = ["DERIVED_SCOPE", "VIEWS", "RenderedView", "ViewInputs", "render_view", "view_metrics"]

#: Every view, the default first.
VIEWS: tuple[str, ...] = ("summary", "health", "operational", "performance", "reliability", "detailed")

#: Instrumentation scope of the derived series in :func:`view_metrics`.
DERIVED_SCOPE = InstrumentationScope("telemetry_otel.views", __version__, None, None)

_Renderer = Callable[[Model], tuple[dict[str, Any], list[Metric]]]
_RENDERERS: Mapping[str, tuple[_Renderer, frozenset[str]]] = {
    "summary": (render_summary, SUMMARY_SOURCES),
    "health": (render_health, HEALTH_SOURCES),
    "operational": (render_operational, OPERATIONAL_SOURCES),
    "performance": (render_performance, PERFORMANCE_SOURCES),
    "reliability": (render_reliability, RELIABILITY_SOURCES),
}


@dataclass(frozen=True)
class RenderedView:
    """A rendered view: the JSON body, the view's derived series, and the metric names it reads."""

    document: dict[str, Any]
    derived: list[Metric]
    sources: frozenset[str]


def render_view(name: str, inputs: ViewInputs, model: Model | None = None) -> RenderedView:
    """Render view ``name`` (one of :data:`VIEWS`) from ``inputs``; pure: no I/O, no clock.

    ``model`` is ``build_model(inputs)`` when the caller already built it (several views of one
    collection and query share one model). An unknown ``name`` is a ``ValueError`` naming the views.
    """
    if name not in VIEWS:
        raise ValueError(f"unknown view {name!r}; views: {', '.join(VIEWS)}")
    if name == "detailed":
        return _detailed(inputs)
    renderer, sources = _RENDERERS[name]
    document, derived = renderer(build_model(inputs) if model is None else model)
    return RenderedView(document, derived, sources)


def _detailed(inputs: ViewInputs) -> RenderedView:
    """``render_detailed`` over the selected services, the selected buses and their bus-only providers."""
    selected, bus_names = select(inputs)
    buses = {bus: inputs.buses[bus] for bus in bus_names}
    providers = {component for bus in buses.values() for component in bus.values()}
    components = [
        component
        for component in inputs.components
        if component.name in selected or (component.category is None and component.name in providers)
    ]
    document = render_detailed(inputs.collection, components, buses)
    if inputs.category is not None or inputs.service is not None:
        # Points of services outside the selection landed in other_metrics: they are not shown.
        document["other_metrics"] = []
        document["buses"] = {bus: section for bus, section in document["buses"].items() if bus in buses}
        document["totals"]["buses"] = len(document["buses"])
    document["filter"] = {"category": inputs.category, "service": inputs.service}
    return RenderedView(document, [], metric_names(inputs.collection))


def view_metrics(inputs: ViewInputs, view: RenderedView) -> MetricsData:
    """The collection's points a view is built from, restricted to its filter, plus its derived series.

    Source metrics keep only the points of the selected components (``service.name``) and buses
    (``bus.name``); with no filter every point of a source metric is kept. The derived series
    follow under the scope :data:`DERIVED_SCOPE`. Ready for ``encode_prometheus_text`` and friends.
    """
    selected, bus_names = select(inputs)
    buses = set(bus_names)
    unfiltered = inputs.category is None and inputs.service is None
    providers = {component for bus in bus_names for component in inputs.buses[bus].values()}
    owners = selected | {
        component.name
        for component in inputs.components
        if component.category is None and component.name in providers
    }

    # The selection's points, by identity, from the collection's owner index.
    index = inputs.collection.index
    groups = [
        *(group for owner in owners for group in index.service(owner)),
        *(group for bus in buses for group in index.bus(bus)),
        *(group for (bus, _), found in index.providers.items() if bus in buses for group in found),
    ]
    selection = {id(point) for group in groups for point in group.points}

    def keep(point: DataPoint) -> bool:
        if unfiltered or id(point) in selection:
            return True
        bus = (point.attributes or {}).get(BUS_NAME)  # a service's point may name a selected bus
        return isinstance(bus, str) and bus in buses

    resource_metrics: list[ResourceMetrics] = []
    resource: Resource | None = None
    for original in inputs.collection.metrics.resource_metrics:
        resource = resource or original.resource
        scopes = []
        for scope_metrics in original.scope_metrics:
            metrics = [
                kept
                for metric in scope_metrics.metrics
                if metric.name in view.sources and (kept := _restrict(metric, keep)) is not None
            ]
            if metrics:
                scopes.append(ScopeMetrics(scope_metrics.scope, metrics, scope_metrics.schema_url))
        if scopes:
            resource_metrics.append(ResourceMetrics(original.resource, scopes, original.schema_url))
    if view.derived:
        derived = ScopeMetrics(DERIVED_SCOPE, list(view.derived), "")
        resource_metrics.append(ResourceMetrics(resource or Resource.get_empty(), [derived], ""))
    return MetricsData(resource_metrics)


def _restrict(metric: Metric, keep: Callable[[DataPoint], bool]) -> Metric | None:
    """``metric`` with only the points ``keep`` accepts; None when none is left."""
    data = metric.data
    if isinstance(data, Sum):
        sum_points = [point for point in data.data_points if keep(point)]
        restricted: Sum | Gauge | Histogram | None = (
            Sum(sum_points, data.aggregation_temporality, data.is_monotonic) if sum_points else None
        )
    elif isinstance(data, Gauge):
        gauge_points = [point for point in data.data_points if keep(point)]
        restricted = Gauge(gauge_points) if gauge_points else None
    elif isinstance(data, Histogram):
        histogram_points = [point for point in data.data_points if keep(point)]
        restricted = Histogram(histogram_points, data.aggregation_temporality) if histogram_points else None
    else:
        return None
    if restricted is None:
        return None
    return Metric(name=metric.name, description=metric.description, unit=metric.unit, data=restricted)
