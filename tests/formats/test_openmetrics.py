"""Tests for the OpenMetrics 1.0 encoder, on ``MetricsData`` produced by a real SDK ``MeterProvider``.

Every output is read back by ``prometheus_client``'s strict OpenMetrics parser and compared with
the text format 0.0.4 output of the same data (read by the text parser), with the reference
exporter (``PrometheusMetricReader`` + the OpenMetrics ``generate_latest``), and scraped by a real
Prometheus.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from _data import Record, collect, meter_provider, metrics_data, record_hostile, record_realistic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    InMemoryMetricReader,
    Metric,
    MetricsData,
    NumberDataPoint,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.util.types import AttributeValue
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from telemetry_otel.formats import (
    OPENMETRICS_CONTENT_TYPE,
    encode_openmetrics,
    encode_prometheus_text,
    negotiate_exposition,
    wants_gzip,
)

# family name -> (type, unit, HELP, [(sample name, labels, value)])
Families = dict[str, tuple[str, str, str, list[tuple[str, dict[str, str], float]]]]

HOSTILE_VALUES: tuple[str, ...] = (
    "with space",
    "a,b,c",
    "k=v",
    'say "hi"',
    "back\\slash",
    "trailing backslash\\",
    '\\"',
    "\\n is not a newline",
    "line\nbreak",
    "\n",
    "tab\there\rcr",
    "ünïcødé ✓ 日本語 \u2028",
    "",
    "} {",
    "# not a comment",
    ' # {a="b"} 1',
    "# EOF",
)

_record_hostile = record_hostile(HOSTILE_VALUES)


def _families(text: str, parse: Callable[[str], Iterable[Any]]) -> Families:
    families: Families = {}
    for family in parse(text):
        assert family.name not in families, f"family {family.name} appears twice"
        families[family.name] = (
            family.type,
            family.unit,
            family.documentation,
            [(sample.name, sample.labels, sample.value) for sample in family.samples],
        )
    return families


def _without_created(families: Families) -> Families:
    return {
        name: (kind, unit, help_text, [sample for sample in samples if not sample[0].endswith("_created")])
        for name, (kind, unit, help_text, samples) in families.items()
    }


# --- 1. the same data as text format 0.0.4 ------------------------------------------------------


@pytest.mark.parametrize("record", [record_realistic, _record_hostile], ids=["realistic", "hostile"])
def test_same_families_as_text_format(record: Record) -> None:
    data = collect(record)
    openmetrics = encode_openmetrics(data)
    ours = _families(openmetrics, parse_openmetrics)  # strict: raises on anything invalid
    text = _families(encode_prometheus_text(data), parse_text)

    # Documented differences: target_info is the info family "target"; OpenMetrics has units and
    # _created samples; text format 0.0.4 has no UNIT (its parser reports "").
    target_type, _, target_help, target_samples = text.pop("target_info")
    assert target_type == "gauge"
    assert ours.pop("target") == ("info", "", target_help, target_samples)
    assert list(ours) == list(text)
    units = {name: unit for name, (_, unit, _, _) in ours.items()}
    assert _without_created(ours) == {
        name: (kind, units[name], help_text, samples) for name, (kind, _, help_text, samples) in text.items()
    }
    assert openmetrics.endswith("\n# EOF\n")
    assert "\n\n" not in openmetrics


def test_realistic_units_and_created_samples() -> None:
    before = time.time_ns()
    data = collect(record_realistic)
    after = time.time_ns()
    families = _families(encode_openmetrics(data), parse_openmetrics)
    assert {name: (kind, unit) for name, (kind, unit, _, _) in families.items()} == {
        "target": ("info", ""),
        "service_requests": ("counter", ""),
        "service_request_duration_seconds": ("histogram", "seconds"),
        "service_requests_active": ("gauge", ""),
        "process_memory_usage_bytes": ("gauge", "bytes"),
        "process_cpu_utilization_ratio": ("gauge", "ratio"),
    }
    for name in ("service_requests", "service_request_duration_seconds"):
        samples = families[name][3]
        created = [
            (labels, value) for sample_name, labels, value in samples if sample_name == f"{name}_created"
        ]
        series = {
            tuple(sorted(labels.items()))
            for sample_name, labels, _ in samples
            if sample_name in (f"{name}_total", f"{name}_count")
        }
        assert {tuple(sorted(labels.items())) for labels, _ in created} == series
        assert len(created) == len(series) == 4
        for _, value in created:
            assert before / 1e9 - 1e-6 <= value <= after / 1e9 + 1e-6
    assert not any(name.endswith("_created") for name, _, _ in families["service_requests_active"][3])


# --- 2. oracle: the reference exporter ----------------------------------------------------------

# Deliberate differences from opentelemetry-exporter-prometheus + prometheus_client, normalised below:
# * A Gauge in unit "1" gets the specification's "_ratio" suffix and UNIT here; the reference adds
#   neither.
# * _created samples (the specification says counters and histograms should have them; the
#   reference exporter gives prometheus_client no created time).
# * Empty label values: the reference writes otel_scope_schema_url="" (and an empty
#   otel_scope_version); this encoder omits empty labels, which Prometheus treats as absent.
# * "le": the reference writes str(float) ("1000000000.0"), this encoder floatToGoString ("1e+09").
_RATIO_RENAMES = {"system_cpu_utilization_ratio": "system_cpu_utilization"}


def _normalised(families: Families, renames: Mapping[str, str] | None = None) -> Families:
    renames = renames or {}
    result: Families = {}
    for name, (kind, unit, help_text, samples) in _without_created(families).items():
        normalised = []
        for sample_name, labels, value in samples:
            for old, new in renames.items():
                if sample_name.startswith(old):
                    sample_name = new + sample_name[len(old) :]
            normalised.append(
                (
                    sample_name,
                    {
                        key: repr(float(text)) if key == "le" else text
                        for key, text in sorted(labels.items())
                        if text != ""
                    },
                    value,
                )
            )
        normalised.sort(key=repr)
        new_name = renames.get(name, name)
        result[new_name] = (kind, "" if new_name != name else unit, help_text, normalised)
    return result


def test_matches_reference_exporter() -> None:
    registry = CollectorRegistry()
    reference = PrometheusMetricReader(registry=registry)
    reader = InMemoryMetricReader()
    provider = meter_provider(reader, reference)
    try:
        _record_hostile(provider)
        data = reader.get_metrics_data()
        assert data is not None
        ours_text = encode_openmetrics(data)
        theirs_text = generate_openmetrics(registry).decode("utf-8")
    finally:
        provider.shutdown()

    raw_ours = _families(ours_text, parse_openmetrics)
    ours = _normalised(raw_ours, _RATIO_RENAMES)
    theirs = _normalised(_families(theirs_text, parse_openmetrics))
    assert list(ours) == list(theirs)
    for name, family in theirs.items():
        assert ours[name] == family, name
    # The reference run really exercised the interesting cases.
    assert ours["target"][0] == "info"
    assert ours["service_requests"][2] == 'Requests, "quoted" \\ and\nmultiline.'
    assert ours["net_io_sent_bytes"][:2] == ("counter", "bytes")
    assert ours["rpc_client_duration_milliseconds"][:2] == ("histogram", "milliseconds")
    assert ours["net_throughput_bytes_per_second"][:2] == ("counter", "bytes_per_second")
    assert ours["events_rate_per_second"][:2] == ("counter", "per_second")
    assert raw_ours["system_cpu_utilization_ratio"][:2] == ("gauge", "ratio")
    assert any(name == "cache_hits_created" for name, _, _ in raw_ours["cache_hits"][3])


# --- 3. exact output ----------------------------------------------------------------------------


def test_exact_output_for_each_family_type() -> None:
    start = 1_700_000_000_250_000_000
    labels = {"http.route": "/a"}
    data = metrics_data(
        Metric(
            name="io.sent",
            description='Bytes "sent".',
            unit="By",
            data=Sum(
                data_points=[NumberDataPoint(labels, start, start + 1, 5)],
                aggregation_temporality=AggregationTemporality.CUMULATIVE,
                is_monotonic=True,
            ),
        ),
        Metric(
            name="latency",
            description="",
            unit="s",
            data=Histogram(
                data_points=[
                    HistogramDataPoint(
                        attributes={},
                        start_time_unix_nano=1_700_000_000_000_000_000,
                        time_unix_nano=start + 1,
                        count=3,
                        sum=2.5,
                        bucket_counts=(0, 1, 2),
                        explicit_bounds=(0.005, 1.0),
                        min=0.5,
                        max=1.5,
                    )
                ],
                aggregation_temporality=AggregationTemporality.CUMULATIVE,
            ),
        ),
        Metric(
            name="busy",
            description="Busy.",
            unit="1",
            data=Gauge(data_points=[NumberDataPoint(labels, 0, start + 1, 0.5)]),
        ),
        resource=Resource({"service.name": 'say "hi"'}),
    )
    assert encode_openmetrics(data) == (
        "# HELP target Target metadata\n"
        "# TYPE target info\n"
        'target_info{service_name="say \\"hi\\""} 1\n'
        '# HELP io_sent_bytes Bytes \\"sent\\".\n'
        "# TYPE io_sent_bytes counter\n"
        "# UNIT io_sent_bytes bytes\n"
        'io_sent_bytes_total{http_route="/a",otel_scope_name="producer"} 5\n'
        'io_sent_bytes_created{http_route="/a",otel_scope_name="producer"} 1700000000.25\n'
        "# TYPE latency_seconds histogram\n"
        "# UNIT latency_seconds seconds\n"
        'latency_seconds_bucket{otel_scope_name="producer",le="0.005"} 0\n'
        'latency_seconds_bucket{otel_scope_name="producer",le="1.0"} 1\n'
        'latency_seconds_bucket{otel_scope_name="producer",le="+Inf"} 3\n'
        'latency_seconds_sum{otel_scope_name="producer"} 2.5\n'
        'latency_seconds_count{otel_scope_name="producer"} 3\n'
        'latency_seconds_created{otel_scope_name="producer"} 1700000000.0\n'
        "# HELP busy_ratio Busy.\n"
        "# TYPE busy_ratio gauge\n"
        "# UNIT busy_ratio ratio\n"
        'busy_ratio{http_route="/a",otel_scope_name="producer"} 0.5\n'
        "# EOF\n"
    )
    _families(encode_openmetrics(data), parse_openmetrics)


def test_empty_data_is_just_eof() -> None:
    assert encode_openmetrics(MetricsData(resource_metrics=[])) == "# EOF\n"
    assert _families("# EOF\n", parse_openmetrics) == {}


@pytest.mark.parametrize(
    ("kind", "name", "unit", "family", "expected_unit"),
    [
        ("counter", "service.requests", "{request}", "service_requests", ""),
        ("counter", "requests_total", "", "requests", ""),
        ("counter", "io.sent", "By", "io_sent_bytes", "bytes"),
        ("counter", "cpu.time_seconds", "s", "cpu_time_seconds", "seconds"),
        ("counter", "jobs", "1", "jobs", ""),
        ("counter", "events", "1/s", "events_per_second", "per_second"),
        ("counter", "odd-name..x/y", "packets", "odd_name_x_y_packets", "packets"),
        ("updown", "queue.size", "1", "queue_size", ""),
        ("updown", "heap", "MiBy", "heap_mebibytes", "mebibytes"),
        ("histogram", "http.server.request.duration", "s", "http_server_request_duration_seconds", "seconds"),
        ("histogram", "body.size", "KBy", "body_size_kilobytes", "kilobytes"),
        ("gauge", "cpu.utilization", "1", "cpu_utilization_ratio", "ratio"),
        ("gauge", "cpu.ratio", "1", "cpu_ratio", "ratio"),
        ("gauge", "room.temp", "Cel", "room_temp_celsius", "celsius"),
        ("gauge", "rate", "{packet}/s", "rate_per_second", "per_second"),
    ],
)
def test_family_names_and_units(kind: str, name: str, unit: str, family: str, expected_unit: str) -> None:
    def record(provider: MeterProvider) -> None:
        meter = provider.get_meter("names")
        if kind == "counter":
            meter.create_counter(name, unit=unit, description="x").add(1)
        elif kind == "updown":
            meter.create_up_down_counter(name, unit=unit, description="x").add(1)
        elif kind == "histogram":
            meter.create_histogram(name, unit=unit, description="x").record(1)
        else:
            meter.create_gauge(name, unit=unit, description="x").set(1)

    text = encode_openmetrics(collect(record, resource=Resource.get_empty()))
    prom_type = {"counter": "counter", "updown": "gauge", "histogram": "histogram", "gauge": "gauge"}[kind]
    assert f"# TYPE {family} {prom_type}\n" in text
    assert (f"# UNIT {family} {expected_unit}\n" in text) == bool(expected_unit)
    ((parsed_name, (parsed_type, parsed_unit, _, _)),) = _families(text, parse_openmetrics).items()
    assert (parsed_name, parsed_type, parsed_unit) == (family, prom_type, expected_unit)


# --- 4. escaping round-trips ------------------------------------------------------------------


def _round_trip_label(value: str) -> str:
    def record(provider: MeterProvider) -> None:
        provider.get_meter("escaping").create_counter("escaped", description="x").add(1, {"value": value})

    families = _families(encode_openmetrics(collect(record)), parse_openmetrics)
    ((sample_name, labels, _), (created_name, created_labels, _)) = families["escaped"][3]
    assert (sample_name, created_name, created_labels) == ("escaped_total", "escaped_created", labels)
    return labels["value"]


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_hostile_label_values_round_trip(value: str) -> None:
    assert _round_trip_label(value) == value


@settings(max_examples=200, deadline=None)
@given(value=st.text())
def test_arbitrary_label_values_round_trip(value: str) -> None:
    assert _round_trip_label(value) == value


@pytest.mark.parametrize(
    "description",
    ['Back\\slash, "quotes", and\na newline.', '"', "\\", "\\n literal", "ends with backslash \\", "# EOF"],
)
def test_help_text_round_trips(description: str) -> None:
    def record(provider: MeterProvider) -> None:
        provider.get_meter("help").create_counter("documented", description=description).add(1)

    text = encode_openmetrics(collect(record, resource=Resource.get_empty()))
    (help_line,) = [line for line in text.splitlines() if line.startswith("# HELP documented ")]
    assert '"' not in help_line.replace('\\"', "")
    assert _families(text, parse_openmetrics)["documented"][2] == description


# --- 5. what OpenMetrics cannot carry ------------------------------------------------------------


def test_histogram_sum_only_when_monotonic() -> None:
    def point(
        attributes: dict[str, AttributeValue], bounds: Sequence[float], total: float
    ) -> HistogramDataPoint:
        return HistogramDataPoint(attributes, 1, 2, 2, total, (1, 1, 0), tuple(bounds), -1.0, 1.0)

    data = metrics_data(
        Metric(
            name="signed",
            description="s",
            unit="",
            data=Histogram(
                data_points=[
                    point({"case": "negative bound"}, (-1.0, 0.0), 3.0),
                    point({"case": "negative sum"}, (0.0, 1.0), -0.5),
                    point({"case": "nan sum"}, (0.0, 1.0), math.nan),
                    point({"case": "fine"}, (0.0, 1.0), 0.5),
                ],
                aggregation_temporality=AggregationTemporality.CUMULATIVE,
            ),
        )
    )
    families = _families(encode_openmetrics(data), parse_openmetrics)
    kept = {
        (labels["case"], name.rsplit("_", 1)[1])
        for name, labels, _ in families["signed"][3]
        if not name.endswith("_bucket")
    }
    assert kept == {
        ("negative bound", "created"),
        ("negative sum", "created"),
        ("nan sum", "created"),
        ("fine", "created"),
        ("fine", "sum"),
        ("fine", "count"),
    }
    # Every point keeps all its buckets; text format 0.0.4 keeps _sum and _count everywhere.
    assert sum(name.endswith("_bucket") for name, _, _ in families["signed"][3]) == 12
    assert encode_prometheus_text(data).count("signed_sum{") == 4


def test_invalid_counter_points_are_dropped(caplog: pytest.LogCaptureFixture) -> None:
    points = [
        NumberDataPoint({"v": name}, 1, 2, value)
        for name, value in (("ok", 1.5), ("negative", -1), ("nan", math.nan), ("inf", math.inf))
    ]
    data = metrics_data(
        Metric(
            name="odd",
            description="o",
            unit="",
            data=Sum(
                data_points=points,
                aggregation_temporality=AggregationTemporality.CUMULATIVE,
                is_monotonic=True,
            ),
        )
    )
    with caplog.at_level(logging.WARNING):
        text = encode_openmetrics(data)
    totals = {
        labels["v"]: value
        for name, labels, value in _families(text, parse_openmetrics)["odd"][3]
        if name == "odd_total"
    }
    assert totals == {"ok": 1.5, "inf": math.inf}
    assert any("2 point(s)" in entry.getMessage() and "odd" in entry.getMessage() for entry in caplog.records)
    assert encode_prometheus_text(data).count("odd_total{") == 4


def test_clashing_families_are_dropped(caplog: pytest.LogCaptureFixture) -> None:
    def record(provider: MeterProvider) -> None:
        meter = provider.get_meter("clash")
        meter.create_counter("jobs", description="Counter.").add(1)
        meter.create_gauge("jobs", description="Same family name as the counter.").set(2)
        meter.create_gauge("jobs_created", description="A counter's created sample.").set(3)
        meter.create_histogram("lat", description="Histogram.").record(1)
        meter.create_gauge("lat_count", description="A histogram's count sample.").set(4)
        meter.create_gauge("target", description="The target info family.").set(5)
        meter.create_gauge("fine", description="No clash.").set(6)

    data = collect(record)
    with caplog.at_level(logging.WARNING):
        text = encode_openmetrics(data)
    families = _families(text, parse_openmetrics)
    assert list(families) == ["target", "jobs", "lat", "fine"]
    assert families["jobs"][0] == "counter"
    assert families["target"][0] == "info"
    dropped = {
        entry.getMessage().split("'")[1] for entry in caplog.records if "Dropping" in entry.getMessage()
    }
    assert dropped == {"jobs", "jobs_created", "lat_count", "target"}
    # Text format 0.0.4 has room for the others (its counter family is "jobs_total", and it has no
    # _created samples), but not for a gauge named like the histogram's own lat_count samples.
    text_types = [line for line in encode_prometheus_text(data).splitlines() if line.startswith("# TYPE")]
    assert text_types == [
        "# TYPE target_info gauge",
        "# TYPE jobs_total counter",
        "# TYPE jobs gauge",
        "# TYPE jobs_created gauge",
        "# TYPE lat histogram",
        "# TYPE target gauge",
        "# TYPE fine gauge",
    ]


def test_exponential_histograms_and_delta_are_skipped() -> None:
    data = metrics_data(
        Metric(
            name="delta",
            description="d",
            unit="",
            data=Sum(
                data_points=[NumberDataPoint({}, 1, 2, 1)],
                aggregation_temporality=AggregationTemporality.DELTA,
                is_monotonic=True,
            ),
        ),
        Metric(name="kept", description="k", unit="", data=Gauge(data_points=[NumberDataPoint({}, 0, 2, 1)])),
    )
    assert (
        encode_openmetrics(data)
        == '# HELP kept k\n# TYPE kept gauge\nkept{otel_scope_name="producer"} 1\n# EOF\n'
    )


# --- 6. property: any recording parses strictly and agrees with text format 0.0.4 ---------------

_NAMES = st.from_regex(r"[a-zA-Z][-_./a-zA-Z0-9]{0,12}", fullmatch=True)
_UNITS = st.sampled_from(["", "1", "s", "ms", "By", "By/s", "{request}", "1/s", "Cel", "packets", "%"])
_KINDS = st.sampled_from(["counter", "updown", "histogram", "gauge"])
_ATTRIBUTES = st.dictionaries(
    st.from_regex(r"[a-z][a-z._-]{0,6}", fullmatch=True), st.text(max_size=8), max_size=3
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    metrics=st.lists(
        st.tuples(_KINDS, _NAMES, _UNITS, st.text(max_size=12), _ATTRIBUTES, st.floats(0, 1e6)),
        min_size=1,
        max_size=6,
    )
)
def test_any_recording_parses_strictly(
    metrics: list[tuple[str, str, str, str, dict[str, str], float]],
) -> None:
    def record(provider: MeterProvider) -> None:
        meter = provider.get_meter("property")
        for index, (kind, name, unit, description, attributes, value) in enumerate(metrics):
            unique = f"{name}.m{index}"  # one instrument per entry, never an SDK duplicate
            if kind == "counter":
                meter.create_counter(unique, unit=unit, description=description).add(value, attributes)
            elif kind == "updown":
                meter.create_up_down_counter(unique, unit=unit, description=description).add(
                    -value, attributes
                )
            elif kind == "histogram":
                meter.create_histogram(unique, unit=unit, description=description).record(value, attributes)
            else:
                meter.create_gauge(unique, unit=unit, description=description).set(value, attributes)

    data = collect(record)
    ours = _without_created(_families(encode_openmetrics(data), parse_openmetrics))
    text = _families(encode_prometheus_text(data), parse_text)
    text.pop("target_info")
    ours.pop("target")
    # Clashes can only drop families; whatever is there is what text format 0.0.4 has.
    for name, (kind, _, _, samples) in ours.items():
        assert (text[name][0], text[name][3]) == (kind, samples)


# --- 7. a real Prometheus ----------------------------------------------------------------------


def _prometheus_binary() -> str:
    path = shutil.which("prometheus") or shutil.which("/usr/bin/prometheus")
    if path is None:
        pytest.fail(
            "prometheus is required for this test and was not found on PATH or at /usr/bin/prometheus"
        )
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _api(base: str, path: str, **query: str) -> Any:
    url = f"{base}{path}?{urllib.parse.urlencode(query)}" if query else f"{base}{path}"
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def test_real_prometheus_scrapes_openmetrics(tmp_path: Path) -> None:
    binary = _prometheus_binary()
    data = collect(record_realistic)
    served: list[tuple[str, bool]] = []

    class Target(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            # Negotiated like /metrics: Prometheus asks for OpenMetrics and gzip.
            encode, content_type = negotiate_exposition(self.headers.get("Accept"))
            body = encode(data).encode("utf-8")
            compressed = wants_gzip(self.headers.get("Accept-Encoding"))
            if compressed:
                body = gzip.compress(body)
            served.append((content_type, compressed))
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            if compressed:
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    target = ThreadingHTTPServer(("127.0.0.1", 0), Target)
    target_address = f"127.0.0.1:{target.server_address[1]}"
    serving = threading.Thread(target=target.serve_forever, kwargs={"poll_interval": 0.05})
    serving.start()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: openmetrics\n    static_configs:\n"
        f"      - targets: ['{target_address}']\n",
        encoding="utf-8",
    )
    log_path = tmp_path / "prometheus.log"
    process: subprocess.Popen[bytes] | None = None
    try:
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp_path / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 40
        scraped: dict[str, Any] = {}
        while time.monotonic() < deadline:
            assert process.poll() is None, log_path.read_text(encoding="utf-8", errors="replace")
            try:
                active = _api(base, "/api/v1/targets")["activeTargets"]
            except (urllib.error.URLError, ConnectionError):
                active = []  # not listening yet
            if active and active[0]["health"] != "unknown":  # "unknown" until the first scrape
                scraped = active[0]
                break
            time.sleep(0.2)
        assert scraped, f"no scrape within 40 s\n{log_path.read_text(encoding='utf-8', errors='replace')}"
        assert (scraped["scrapeUrl"], scraped["health"], scraped["lastError"]) == (
            f"http://{target_address}/metrics",
            "up",
            "",
        )
        assert served
        assert set(served) == {(OPENMETRICS_CONTENT_TYPE, True)}

        result = _api(base, "/api/v1/query", query="sum(service_requests_total)")["result"]
        assert [float(sample["value"][1]) for sample in result] == [5.0]
        routes = _api(base, "/api/v1/query", query='service_requests_total{http_route="/cart"}')["result"]
        assert [sample["value"][1] for sample in routes] == ["2"]
        info = _api(base, "/api/v1/query", query="target_info")["result"]
        assert [sample["metric"]["service_name"] for sample in info] == ["checkout"]
        # Prometheus 2.x ingests _created samples as their own series (in seconds).
        created = _api(base, "/api/v1/query", query="count(service_request_duration_seconds_created)")[
            "result"
        ]
        assert [sample["value"][1] for sample in created] == ["4"]
    finally:
        if process is not None:
            _stop(process)
        target.shutdown()
        target.server_close()
        serving.join(timeout=10)


@pytest.mark.parametrize(
    ("start_unix_nano", "created"),
    [
        (1_712_345_678_500_000_000, "1712345678.5"),
        (1_712_345_678_000_000_000, "1712345678.0"),
        (1_712_345_678_000_000_001, "1712345678.000000001"),
        (1_000_000_000, "1.0"),
        (999_999_999, "0.999999999"),
        (5, "0.000000005"),
    ],
)
def test_created_is_the_exact_start_time_in_seconds(start_unix_nano: int, created: str) -> None:
    point = NumberDataPoint({"k": "v"}, start_unix_nano, start_unix_nano + 1, 3)
    text = encode_openmetrics(
        metrics_data(Metric("jobs", "", "", Sum([point], AggregationTemporality.CUMULATIVE, True)))
    )
    assert f'jobs_created{{k="v",otel_scope_name="producer"}} {created}\n' in text
