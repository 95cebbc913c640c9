"""Many worker processes, one host picture.

Behind ``gunicorn -w N`` or ``uvicorn --workers N`` each worker records its own numbers. With
``TELEMETRY_OTEL_HOST_ENDPOINT`` set (``127.0.0.1:PORT``), every worker's runtime reports its
cumulative metrics as OTLP to one host aggregator on that loopback port, and answers ``/metrics``,
every view and the health routes from the host picture the aggregator folds. The push exporters run
once, in the aggregator. See ``docs/workers.md``.

* :class:`HostAggregator`: the OTLP receiver that owns the host picture (``python -m
  telemetry_otel.host --listen 127.0.0.1:PORT`` runs one; the first worker starts one when none
  listens; ``telemetry-otel serve --workers N`` and the gunicorn hooks start one themselves);
* :class:`HostFold`: the pure fold of worker reports into host totals;
* :func:`encode_request` / :func:`decode_request`: OTLP protobuf to and from SDK ``MetricsData``;
* ``telemetry_otel.host.gunicorn``: hooks for ``gunicorn -c python:telemetry_otel.host.gunicorn``.
"""

from __future__ import annotations

from telemetry_otel.host._aggregator import HostAggregator, process_alive
from telemetry_otel.host._cycle import HostCycle
from telemetry_otel.host._fold import (
    BUILTIN_HOST_GAUGE_RULES,
    DEFAULT_HOST_GAUGE_RULE,
    HOST_GAUGE_RULES,
    HostFold,
    HostGaugeRule,
    parse_gauge_rules,
)
from telemetry_otel.host._link import HostLink, HostUnreachableError, parse_endpoint
from telemetry_otel.host._otlp import decode_request, encode_request

__all__ = [
    "BUILTIN_HOST_GAUGE_RULES",
    "DEFAULT_HOST_GAUGE_RULE",
    "HOST_GAUGE_RULES",
    "HostAggregator",
    "HostCycle",
    "HostFold",
    "HostGaugeRule",
    "HostLink",
    "HostUnreachableError",
    "decode_request",
    "encode_request",
    "parse_endpoint",
    "parse_gauge_rules",
    "process_alive",
]
