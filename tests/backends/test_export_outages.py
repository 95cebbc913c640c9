"""Outages with exact recovery, on real backends started by the tests, sized to their resolution.

* InfluxDB with ``precision=ms``, a 100 ms interval, down for 100 intervals: every batch collected
  during the outage lands, in order, with exact values, and delivery resumes within an interval of
  the server being ready again. A pipeline with a small buffer beside it drops, and counts it.
* carbon-cache (1 s retention), a 1 s interval, down for 20 intervals: every second of the outage
  lands with the exact value collected in it.
* A restart mid-outage with a spool directory: the process stops (SIGTERM) while InfluxDB is down,
  a new process starts with the same spool, InfluxDB comes back: nothing is lost.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry.sdk.metrics.export import MetricsData

from telemetry_otel import Telemetry, TelemetryConfig
from telemetry_otel.exporters import ExportPipeline, GraphiteExporter, InfluxExporter, RetryPolicy

if TYPE_CHECKING:
    from _support import Carbon, InfluxDB

pytestmark = pytest.mark.backend


@pytest.fixture
def report() -> Any:
    """``report(name, **figures)`` prints a line of figures for docs/reliability.md (``pytest -s``)."""

    def emit(name: str, **figures: Any) -> None:
        print(f"RELIABILITY {name}:", " ".join(f"{key}={value}" for key, value in figures.items()))

    return emit


class _Recording(InfluxExporter):
    """An InfluxDB exporter that keeps the lines of ``metric`` it encodes: what each collection held."""

    def __init__(self, *args: Any, metric: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.metric = metric
        self.encoded: list[tuple[int, int]] = []  # (timestamp in ms, value)

    def encode(self, data: MetricsData) -> bytes:
        payload = super().encode(data)
        for line in payload.decode().splitlines():
            if line.startswith(f"{self.metric} ") or line.startswith(f"{self.metric},"):
                _, fields, stamp = line.rsplit(" ", 2)
                self.encoded.append((int(stamp), int(fields.removeprefix("value=").removesuffix("i"))))
        return payload


class _Ticker:
    """Adds 1 to a counter every 7 ms on a thread of its own (the application)."""

    def __init__(self, telemetry: Telemetry, name: str) -> None:
        self.counter = telemetry.get_meter("outage").create_counter(name)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.007):
            self.counter.add(1)

    def __enter__(self) -> _Ticker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def _influx_points(influxdb: InfluxDB, db: str, measurement: str) -> list[tuple[int, int]]:
    answer = influxdb.http.get(
        "/query", params={"db": db, "q": f'SELECT value FROM "{measurement}"', "epoch": "ms"}
    ).json()
    series = answer["results"][0].get("series", [])
    return [(int(t), int(v)) for serie in series for t, v in serie["values"]]


def _wait_empty(pipeline: ExportPipeline, timeout: float) -> float:
    """Seconds until every exporter's queue is empty."""
    started = time.monotonic()
    while any(s.buffered for s in pipeline.stats()):
        assert time.monotonic() - started < timeout, pipeline.stats()
        time.sleep(0.01)
    return time.monotonic() - started


def test_influxdb_ms_at_100ms_through_an_outage_of_100_intervals(start_influxdb: Any, report: Any) -> None:
    influxdb = start_influxdb()
    db = f"outage_{uuid.uuid4().hex[:8]}"
    influxdb.create_database(db)
    telemetry = Telemetry(
        TelemetryConfig(service_name="influx-outage", live_min_interval_millis=0, export_interval_millis=100)
    )
    exporter = _Recording(influxdb.url, database=db, precision="ms", resource_tags=(), metric="outage.jobs")
    small = InfluxExporter(influxdb.url, database=db + "_small", precision="ms", resource_tags=())
    small.name = "small-buffer"
    pipeline = ExportPipeline(telemetry.export_source, [exporter], interval_millis=100, timeout_millis=2_000)
    tight = ExportPipeline(
        telemetry.export_source,
        [small],
        interval_millis=100,
        timeout_millis=2_000,
        policy=RetryPolicy(max_buffered_batches=10),
    )
    influxdb.create_database(db + "_small")
    try:
        with _Ticker(telemetry, "outage.jobs"):
            pipeline.start()
            tight.start()
            time.sleep(1.0)
            with influxdb.stopped():
                time.sleep(10.0)  # 100 intervals
                held = pipeline.stats()[0].buffered
            ready = time.monotonic()
            sent_before = pipeline.stats()[0].sent
            while pipeline.stats()[0].sent == sent_before:
                assert time.monotonic() - ready < 5
                time.sleep(0.005)
            resumed = time.monotonic() - ready
            drained = _wait_empty(pipeline, 30.0)
            time.sleep(0.5)
        pipeline.shutdown(5_000)
        tight.shutdown(5_000)
    finally:
        telemetry.shutdown()
    stored = _influx_points(influxdb, db, "outage.jobs")
    # Every collection's point arrived, exactly, once, in time order (ms timestamps keep them apart).
    expected = sorted(dict(exporter.encoded).items())
    assert stored == expected, (len(stored), len(expected))
    assert [t for t, _ in stored] == sorted(t for t, _ in stored)
    assert held >= 80, held  # the outage was held, not dropped
    stats = pipeline.stats()[0]
    assert stats.dropped == 0, stats
    assert resumed <= 0.1 + 0.2, resumed  # within one interval of the server being ready
    small_stats = tight.stats()[0]
    assert small_stats.dropped_by_reason.get("count", 0) >= 80, (
        small_stats
    )  # the small buffer dropped, counted
    report(
        "influxdb-ms-100ms-outage-100-intervals",
        held=held,
        points=len(stored),
        resumed_s=round(resumed, 3),
        drained_s=round(drained, 3),
        small_buffer_dropped=small_stats.dropped,
    )


