"""The InfluxDB exporter against a real InfluxDB 1.x: realistic data through ``ExportPipeline``.

Every batch must be accepted, and InfluxQL must read every value back with its type (``SHOW FIELD
KEYS``): counters as integers, gauges as floats, histogram ``count``/``le_*`` as integers and
``sum`` as a float. A batch the server refuses (unknown database, field type conflict) is a
``PermanentExportError``; a server that is down holds batches (bounded) until it is back.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

import pytest
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from telemetry_otel import Telemetry, TelemetryConfig
from telemetry_otel.exporters import (
    DeliveryStats,
    ExportPipeline,
    InfluxExporter,
    PermanentExportError,
    RetryPolicy,
)
from telemetry_otel.instrumentation import SCOPE_NAME, Bus, counter, gauge, instrument_service

if TYPE_CHECKING:
    from _support import InfluxDB

pytestmark = pytest.mark.backend

Precision = Literal["s", "ms", "us", "ns"]
BUS_SCOPE = "telemetry_otel.bus"
_NANOS: dict[str, int] = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


@pytest.fixture
def telemetry(request: pytest.FixtureRequest) -> Iterator[Telemetry]:
    runtime = Telemetry(TelemetryConfig(service_name=f"influx-{request.node.name}"[:60]))
    yield runtime
    runtime.shutdown()


def _database(influxdb: InfluxDB, stem: str) -> str:
    name = f"{stem}_{uuid.uuid4().hex[:8]}"
    influxdb.create_database(name)
    return name


def _record_realistic(telemetry: Telemetry) -> Bus:
    """Vitals, snapshot gauges and counters, and a bus with two providers, with some traffic."""
    memory = instrument_service(
        "memory",
        category="graph",
        snapshot=lambda: {"memory.graph.nodes": 1234.5, "service.queue.depth": 7, "service.cache.hits": 41},
        metrics=[
            gauge("memory.graph.nodes", "{node}", "Nodes held in the graph."),
            gauge("service.queue.depth", "{item}", "Requests waiting."),
            counter("service.cache.hits", "{request}", "Cache hits since start."),
        ],
        telemetry=telemetry,
    )
    primary = instrument_service("openai_primary", telemetry=telemetry)
    fallback = instrument_service("openai_fallback", telemetry=telemetry)
    bus = Bus("llm", telemetry=telemetry)
    bus.attach(primary)
    bus.attach(fallback)
    for seconds in (0.0004, 0.003, 0.02, 0.02, 0.2, 1.5):
        memory.record_request(seconds)
    memory.record_request(0.05, error=True)
    primary.record_request(0.4)
    primary.record_request(0.6, error=True)
    fallback.record_request(0.9)
    memory.report_health("pass")
    primary.report_health("warn", "slow")
    return bus


def _points(data: MetricsData, name: str) -> list[Any]:
    return [
        point
        for resource_metrics in data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


def _point(data: MetricsData, name: str, **attributes: str) -> Any:
    found = [
        point
        for point in _points(data, name)
        if all((point.attributes or {}).get(key) == value for key, value in attributes.items())
    ]
    assert len(found) == 1, f"{len(found)} points of {name} {attributes}"
    return found[0]


def _field_types(influxdb: InfluxDB, db: str, measurement: str) -> dict[str, str]:
    result = influxdb.query(db, f'SHOW FIELD KEYS FROM "{measurement}"')["results"][0]
    assert "error" not in result, result
    [series] = result["series"]
    return {key: kind for key, kind in series["values"]}


def _latest(influxdb: InfluxDB, db: str, measurement: str, where: str) -> dict[str, Any]:
    """The newest row of the one series of ``measurement`` matching ``where``, tags included."""
    rows = influxdb.rows(
        db, f'SELECT * FROM "{measurement}" WHERE {where} GROUP BY * ORDER BY time DESC LIMIT 1'
    )
    assert len(rows) == 1, rows
    return rows[0]


def _histogram_fields(point: HistogramDataPoint) -> dict[str, float]:
    """The fields the encoder documents for a histogram point: count, sum, min, max, cumulative le_*."""
    fields: dict[str, float] = {"count": point.count, "sum": point.sum, "min": point.min, "max": point.max}
    cumulative = itertools.accumulate(point.bucket_counts)
    for bound, count in zip([*point.explicit_bounds, None], cumulative, strict=True):
        fields["le_+Inf" if bound is None else f"le_{float(bound)!r}"] = count
    return fields


def _assert_all_delivered(stats: Sequence[DeliveryStats], batches: int) -> None:
    [delivered] = stats
    assert (delivered.sent, delivered.rejected, delivered.failed_attempts) == (batches, 0, 0), delivered
    assert (delivered.dropped, delivered.buffered, delivered.last_error) == (0, 0, None), delivered


def test_realistic_data_is_accepted_and_reads_back_with_types(
    influxdb: InfluxDB, telemetry: Telemetry
) -> None:
    db = _database(influxdb, "realistic")
    bus = _record_realistic(telemetry)
    pipeline = ExportPipeline(
        telemetry.export_source, [InfluxExporter(influxdb.url, database=db, resource_tags=())]
    )
    try:
        started = int(time.time())
        pipeline.export_now()
        instrument_service("late", telemetry=telemetry).record_request(0.001)
        pipeline.export_now()
        finished = int(time.time())
        _assert_all_delivered(pipeline.stats(), 2)
        data = telemetry.read_metrics()  # nothing recorded since: the numbers of the last export
    finally:
        pipeline.shutdown()
        bus.close()

    memory = "\"service.name\" = 'memory'"
    requests = _latest(influxdb, db, "service.requests", memory)
    assert started <= requests.pop("time") <= finished + 1
    assert requests == {
        "otel.scope.name": SCOPE_NAME,
        "service.category": "graph",
        "service.name": "memory",
        "value": 7,
    }
    assert _point(data, "service.requests", **{"service.name": "memory"}).value == 7
    assert _field_types(influxdb, db, "service.requests") == {"value": "integer"}
    assert _latest(influxdb, db, "service.errors", memory)["value"] == 1
    assert _field_types(influxdb, db, "service.errors") == {"value": "integer"}

    # Snapshot metrics: gauges are floats even when the service reports an int; counters stay ints.
    assert _latest(influxdb, db, "memory.graph.nodes", memory)["value"] == 1234.5
    assert _field_types(influxdb, db, "memory.graph.nodes") == {"value": "float"}
    assert _latest(influxdb, db, "service.queue.depth", memory)["value"] == 7
    assert _field_types(influxdb, db, "service.queue.depth") == {"value": "float"}
    assert _latest(influxdb, db, "service.cache.hits", memory)["value"] == 41
    assert _field_types(influxdb, db, "service.cache.hits") == {"value": "integer"}
    assert _field_types(influxdb, db, "service.uptime") == {"value": "float"}
    assert 0 < _latest(influxdb, db, "service.uptime", memory)["value"] < 60
    health = influxdb.rows(db, f'SELECT value FROM "service.health" WHERE {memory} GROUP BY "health.status"')
    assert {row["health.status"]: row["value"] for row in health} == {"pass": 1, "warn": 0, "fail": 0}

    histogram = _latest(influxdb, db, "service.request.duration", memory)
    expected = _histogram_fields(_point(data, "service.request.duration", **{"service.name": "memory"}))
    assert expected["count"] == 7
    assert {key: histogram[key] for key in expected} == expected
    assert set(histogram) == {*expected, "time", "otel.scope.name", "service.category", "service.name"}
    types = _field_types(influxdb, db, "service.request.duration")
    assert types == {key: "float" if key in ("sum", "min", "max") else "integer" for key in expected}

    llm = "\"bus.name\" = 'llm'"
    bus_requests = _latest(influxdb, db, "bus.requests", llm)
    assert {key: bus_requests[key] for key in ("bus.name", "otel.scope.name", "value")} == {
        "bus.name": "llm",
        "otel.scope.name": BUS_SCOPE,
        "value": 3,
    }
    assert _field_types(influxdb, db, "bus.requests") == {"value": "integer"}
    assert _latest(influxdb, db, "bus.failures", llm)["value"] == 1
    assert _latest(influxdb, db, "bus.providers", llm)["value"] == 2
    assert _field_types(influxdb, db, "bus.providers") == {"value": "float"}
    per_provider = influxdb.rows(
        db, f'SELECT value FROM "bus.provider.requests" WHERE {llm} GROUP BY "bus.provider"'
    )
    assert {row["bus.provider"]: row["value"] for row in per_provider} == {
        "openai_primary": 2,
        "openai_fallback": 1,
    }
    bus_latency = _latest(influxdb, db, "bus.request.duration", llm)
    expected = _histogram_fields(_point(data, "bus.request.duration", **{"bus.name": "llm"}))
    assert (expected["count"], expected["le_+Inf"]) == (3, 3)
    assert {key: bus_latency[key] for key in expected} == expected
    # The service registered between the two exports is there: the second batch was written too.
    assert _latest(influxdb, db, "service.requests", "\"service.name\" = 'late'")["value"] == 1


def _counter_data(name: str, value: float, time_unix_nano: int) -> MetricsData:
    point = NumberDataPoint(
        attributes={"job.kind": "import"}, start_time_unix_nano=0, time_unix_nano=time_unix_nano, value=value
    )
    metric = Metric(
        name=name,
        description="",
        unit="",
        data=Sum(
            data_points=[point], aggregation_temporality=AggregationTemporality.CUMULATIVE, is_monotonic=True
        ),
    )
    scope = ScopeMetrics(scope=InstrumentationScope("influx.test"), metrics=[metric], schema_url="")
    return MetricsData(
        resource_metrics=[
            ResourceMetrics(resource=Resource.get_empty(), scope_metrics=[scope], schema_url="")
        ]
    )


def test_an_unknown_database_is_a_permanent_rejection(influxdb: InfluxDB, telemetry: Telemetry) -> None:
    missing = f"missing_{uuid.uuid4().hex[:8]}"
    exporter = InfluxExporter(influxdb.url, database=missing)
    data = _counter_data("rejected.jobs", 3, time.time_ns())
    with pytest.raises(PermanentExportError, match=r"^HTTP 404: .*database not found"):
        exporter.export(data, 5_000)

    telemetry.get_meter("influx.test").create_counter("rejected.jobs").add(3)
    pipeline = ExportPipeline(telemetry.export_source, [exporter])
    try:
        pipeline.export_now()
        [stats] = pipeline.stats()
    finally:
        pipeline.shutdown()
    assert (stats.sent, stats.rejected, stats.failed_attempts, stats.buffered) == (0, 1, 0, 0), stats
    assert stats.last_error is not None
    assert stats.last_error.startswith("HTTP 404: "), stats.last_error
    assert "database not found" in stats.last_error
    [databases] = influxdb.query("", "SHOW DATABASES")["results"][0]["series"]
    assert [missing] not in databases.get("values", [])


def test_a_field_type_conflict_is_a_permanent_rejection(influxdb: InfluxDB, telemetry: Telemetry) -> None:
    """The documented caveat: an instrument that records ints and then floats changes the field type."""
    db = _database(influxdb, "conflict")
    now = time.time_ns()
    batches = iter([_counter_data("conflict.jobs", 5, now), _counter_data("conflict.jobs", 5.5, now + 1)])
    pipeline = ExportPipeline(
        lambda demand: MetricsData(resource_metrics=[]) if demand.final else next(batches),
        [InfluxExporter(influxdb.url, database=db, precision="ns")],
    )
    try:
        pipeline.export_now()
        pipeline.export_now()
        [stats] = pipeline.stats()
    finally:
        pipeline.shutdown()
    assert (stats.sent, stats.rejected, stats.failed_attempts, stats.buffered) == (1, 1, 0, 0), stats
    assert stats.last_error is not None
    assert stats.last_error.startswith("HTTP 400: "), stats.last_error
    assert "field type conflict" in stats.last_error
    assert [row["value"] for row in influxdb.rows(db, 'SELECT value FROM "conflict.jobs"')] == [5]


@pytest.mark.parametrize("precision", ["s", "ms", "us", "ns"])
def test_each_precision_stores_the_points_own_time(influxdb: InfluxDB, precision: Precision) -> None:
    """Regression for ``us``: the exporter sent ``precision=us`` to InfluxDB 1.x's ``/write``, which spells it
    ``u`` and reads an unknown precision as nanoseconds: the points land 1000 times too early (1970)."""
    db = _database(influxdb, f"precision_{precision}")
    moment = time.time_ns()
    InfluxExporter(influxdb.url, database=db, precision=precision).export(
        _counter_data("precision.jobs", 4, moment), 5_000
    )
    answer = influxdb.http.get(
        "/query", params={"db": db, "q": 'SELECT value FROM "precision.jobs"', "epoch": "ns"}
    )
    [series] = answer.json()["results"][0]["series"]
    expected = moment // _NANOS[precision] * _NANOS[precision]
    assert series["values"] == [[expected, 4]], f"stored at {series['values'][0][0]}, written at {moment}"


def test_a_server_down_at_start_gets_every_held_batch_after_it_restarts(
    influxdb: InfluxDB, telemetry: Telemetry
) -> None:
    roomy_db, tight_db = _database(influxdb, "restart"), _database(influxdb, "restart_tight")
    jobs = telemetry.get_meter("influx.restart").create_counter("restart.jobs")

    def pipeline(db: str, held: int) -> ExportPipeline:
        # Nanosecond timestamps: every cycle is its own point, so every delivered batch can be counted.
        policy = RetryPolicy(
            initial_backoff_seconds=0.001, max_backoff_seconds=0.001, max_buffered_batches=held
        )
        exporter = InfluxExporter(influxdb.url, database=db, precision="ns")
        return ExportPipeline(telemetry.export_source, [exporter], policy=policy, timeout_millis=5_000)

    roomy, tight = pipeline(roomy_db, 16), pipeline(tight_db, 2)
    try:
        with influxdb.stopped():
            for _ in range(3):
                jobs.add(1)
                roomy.export_now()
                tight.export_now()
            [held] = roomy.stats()
            assert (held.sent, held.rejected, held.buffered, held.dropped) == (0, 0, 3, 0), held
            assert held.failed_attempts >= 1, held  # the worker retries on its own schedule
            assert held.last_error is not None
            assert "Connection refused" in held.last_error, held.last_error
            [bounded] = tight.stats()
            assert (bounded.sent, bounded.buffered, bounded.dropped) == (0, 2, 1), bounded
        # Each exporter's worker retries on its own (every 1 ms here): the held batches go out as soon
        # as the server is back, before the next collection.
        deadline = time.monotonic() + 10
        while roomy.stats()[0].buffered or tight.stats()[0].buffered:
            assert time.monotonic() < deadline, (roomy.stats(), tight.stats())
            time.sleep(0.01)
        jobs.add(1)
        roomy.export_now()
        tight.export_now()
        [recovered] = roomy.stats()
        assert (recovered.sent, recovered.buffered, recovered.dropped, recovered.rejected) == (4, 0, 0, 0)
        [tight_recovered] = tight.stats()
        assert (tight_recovered.sent, tight_recovered.buffered, tight_recovered.dropped) == (3, 0, 1)
    finally:
        roomy.shutdown()
        tight.shutdown()
    # Every held batch arrives, in time order, and the newest cumulative value reads back last; the
    # last one is repeated by the final export of shutdown().
    values = [row["value"] for row in influxdb.rows(roomy_db, 'SELECT value FROM "restart.jobs"')]
    assert values == [1, 2, 3, 4, 4], values
    assert _point(telemetry.read_metrics(), "restart.jobs").value == 4
    assert _field_types(influxdb, roomy_db, "restart.jobs") == {"value": "integer"}
    tight_values = [row["value"] for row in influxdb.rows(tight_db, 'SELECT value FROM "restart.jobs"')]
    assert tight_values == [2, 3, 4, 4], tight_values
