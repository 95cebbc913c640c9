"""The agent label of ``/metrics``: every sample names the runtime (agent) it comes from.

A fleet keeps many agents' series in one time-series database; the one label that tells them apart
is ``agent`` (:data:`~telemetry_otel.vocabulary.AGENT_LABEL`), whose value is the resource's
``service.name`` (the runtime's name; a data point's own ``service.name`` attribute names an
internal service). One scrape job per agent then needs no relabelling. The process is told apart
by ``service.instance.id`` on ``target_info``, whose ``service_name`` label is the agent. A data point that
already has an ``agent`` attribute of another value keeps it as ``exported_agent``, as Prometheus
itself renames a clashing target label: nothing is dropped.

``label_agent`` copies every data point with the label added; the Prometheus encoders write the same
label themselves when asked (``encode_exposition(..., agent_label=True)``), which is what ``/metrics``
does: the output is the same, and no point is copied.
"""

from __future__ import annotations

import dataclasses

from opentelemetry.sdk.metrics.export import Metric, MetricsData, ResourceMetrics, ScopeMetrics
from opentelemetry.sdk.resources import Resource
from opentelemetry.util.types import Attributes, AttributeValue

from telemetry_otel.vocabulary import AGENT_LABEL, SERVICE_NAME

__all__ = ["EXPORTED_AGENT_LABEL", "agent_attributes", "agent_of", "label_agent"]

#: Where a data point's own ``agent`` attribute goes when it differs from the resource's.
EXPORTED_AGENT_LABEL = f"exported_{AGENT_LABEL}"


def label_agent(data: MetricsData) -> MetricsData:
    """``data`` with the ``agent`` attribute (its resource's ``service.name``) on every data point.

    Resources without a ``service.name`` are left as they are.
    """
    labelled = []
    for resource_metrics in data.resource_metrics:
        agent = agent_of(resource_metrics.resource)
        if agent is None:
            labelled.append(resource_metrics)
            continue
        scopes = [
            ScopeMetrics(
                scope_metrics.scope,
                [_labelled(metric, agent) for metric in scope_metrics.metrics],
                scope_metrics.schema_url,
            )
            for scope_metrics in resource_metrics.scope_metrics
        ]
        labelled.append(ResourceMetrics(resource_metrics.resource, scopes, resource_metrics.schema_url))
    return MetricsData(labelled)


def _labelled(metric: Metric, agent: str) -> Metric:
    data = metric.data
    points = [
        dataclasses.replace(point, attributes=agent_attributes(point.attributes, agent))
        for point in data.data_points
    ]
    return Metric(
        name=metric.name,
        description=metric.description,
        unit=metric.unit,
        data=dataclasses.replace(data, data_points=points),  # type: ignore[arg-type]
    )


def agent_of(resource: Resource) -> str | None:
    """The agent a resource's samples are labelled with: its ``service.name``; None when it has none."""
    agent = resource.attributes.get(SERVICE_NAME)
    return agent if isinstance(agent, str) and agent else None


def agent_attributes(attributes: Attributes, agent: str) -> dict[str, AttributeValue]:
    """The point's attributes with the agent; a different own ``agent`` moves to ``exported_agent``."""
    own = {key: value for key, value in (attributes or {}).items() if key != AGENT_LABEL}
    clash = (attributes or {}).get(AGENT_LABEL)
    if clash is not None and clash != agent:
        own[EXPORTED_AGENT_LABEL] = clash
    own[AGENT_LABEL] = agent
    return own