def test_carbon_at_1s_through_an_outage_of_20_intervals(start_carbon: Any, report: Any) -> None:
    carbon: Carbon = start_carbon()
    telemetry = Telemetry(
        TelemetryConfig(
            service_name="carbon-outage", live_min_interval_millis=0, export_interval_millis=1_000
        )
    )
    prefix = f"co{uuid.uuid4().hex[:6]}"
    exporter = GraphiteExporter(*carbon.line_address, tagged=False, prefix=prefix, resource_tags=())
    encoded: list[tuple[int, float]] = []
    encode = exporter.encode

    def recording(data: MetricsData) -> bytes:
        payload = encode(data)
        for line in payload.decode().splitlines():
            path, value, stamp = line.split(" ")
            if path == f"{prefix}.outage.carbon":
                encoded.append((int(stamp), float(value)))
        return payload

    exporter.encode = recording  # type: ignore[method-assign]
    pipeline = ExportPipeline(
        telemetry.export_source, [exporter], interval_millis=1_000, timeout_millis=2_000
    )
    try:
        with _Ticker(telemetry, "outage.carbon"):
            pipeline.start()
            time.sleep(3.0)
            with carbon.stopped():
                time.sleep(20.0)  # 20 intervals
                held = pipeline.stats()[0].buffered
            ready = time.monotonic()
            sent_before = pipeline.stats()[0].sent
            while pipeline.stats()[0].sent == sent_before:
                assert time.monotonic() - ready < 5
                time.sleep(0.01)
            resumed = time.monotonic() - ready
            _wait_empty(pipeline, 30.0)
            time.sleep(2.0)
        pipeline.shutdown(5_000)
    finally:
        telemetry.shutdown()
    expected = sorted(dict(encoded).items())  # carbon keeps the last value written per second
    series = f"{prefix}.outage.carbon"
    deadline = time.monotonic() + 15
    stored: list[tuple[int, float]] = []
    while time.monotonic() < deadline:  # carbon writes what it caches within a second or so
        stored = [(t, v) for t, v in carbon.read_series(series) if t >= expected[0][0]]
        if stored == expected:
            break
        time.sleep(0.2)
    assert stored == expected
    assert held >= 18, held
    assert pipeline.stats()[0].dropped == 0
    assert resumed <= 1.0 + 0.3, resumed
    report("carbon-1s-outage-20-intervals", held=held, points=len(expected), resumed_s=round(resumed, 3))


_SPOOL_SCRIPT = textwrap.dedent(
    """
    import signal, sys, threading, time
    from telemetry_otel import get_meter, setup_telemetry

    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    telemetry = setup_telemetry(live_min_interval_millis=0)
    counter = get_meter("spool").create_counter("spool.jobs")
    print("ready", flush=True)
    while True:
        counter.add(1)
        time.sleep(0.01)
    """
)


