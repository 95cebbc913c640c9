"""Prometheus text exposition format 0.0.4 encoder over OTel SDK ``MetricsData``.

A pure function; the naming, label and value rules it shares with the OpenMetrics encoder are
documented in ``_prometheus_core.py``. Specific to this format: ``target_info`` is a ``gauge`` (the
format has no ``info`` type), counter families are named with their ``_total`` suffix, HELP escapes
only ``\\`` and newlines, there is no ``# UNIT`` line, no ``_created`` sample and no end marker.
"""

from __future__ import annotations

from typing import Final

from opentelemetry.sdk.metrics.export import MetricsData

from telemetry_otel.formats._prometheus_core import build_families

__all__ = ["PROMETHEUS_TEXT_CONTENT_TYPE", "encode_prometheus_text", "prometheus_text_lines"]

PROMETHEUS_TEXT_CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"


def encode_prometheus_text(data: MetricsData, *, agent_label: bool = False) -> str:
    """Encode ``data`` as Prometheus text exposition format 0.0.4.

    Families appear in first-seen order (``target_info`` first) and samples in data point order.
    Families with the same name from different scopes or ``Metric`` objects are merged under one
    ``# HELP``/``# TYPE`` (the first non-empty description wins); a later family whose type differs from the
    first one with that name is dropped with a logged warning. Exponential histograms and delta
    temporality data are skipped. Returns ``""`` when there is nothing to expose, otherwise text
    ending in exactly one newline. ``agent_label``: every sample names its agent, as
    ``encode_prometheus_text(label_agent(data))`` (``/metrics`` does this).
    """
    return "".join(prometheus_text_lines(data, agent_label=agent_label))


def prometheus_text_lines(data: MetricsData, *, agent_label: bool = False) -> list[str]:
    """The text of ``encode_prometheus_text`` as its pieces, in order (each ends a line)."""
    out: list[str] = []
    for name, family in build_families(data, openmetrics=False, agent_label=agent_label).items():
        if family.help:
            out.append(f"# HELP {name} {family.help}\n")
        out.append(f"# TYPE {name} {family.kind}\n")
        out.extend(family.lines)
    return out
