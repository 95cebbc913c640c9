"""OpenMetrics 1.0 text encoder over OTel SDK ``MetricsData``.

The same data, names, labels and values as the text format 0.0.4 encoder (rules in
``_prometheus_core.py``), with the OpenMetrics differences, following the OpenTelemetry specification
("Prometheus and OpenMetrics Compatibility") and ``prometheus_client.openmetrics.exposition``:

* A counter family is named without ``_total`` in ``# HELP``/``# TYPE``/``# UNIT``; its samples keep it.
* ``# UNIT`` carries the Prometheus unit word (``seconds``, ``bytes``, ``ratio``, ``bytes_per_second``)
  when the family name ends with it, as OpenMetrics requires; no unit, no line.
* Resource attributes form the ``info`` family ``target`` (``# TYPE target info``) whose one sample
  is ``target_info{...} 1``, as the specification asks of SDK exporters.
* HELP texts escape ``\\``, newlines and ``"`` (text 0.0.4 leaves ``"`` as is); label values escape
  the same three in both formats. Bucket bounds are floats (``le="1.0"``, ``le="+Inf"``).
* Counters and histograms carry a ``_created`` sample, the data point's ``start_time_unix_nano`` in
  seconds (the specification says they should; the reference SDK exporter does not). Prometheus 2.x
  stores these as ``<name>_created`` series.
* What OpenMetrics cannot carry: a counter point that is negative or NaN is dropped with a warning
  (a Total is a non-negative number); a histogram point with a negative bucket bound or a negative
  or NaN sum loses ``_sum`` and ``_count`` (OpenMetrics allows ``_sum`` only when it is monotonic and
  ``_count`` only with ``_sum``; the count is still the ``+Inf`` bucket). A family that would reuse a
  name another family's samples reserve (a gauge ``x`` next to a counter ``x``, a gauge ``x_count``
  next to a histogram ``x``, a gauge ``target``) is dropped with a warning, the first one wins.
* Exemplars (OpenMetrics only; text 0.0.4 has none): each histogram bucket line carries the latest
  exemplar whose value falls in that bucket, and a counter's ``_total`` its latest exemplar, as
  `` # {trace_id="<32 hex>",span_id="<16 hex>"} <value> <timestamp in s>`` (``{}`` when the exemplar
  has no span, under ``OTEL_METRICS_EXEMPLAR_FILTER=always_on``).
* The exposition ends with ``# EOF`` (so no data is ``"# EOF\\n"``, not ``""``).
"""

from __future__ import annotations

from typing import Final

from opentelemetry.sdk.metrics.export import MetricsData

from telemetry_otel.formats._prometheus_core import build_families

__all__ = ["OPENMETRICS_CONTENT_TYPE", "encode_openmetrics", "openmetrics_lines"]

OPENMETRICS_CONTENT_TYPE: Final = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def encode_openmetrics(data: MetricsData, *, agent_label: bool = False) -> str:
    """Encode ``data`` as OpenMetrics 1.0 text, ending with ``# EOF\\n``.

    Families appear in first-seen order (``target`` first) and samples in data point order; families
    with the same name are merged under one ``# HELP``/``# TYPE``/``# UNIT`` (the first non-empty
    description and unit win) and conflicting ones are dropped with a logged warning, as in
    ``encode_prometheus_text``. Exponential histograms and delta temporality data are skipped.
    ``agent_label``: every sample names its agent, as ``encode_openmetrics(label_agent(data))``.
    """
    return "".join(openmetrics_lines(data, agent_label=agent_label))


def openmetrics_lines(data: MetricsData, *, agent_label: bool = False) -> list[str]:
    """The text of ``encode_openmetrics`` as its pieces, in order (each ends a line)."""
    out: list[str] = []
    for name, family in build_families(data, openmetrics=True, agent_label=agent_label).items():
        if family.help:
            out.append(f"# HELP {name} {family.help}\n")
        out.append(f"# TYPE {name} {family.kind}\n")
        if family.unit:
            out.append(f"# UNIT {name} {family.unit}\n")
        out.extend(family.lines)
    out.append("# EOF\n")
    return out
