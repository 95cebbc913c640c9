"""Exporters from the environment: ``OTEL_METRICS_EXPORTER`` and every ``TELEMETRY_OTEL_GRAPHITE_*`` and
``TELEMETRY_OTEL_INFLUXDB_*`` variable of the README's exporter table.

Each setting is checked by what the exporter it configures really sends: Graphite lines to a TCP or
UDP socket of our own on 127.0.0.1, InfluxDB line protocol to a small HTTP server of our own (path,
query and headers of the request). The expected lines are written here by hand from the README and
the encoders' documented layouts, not produced by the encoders.
"""

from __future__ import annotations

import http.server
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
from opentelemetry.sdk.metrics.export import MetricsData, NumberDataPoint

from telemetry_otel import ConfigurationError, Telemetry, get_meter, setup_telemetry, shutdown_telemetry
from telemetry_otel.exporters import GraphiteExporter, InfluxExporter, PushExporter, exporters_from_env
from telemetry_otel.instrumentation import SCOPE_NAME, instrument_service

# The tags of the ``service.requests`` series of the service ``memory`` (category ``graph``).
GRAPHITE_TAGS = f";otel.scope.name={SCOPE_NAME};service.category=graph;service.name=memory"
INFLUX_TAGS = f",otel.scope.name={SCOPE_NAME},service.category=graph,service.name=memory"
HIERARCHICAL_NODES = ".service_category.graph.service_name.memory"
# Every pushed series also names the runtime that sent it (the default ``resource_tags``).
_IDENTITY = {
    "tagged": re.compile(r";resource\.service\.instance\.id=[0-9a-f-]{36};resource\.service\.name=[\w-]+"),
    "nodes": re.compile(r"\.resource_service_instance_id\.[0-9a-f-]{36}\.resource_service_name\.[\w-]+"),
    "influx": re.compile(r",resource\.service\.instance\.id=[0-9a-f-]{36},resource\.service\.name=[\w-]+"),
}


def _without_identity(path: str, layout: str) -> str:
    """``path`` without the runtime's identity tags, which must be there."""
    stripped, found = _IDENTITY[layout].subn("", path)
    assert found == 1, path
    return stripped


@pytest.fixture
def data(telemetry: Telemetry) -> MetricsData:
    """A read of a runtime where the service ``memory`` handled 3 requests."""
    service = instrument_service("memory", category="graph", telemetry=telemetry)
    for _ in range(3):
        service.record_request(0.01)
    return telemetry.read_metrics()


def _requests_time(data: MetricsData) -> int:
    """``time_unix_nano`` of the ``service.requests`` point of ``memory``."""
    [point] = [
        point
        for resource_metrics in data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        if metric.name == "service.requests"
        for point in metric.data.data_points
        if (point.attributes or {}).get("service.name") == "memory"
    ]
    assert isinstance(point, NumberDataPoint)
    assert point.value == 3
    return point.time_unix_nano


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """``monkeypatch``, with no exporter variable of the process environment left over."""
    for name in list(os.environ):
        if name.startswith(("TELEMETRY_OTEL_GRAPHITE_", "TELEMETRY_OTEL_INFLUXDB_", "OTEL_METRIC")):
            monkeypatch.delenv(name)
    return monkeypatch


def _only(env: dict[str, str]) -> PushExporter:
    [exporter] = exporters_from_env(env)
    return exporter


# -- OTEL_METRICS_EXPORTER -----------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "none", "prometheus", "", " none , prometheus "])
def test_no_push_exporter_unless_one_is_named(value: str | None) -> None:
    env = {} if value is None else {"OTEL_METRICS_EXPORTER": value}
    assert exporters_from_env(env) == []


def test_graphite_and_influxdb_are_named_comma_separated_in_any_case_each_once() -> None:
    exporters = exporters_from_env(
        {
            "OTEL_METRICS_EXPORTER": " Graphite , INFLUXDB,graphite,prometheus",
            "TELEMETRY_OTEL_INFLUXDB_DATABASE": "telemetry",
        }
    )
    assert [type(exporter) for exporter in exporters] == [GraphiteExporter, InfluxExporter]


def test_an_unknown_exporter_name_is_a_configuration_error_naming_the_allowed_ones() -> None:
    with pytest.raises(ConfigurationError) as raised:
        exporters_from_env({"OTEL_METRICS_EXPORTER": "graphite,statsd,carbon"})
    assert str(raised.value) == (
        "OTEL_METRICS_EXPORTER names 'statsd', 'carbon'; allowed: otlp, graphite, influxdb, prometheus, none"
    )


