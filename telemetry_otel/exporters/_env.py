"""Exporters from configuration: ``OTEL_METRICS_EXPORTER`` and the variables of each exporter."""

from __future__ import annotations

import os
from collections.abc import Mapping

from telemetry_otel._config import ConfigurationError
from telemetry_otel.exporters._graphite import GraphiteExporter
from telemetry_otel.exporters._influx import InfluxExporter, Precision
from telemetry_otel.exporters._otlp import OTLPExporter, otlp_protocol
from telemetry_otel.exporters._retry import PushExporter

__all__ = ["EXPORTER_NAMES", "exporters_from_env", "metrics_exporter_names"]

#: Values of ``OTEL_METRICS_EXPORTER`` (comma-separated). ``prometheus`` is the ``/metrics`` pull
#: route: ``telemetry-otel serve`` always serves it; any other process gets a scrape server on
#: ``OTEL_EXPORTER_PROMETHEUS_HOST``:``OTEL_EXPORTER_PROMETHEUS_PORT`` (see ``setup_telemetry``).
EXPORTER_NAMES = ("otlp", "graphite", "influxdb", "prometheus", "none")


def metrics_exporter_names(environ: Mapping[str, str] | None = None) -> list[str]:
    """The names ``OTEL_METRICS_EXPORTER`` lists (default ``none``), checked, in order, once each."""
    env = os.environ if environ is None else environ
    names = [
        name.strip().lower() for name in env.get("OTEL_METRICS_EXPORTER", "none").split(",") if name.strip()
    ]
    unknown = [name for name in names if name not in EXPORTER_NAMES]
    if unknown:
        names_text = ", ".join(map(repr, unknown))
        raise ConfigurationError(
            f"OTEL_METRICS_EXPORTER names {names_text}; allowed: {', '.join(EXPORTER_NAMES)}"
        )
    return list(dict.fromkeys(names))


def exporters_from_env(
    environ: Mapping[str, str] | None = None, *, export_timeout_millis: float | None = None
) -> list[PushExporter]:
    """The push exporters ``OTEL_METRICS_EXPORTER`` names (default ``none``), configured from env.

    ``export_timeout_millis`` bounds each OTLP export (unless ``OTEL_EXPORTER_OTLP_TIMEOUT`` says).
    """
    env = os.environ if environ is None else environ
    exporters: list[PushExporter] = []
    for name in metrics_exporter_names(env):
        if name == "otlp":
            try:
                exporters.append(
                    OTLPExporter(otlp_protocol(env), export_timeout_millis=export_timeout_millis)
                )
            except ValueError as exc:
                raise ConfigurationError(str(exc)) from None
        elif name == "graphite":
            exporters.append(_graphite(env))
        elif name == "influxdb":
            exporters.append(_influx(env))
    return exporters


def _graphite(env: Mapping[str, str]) -> GraphiteExporter:
    host, port = _host_port(env, "TELEMETRY_OTEL_GRAPHITE_ENDPOINT", "localhost:2003")
    protocol = env.get("TELEMETRY_OTEL_GRAPHITE_PROTOCOL", "tcp").strip().lower()
    if protocol not in ("tcp", "udp"):
        raise ConfigurationError(f"TELEMETRY_OTEL_GRAPHITE_PROTOCOL={protocol!r}; allowed: tcp, udp")
    tagged = env.get("TELEMETRY_OTEL_GRAPHITE_TAGGED", "true").strip().lower()
    if tagged not in ("true", "false"):
        raise ConfigurationError(f"TELEMETRY_OTEL_GRAPHITE_TAGGED={tagged!r}; allowed: true, false")
    return GraphiteExporter(
        host,
        port,
        protocol="udp" if protocol == "udp" else "tcp",
        prefix=env.get("TELEMETRY_OTEL_GRAPHITE_PREFIX") or None,
        tagged=tagged == "true",
    )


def _influx(env: Mapping[str, str]) -> InfluxExporter:
    precision = env.get("TELEMETRY_OTEL_INFLUXDB_PRECISION", "s").strip()
    allowed: dict[str, Precision] = {"s": "s", "ms": "ms", "us": "us", "ns": "ns"}
    if precision not in allowed:
        raise ConfigurationError(f"TELEMETRY_OTEL_INFLUXDB_PRECISION={precision!r}; allowed: s, ms, us, ns")
    try:
        return InfluxExporter(
            env.get("TELEMETRY_OTEL_INFLUXDB_URL", "http://localhost:8086"),
            database=env.get("TELEMETRY_OTEL_INFLUXDB_DATABASE") or None,
            org=env.get("TELEMETRY_OTEL_INFLUXDB_ORG") or None,
            bucket=env.get("TELEMETRY_OTEL_INFLUXDB_BUCKET") or None,
            token=env.get("TELEMETRY_OTEL_INFLUXDB_TOKEN") or None,
            username=env.get("TELEMETRY_OTEL_INFLUXDB_USERNAME") or None,
            password=env.get("TELEMETRY_OTEL_INFLUXDB_PASSWORD") or None,
            precision=allowed[precision],
        )
    except ValueError as exc:
        raise ConfigurationError(
            f"{exc}: set TELEMETRY_OTEL_INFLUXDB_DATABASE (v1) or TELEMETRY_OTEL_INFLUXDB_ORG, "
            "_BUCKET and _TOKEN (v2)"
        ) from None


def _host_port(env: Mapping[str, str], name: str, default: str) -> tuple[str, int]:
    raw = env.get(name, default).strip()
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigurationError(f"{name}={raw!r} is not host:port")
    return host.strip("[]"), int(port)