def test_a_restart_mid_outage_with_the_spool_loses_nothing(
    start_influxdb: Any, tmp_path: Path, report: Any
) -> None:
    influxdb = start_influxdb()
    db = f"spool_{uuid.uuid4().hex[:8]}"
    influxdb.create_database(db)
    spool = tmp_path / "spool"
    log = tmp_path / "encoded"
    env = {
        **os.environ,
        "OTEL_SERVICE_NAME": "spooled",
        "OTEL_METRICS_EXPORTER": "influxdb",
        "OTEL_METRIC_EXPORT_INTERVAL": "200",
        "TELEMETRY_OTEL_INFLUXDB_URL": influxdb.url,
        "TELEMETRY_OTEL_INFLUXDB_DATABASE": db,
        "TELEMETRY_OTEL_INFLUXDB_PRECISION": "ms",
        "TELEMETRY_OTEL_EXPORT_SPOOL_DIR": str(spool),
        "TELEMETRY_OTEL_SHUTDOWN_TIMEOUT_MILLIS": "3000",
    }

    def run(seconds: float) -> float:
        # From "/": ``python -c`` puts the working directory first on sys.path; test the installed package.
        with subprocess.Popen(
            [sys.executable, "-c", _SPOOL_SCRIPT], env=env, stdout=subprocess.PIPE, text=True, cwd="/"
        ) as process:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready"
            time.sleep(seconds)
            stopped = time.monotonic()
            process.send_signal(signal.SIGTERM)
            assert process.wait(15) == 0
            return time.monotonic() - stopped

    run(1.5)  # delivered
    delivered_first = _influx_points(influxdb, db, "spool.jobs")
    with influxdb.stopped():
        exit_s = run(3.0)  # mid-outage: 15 batches go to the spool, then the process stops
        spooled = len(list(spool.rglob("*.batch")))
        run(2.0)  # a new process: the old batches wait with its own
        spooled_after = len(list(spool.rglob("*.batch")))
    run(3.0)  # the backend is back: the spooled batches go first
    del log
    assert list(spool.rglob("*.batch")) == []
    stored = _influx_points(influxdb, db, "spool.jobs")
    # Three process lifetimes of 200 ms batches: no gap longer than a couple of intervals while a
    # process ran, and every value of each process (its counter restarts) increases.
    assert len(stored) >= len(delivered_first) + spooled_after, (len(stored), spooled_after)
    assert spooled >= 10, spooled
    assert spooled_after >= spooled + 5, (spooled, spooled_after)
    assert exit_s <= 3.0 + 1.5, exit_s
    report("spool-restart-mid-outage", spooled=spooled_after, stored=len(stored), exit_s=round(exit_s, 2))


def test_two_runtimes_writing_to_one_influxdb_never_share_a_series(influxdb: InfluxDB) -> None:
    """Identity on every pushed series: ``telemetry.collections`` of two runtimes of one name stays
    two series (it went 156 -> 2 when they shared one), told apart by ``resource.service.instance.id``."""
    db = f"identity_{uuid.uuid4().hex[:8]}"
    influxdb.create_database(db)
    # Two processes of one agent: each has its own service.instance.id (a UUID per process, set
    # here as each process would have it).
    runtimes = [
        Telemetry(
            TelemetryConfig(
                service_name="agent",
                resource_attributes={"service.instance.id": str(uuid.uuid4())},
                live_min_interval_millis=0,
            ),
            [InfluxExporter(influxdb.url, database=db, precision="ms")],
        )
        for _ in range(2)
    ]
    try:
        for _ in range(3):
            runtimes[0].exports.export_now()
        runtimes[1].exports.export_now()
    finally:
        for runtime in runtimes:
            runtime.shutdown(2_000)
    rows = influxdb.rows(
        db, 'SELECT last(value) FROM "telemetry.collections" GROUP BY "resource.service.instance.id"'
    )
    by_instance = {row["resource.service.instance.id"]: row["last"] for row in rows}
    expected = {runtime.resource.attributes["service.instance.id"] for runtime in runtimes}
    assert set(by_instance) == expected
    assert sorted(by_instance.values()) == [2, 4]  # each runtime's own count (the final export included)
    names = {
        row.get("resource.service.name")
        for row in influxdb.rows(db, 'SELECT value, "resource.service.name" FROM "telemetry.collections"')
    }
    assert names == {"agent"}


def test_the_views_status_health_score_and_alerts_are_pushed_to_influxdb(influxdb: InfluxDB) -> None:
    from telemetry_otel.instrumentation import instrument_service
    from telemetry_otel.views import create_app

    db = f"derived_{uuid.uuid4().hex[:8]}"
    influxdb.create_database(db)
    telemetry = Telemetry(
        TelemetryConfig(service_name="derived", live_min_interval_millis=0),
        [InfluxExporter(influxdb.url, database=db, precision="ms")],
    )
    try:
        service = instrument_service("checkout", category="shop", telemetry=telemetry)
        service.record_request(0.01)
        create_app(telemetry)  # the views register their series with the runtime
        telemetry.exports.export_now()
    finally:
        telemetry.shutdown(2_000)
    measurements = {row["name"] for row in influxdb.rows(db, "SHOW MEASUREMENTS")}
    assert {"telemetry.status", "telemetry.health.score", "telemetry.alerts.active"} <= measurements
    status = influxdb.rows(db, 'SELECT * FROM "telemetry.status" WHERE value = 1')
    assert len(status) == 2  # the export, and the final one at shutdown: one current status each
    assert {row["status"] for row in status} <= {"pass", "warn", "fail"}
    assert all(row["resource.service.name"] == "derived" for row in status)