def test_without_an_argument_the_process_environment_is_read(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("OTEL_METRICS_EXPORTER", "graphite")
    clean_env.setenv("TELEMETRY_OTEL_GRAPHITE_ENDPOINT", "127.0.0.1:2103")
    [exporter] = exporters_from_env()
    assert isinstance(exporter, GraphiteExporter)
    assert (exporter.host, exporter.port) == ("127.0.0.1", 2103)


# -- Graphite ------------------------------------------------------------------------------------


class _TcpSink:
    """A listening TCP socket: the exporter connects (the kernel completes it from the backlog) and
    sends; after the exporter closed its connection, ``lines()`` reads what it sent."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(5)
        self.port: int = self.sock.getsockname()[1]

    def lines(self) -> list[str]:
        connection, _ = self.sock.accept()
        with connection:
            connection.settimeout(5)
            received = b""
            while chunk := connection.recv(65536):
                received += chunk
        text = received.decode("utf-8")
        assert text.endswith("\n")
        return text.splitlines()


@pytest.fixture
def tcp_sink() -> Iterator[_TcpSink]:
    sink = _TcpSink()
    yield sink
    sink.sock.close()


@pytest.fixture
def udp_sink() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    yield sock
    sock.close()


def _graphite_line(lines: list[str], path: str) -> tuple[float, int]:
    """(value, timestamp) of the one line for ``path``."""
    layout = "tagged" if ";" in lines[0].split(" ")[0] else "nodes"
    found = [line.split(" ") for line in lines if _without_identity(line.split(" ")[0], layout) == path]
    assert len(found) == 1, (path, lines[:5])
    [(_, value, stamp)] = found
    assert re.fullmatch(r"[0-9]+", stamp), stamp
    return float(value), int(stamp)


def test_graphite_defaults_are_tagged_tcp_to_localhost_2003_without_prefix() -> None:
    exporter = _only({"OTEL_METRICS_EXPORTER": "graphite"})
    assert isinstance(exporter, GraphiteExporter)
    assert (exporter.host, exporter.port, exporter.protocol, exporter.tagged, exporter.prefix) == (
        "localhost",
        2003,
        "tcp",
        True,
        None,
    )


def test_graphite_endpoint_and_prefix_over_tcp_send_tagged_series(
    data: MetricsData, tcp_sink: _TcpSink
) -> None:
    exporter = _only(
        {
            "OTEL_METRICS_EXPORTER": "graphite",
            "TELEMETRY_OTEL_GRAPHITE_ENDPOINT": f"127.0.0.1:{tcp_sink.port}",
            "TELEMETRY_OTEL_GRAPHITE_PREFIX": "agents.a1",
        }
    )
    exporter.export(data, 5_000)
    exporter.shutdown()
    lines = tcp_sink.lines()
    assert _graphite_line(lines, f"agents.a1.service.requests{GRAPHITE_TAGS}") == (
        3.0,
        _requests_time(data) // 10**9,
    )
    assert all(line.startswith("agents.a1.") for line in lines)
    assert all(";" in line.split(" ")[0] for line in lines)


@pytest.mark.parametrize("tagged", ["false", "FALSE", " False "])
def test_graphite_tagged_false_sends_hierarchical_paths(
    data: MetricsData, tcp_sink: _TcpSink, tagged: str
) -> None:
    exporter = _only(
        {
            "OTEL_METRICS_EXPORTER": "graphite",
            "TELEMETRY_OTEL_GRAPHITE_ENDPOINT": f"127.0.0.1:{tcp_sink.port}",
            "TELEMETRY_OTEL_GRAPHITE_TAGGED": tagged,
            "TELEMETRY_OTEL_GRAPHITE_PREFIX": "hier",
        }
    )
    exporter.export(data, 5_000)
    exporter.shutdown()
    lines = tcp_sink.lines()
    assert _graphite_line(lines, f"hier.service.requests{HIERARCHICAL_NODES}") == (
        3.0,
        _requests_time(data) // 10**9,
    )
    assert not [line for line in lines if ";" in line]


def test_graphite_tagged_true_is_the_default_spelled_out(data: MetricsData, tcp_sink: _TcpSink) -> None:
    exporter = _only(
        {
            "OTEL_METRICS_EXPORTER": "graphite",
            "TELEMETRY_OTEL_GRAPHITE_ENDPOINT": f"127.0.0.1:{tcp_sink.port}",
            "TELEMETRY_OTEL_GRAPHITE_TAGGED": "true",
        }
    )
    exporter.export(data, 5_000)
    exporter.shutdown()
    value, _ = _graphite_line(tcp_sink.lines(), f"service.requests{GRAPHITE_TAGS}")  # no prefix
    assert value == 3.0


def test_graphite_protocol_udp_sends_datagrams_of_whole_lines(
    data: MetricsData, udp_sink: socket.socket
) -> None:
    port = udp_sink.getsockname()[1]
    exporter = _only(
        {
            "OTEL_METRICS_EXPORTER": "graphite",
            "TELEMETRY_OTEL_GRAPHITE_ENDPOINT": f"127.0.0.1:{port}",
            "TELEMETRY_OTEL_GRAPHITE_PROTOCOL": "udp",
            "TELEMETRY_OTEL_GRAPHITE_PREFIX": "viaudp",
        }
    )
    assert isinstance(exporter, GraphiteExporter)
    assert exporter.protocol == "udp"
    exporter.export(data, 5_000)
    exporter.shutdown()
    path = f"viaudp.service.requests{GRAPHITE_TAGS}"
    lines: list[str] = []
    deadline = time.monotonic() + 5
    while not any(_without_identity(line.split(" ")[0], "tagged") == path for line in lines):
        assert time.monotonic() < deadline, lines[:5]
        datagram = udp_sink.recv(65536).decode("utf-8")
        assert datagram.endswith("\n")  # whole lines only
        lines += datagram.splitlines()
    assert _graphite_line(lines, path) == (3.0, _requests_time(data) // 10**9)


def test_a_bracketed_ipv6_endpoint_is_host_and_port() -> None:
    exporter = _only({"OTEL_METRICS_EXPORTER": "graphite", "TELEMETRY_OTEL_GRAPHITE_ENDPOINT": "[::1]:2004"})
    assert isinstance(exporter, GraphiteExporter)
    assert (exporter.host, exporter.port) == ("::1", 2004)


@pytest.mark.parametrize(
    "endpoint", ["localhost", "localhost:", ":2003", "localhost:http", "localhost:0", "localhost:65536"]
)
def test_a_bad_graphite_endpoint_is_a_configuration_error(endpoint: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        exporters_from_env(
            {"OTEL_METRICS_EXPORTER": "graphite", "TELEMETRY_OTEL_GRAPHITE_ENDPOINT": endpoint}
        )
    assert str(raised.value) == f"TELEMETRY_OTEL_GRAPHITE_ENDPOINT={endpoint!r} is not host:port"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TELEMETRY_OTEL_GRAPHITE_PROTOCOL", "sctp", "='sctp'; allowed: tcp, udp"),
        ("TELEMETRY_OTEL_GRAPHITE_TAGGED", "yes", "='yes'; allowed: true, false"),
        ("TELEMETRY_OTEL_GRAPHITE_TAGGED", "1", "='1'; allowed: true, false"),
    ],
)
def test_a_bad_graphite_setting_is_a_configuration_error_naming_the_allowed_values(
    name: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        exporters_from_env({"OTEL_METRICS_EXPORTER": "graphite", name: value})
    assert str(raised.value) == f"{name}{message}"


# -- InfluxDB ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Write:
    """One request the InfluxDB stand-in received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: str


class _InfluxHandler(http.server.BaseHTTPRequestHandler):
    writes: ClassVar[list[_Write]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode("utf-8")
        url = urlsplit(self.path)
        type(self).writes.append(
            _Write(
                "POST",
                url.path,
                parse_qs(url.query, keep_blank_values=True),
                {key.lower(): value for key, value in self.headers.items()},
                body,
            )
        )
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def influx_url() -> Iterator[str]:
    """Base URL of an HTTP server answering every POST with 204, kept in ``_InfluxHandler.writes``."""
    _InfluxHandler.writes = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _InfluxHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def _influx_line(body: str) -> tuple[str, int]:
    """(fields, timestamp) of the ``service.requests`` line of ``memory``."""
    assert body.endswith("\n")
    found = [
        line.split(" ")
        for line in body.splitlines()
        if _without_identity(line.split(" ")[0], "influx") == f"service.requests{INFLUX_TAGS}"
    ]
    assert len(found) == 1, body[:500]
    [(_, fields, stamp)] = found
    assert re.fullmatch(r"[0-9]+", stamp), stamp
    return fields, int(stamp)


def test_influxdb_defaults_are_localhost_8086_and_seconds() -> None:
    exporter = _only({"OTEL_METRICS_EXPORTER": "influxdb", "TELEMETRY_OTEL_INFLUXDB_DATABASE": "telemetry"})
    assert isinstance(exporter, InfluxExporter)
    assert exporter.name == "influxdb(http://localhost:8086, db=telemetry)"
    assert exporter.precision == "s"


def test_influxdb_v1_writes_to_the_database_with_precision_and_credentials(
    data: MetricsData, influx_url: str
) -> None:
    exporter = _only(
        {
            "OTEL_METRICS_EXPORTER": "influxdb",
            "TELEMETRY_OTEL_INFLUXDB_URL": influx_url,
            "TELEMETRY_OTEL_INFLUXDB_DATABASE": "telemetry",
            "TELEMETRY_OTEL_INFLUXDB_USERNAME": "writer",
            "TELEMETRY_OTEL_INFLUXDB_PASSWORD": "pass word",
            "TELEMETRY_OTEL_INFLUXDB_PRECISION": "ms",
        }
    )
    exporter.export(data, 5_000)
    [write] = _InfluxHandler.writes
    assert (write.method, write.path) == ("POST", "/write")
    assert write.query == {"db": ["telemetry"], "precision": ["ms"], "u": ["writer"], "p": ["pass word"]}
    assert write.headers["content-type"] == "text/plain; charset=utf-8"
    assert "authorization" not in write.headers
    assert _influx_line(write.body) == ("value=3i", _requests_time(data) // 10**6)


def test_influxdb_v1_without_precision_writes_seconds_and_no_credentials(
    data: MetricsData, influx_url: str
) -> None:
    exporter = _only(
        {
            "OTEL_METRICS_EXPORTER": "influxdb",
            "TELEMETRY_OTEL_INFLUXDB_URL": influx_url,
            "TELEMETRY_OTEL_INFLUXDB_DATABASE": "telemetry",
        }
    )
    exporter.export(data, 5_000)
    [write] = _InfluxHandler.writes
    assert write.query == {"db": ["telemetry"], "precision": ["s"]}
    assert _influx_line(write.body) == ("value=3i", _requests_time(data) // 10**9)


def test_influxdb_v1_spells_microseconds_u(data: MetricsData, influx_url: str) -> None:
    exporter = _only(
        {
            "OTEL_METRICS_EXPORTER": "influxdb",
            "TELEMETRY_OTEL_INFLUXDB_URL": f"{influx_url}/",  # a trailing slash is not doubled
            "TELEMETRY_OTEL_INFLUXDB_DATABASE": "telemetry",
            "TELEMETRY_OTEL_INFLUXDB_PRECISION": "us",
        }
    )
    exporter.export(data, 5_000)
    [write] = _InfluxHandler.writes
    assert (write.path, write.query) == ("/write", {"db": ["telemetry"], "precision": ["u"]})
    assert _influx_line(write.body) == ("value=3i", _requests_time(data) // 10**3)


def test_influxdb_v2_writes_to_org_and_bucket_with_the_token(data: MetricsData, influx_url: str) -> None:
    exporter = _only(
        {
            "OTEL_METRICS_EXPORTER": "influxdb",
            "TELEMETRY_OTEL_INFLUXDB_URL": f"{influx_url}/influx",  # behind a path prefix
            "TELEMETRY_OTEL_INFLUXDB_ORG": "acme",
            "TELEMETRY_OTEL_INFLUXDB_BUCKET": "agents",
            "TELEMETRY_OTEL_INFLUXDB_TOKEN": "t0ken==",
            "TELEMETRY_OTEL_INFLUXDB_PRECISION": "ns",
        }
    )
    exporter.export(data, 5_000)
    [write] = _InfluxHandler.writes
    assert (write.method, write.path) == ("POST", "/influx/api/v2/write")
    assert write.query == {"org": ["acme"], "bucket": ["agents"], "precision": ["ns"]}
    assert write.headers["authorization"] == "Token t0ken=="
    assert write.headers["content-type"] == "text/plain; charset=utf-8"
    assert _influx_line(write.body) == ("value=3i", _requests_time(data))


def test_influxdb_v2_keeps_microseconds_us(data: MetricsData, influx_url: str) -> None:
    exporter = _only(
        {
            "OTEL_METRICS_EXPORTER": "influxdb",
            "TELEMETRY_OTEL_INFLUXDB_URL": influx_url,
            "TELEMETRY_OTEL_INFLUXDB_ORG": "acme",
            "TELEMETRY_OTEL_INFLUXDB_BUCKET": "agents",
            "TELEMETRY_OTEL_INFLUXDB_TOKEN": "t",
            "TELEMETRY_OTEL_INFLUXDB_PRECISION": "us",
        }
    )
    exporter.export(data, 5_000)
    [write] = _InfluxHandler.writes
    assert write.query["precision"] == ["us"]
    assert _influx_line(write.body) == ("value=3i", _requests_time(data) // 10**3)


@pytest.mark.parametrize("precision", ["u", "n", "S", "seconds"])
def test_a_bad_influxdb_precision_is_a_configuration_error_naming_the_allowed_values(precision: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        exporters_from_env(
            {
                "OTEL_METRICS_EXPORTER": "influxdb",
                "TELEMETRY_OTEL_INFLUXDB_DATABASE": "telemetry",
                "TELEMETRY_OTEL_INFLUXDB_PRECISION": precision,
            }
        )
    assert str(raised.value) == f"TELEMETRY_OTEL_INFLUXDB_PRECISION={precision!r}; allowed: s, ms, us, ns"


V1_OR_V2 = "InfluxDB needs database (v1) or org, bucket and token (v2)"
V2_INCOMPLETE = "InfluxDB v2 needs org, bucket and token"


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({}, V1_OR_V2),
        ({"TELEMETRY_OTEL_INFLUXDB_DATABASE": ""}, V1_OR_V2),
        ({"TELEMETRY_OTEL_INFLUXDB_USERNAME": "writer"}, V1_OR_V2),
        ({"TELEMETRY_OTEL_INFLUXDB_TOKEN": "t"}, V1_OR_V2),
        ({"TELEMETRY_OTEL_INFLUXDB_BUCKET": "agents"}, V2_INCOMPLETE),
        ({"TELEMETRY_OTEL_INFLUXDB_ORG": "acme", "TELEMETRY_OTEL_INFLUXDB_BUCKET": "agents"}, V2_INCOMPLETE),
        ({"TELEMETRY_OTEL_INFLUXDB_ORG": "acme", "TELEMETRY_OTEL_INFLUXDB_TOKEN": "t"}, V2_INCOMPLETE),
    ],
)
def test_an_incomplete_influxdb_target_is_a_configuration_error_naming_the_variables(
    settings: dict[str, str], problem: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        exporters_from_env({"OTEL_METRICS_EXPORTER": "influxdb", **settings})
    assert str(raised.value) == (
        f"{problem}: set TELEMETRY_OTEL_INFLUXDB_DATABASE (v1) or TELEMETRY_OTEL_INFLUXDB_ORG, _BUCKET and "
        "_TOKEN (v2)"
    )


# -- through setup_telemetry ---------------------------------------------------------------------


def test_setup_telemetry_pushes_to_the_exporters_the_environment_names(
    shared: None, clean_env: pytest.MonkeyPatch, tcp_sink: _TcpSink, influx_url: str
) -> None:
    for name, value in {
        "OTEL_METRICS_EXPORTER": "graphite,influxdb",
        "OTEL_METRIC_EXPORT_INTERVAL": "3600000",  # only the final export at shutdown
        "TELEMETRY_OTEL_GRAPHITE_ENDPOINT": f"127.0.0.1:{tcp_sink.port}",
        "TELEMETRY_OTEL_GRAPHITE_TAGGED": "false",
        "TELEMETRY_OTEL_GRAPHITE_PREFIX": "env",
        "TELEMETRY_OTEL_INFLUXDB_URL": influx_url,
        "TELEMETRY_OTEL_INFLUXDB_DATABASE": "from_env",
    }.items():
        clean_env.setenv(name, value)
    telemetry = setup_telemetry(service_name="env-agent", set_global=False)
    get_meter("env.module").create_counter("env.jobs", "{job}", "Jobs.").add(5, {"job.kind": "import"})
    shutdown_telemetry()  # the last collection is exported at shutdown
    assert [stats.sent for stats in telemetry.exports.stats()] == [1, 1]
    assert _graphite_line(tcp_sink.lines(), "env.env.jobs.job_kind.import")[0] == 5.0
    [write] = _InfluxHandler.writes
    assert (write.path, write.query) == ("/write", {"db": ["from_env"], "precision": ["s"]})
    jobs = [line.split(" ")[1] for line in write.body.splitlines() if line.startswith("env.jobs,")]
    assert jobs == ["value=5i"]


def test_setup_telemetry_refuses_a_bad_exporter_setting(shared: None, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("OTEL_METRICS_EXPORTER", "graphite")
    clean_env.setenv("TELEMETRY_OTEL_GRAPHITE_PROTOCOL", "quic")
    with pytest.raises(
        ConfigurationError, match=r"TELEMETRY_OTEL_GRAPHITE_PROTOCOL='quic'; allowed: tcp, udp"
    ):
        setup_telemetry(service_name="env-agent", set_global=False)
