"""Export backends that fail under a running application: real InfluxDB and carbon-cache processes,
down at start, killed (SIGKILL) in the middle of the run, and restarted.

Each run has a fresh server, an application thread recording requests without pause, and two
periodic pipelines (every 200 ms) to the same server: a roomy one (16 batches held for retry,
more than the outage needs) and a tight one (3 batches). Throughout:

* the application never blocks or raises: the slowest ``record_request`` call is timed;
* retries are bounded: the backoff is capped at the interval, so at most two attempts per export cycle;
* memory held for retries is bounded: the batches held are sampled every 20 ms and never exceed
  the bound (the tight pipeline drops its oldest batches, and counts them);
* nothing is counted as sent while the server is dead (a write into a dead TCP connection would
  be lost silently);
* after recovery the backend holds correct cumulative values again: the last value read back is
  the application's final count, values never go down in time order, and (roomy pipeline) every
  batch collected during the outages arrives, with its own timestamp: no data lost.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from telemetry_otel import Telemetry, TelemetryConfig
from telemetry_otel.exporters import (
    DeliveryStats,
    ExportPipeline,
    GraphiteExporter,
    InfluxExporter,
    PushExporter,
    RetryPolicy,
)
from telemetry_otel.instrumentation import instrument_service

if TYPE_CHECKING:
    from _support import Carbon, InfluxDB, Server

pytestmark = pytest.mark.backend

INTERVAL_MS = 200
OUTAGE_S = 1.5
ROOMY, TIGHT = 16, 3
POLICY = {"initial_backoff_seconds": 0.1, "max_backoff_seconds": 0.4}


@dataclass
class _App:
    """A thread recording requests as fast as it can, timing each call."""

    telemetry: Telemetry
    count: int = 0
    slowest: float = 0.0
    errors: list[BaseException] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.service = instrument_service("checkout", category="shop", telemetry=self.telemetry)
        self.thread = threading.Thread(target=self._run, name="app", daemon=True)

    def _run(self) -> None:
        record = self.service.record_request
        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                record(0.002, self.count % 10 == 0)
            except BaseException as exc:  # would be a failure of the package: kept for the assert
                self.errors.append(exc)
                return
            self.slowest = max(self.slowest, time.perf_counter() - started)
            self.count += 1
            time.sleep(0.0005)

    def __enter__(self) -> _App:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)


class _Watch:
    """Samples the pipelines' batches held every 20 ms, and counts what was sent while down.

    ``down()`` and ``up()`` read the ``sent`` counts right after the server died and right before it
    is started again: anything sent in between went to a dead server.
    """

    def __init__(self, pipelines: dict[str, ExportPipeline]) -> None:
        self.pipelines = pipelines
        self.max_held = dict.fromkeys(pipelines, 0)
        self.sent_while_down = dict.fromkeys(pipelines, 0)
        self._sent_at_down = dict.fromkeys(pipelines, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watch", daemon=True)

    def _sent(self) -> dict[str, int]:
        return {name: pipeline.stats()[0].sent for name, pipeline in self.pipelines.items()}

    def down(self) -> None:
        self._sent_at_down = self._sent()

    def up(self) -> None:
        for name, sent in self._sent().items():
            self.sent_while_down[name] += sent - self._sent_at_down[name]

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            for name, pipeline in self.pipelines.items():
                [stats] = pipeline.stats()
                self.max_held[name] = max(self.max_held[name], stats.buffered)

    def __enter__(self) -> _Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def _report(name: str, **figures: Any) -> None:
    """A line of figures for docs/reliability.md (shown with ``pytest -s``)."""
    print(f"RELIABILITY {name}:", " ".join(f"{key}={value}" for key, value in figures.items()))


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.02)
    return time.monotonic() - started


def _kill(server: Server) -> None:
    """SIGKILL the server's whole process group (no shutdown of any kind), then reap it."""
    os.killpg(server.pid, signal.SIGKILL)
    server.stop()


@dataclass
class _Outcome:
    app: _App
    stats: dict[str, DeliveryStats]
    max_held: dict[str, int]
    sent_while_down: dict[str, int]
    cycles_down: int
    recovery_s: list[float]
    down_windows: list[tuple[float, float]]


def _run_with_faults(telemetry: Telemetry, server: Server, exporters: dict[str, PushExporter]) -> _Outcome:
    """Down at start, up, killed mid-run, restarted; with the application recording throughout."""
    pipelines = {
        name: ExportPipeline(
            telemetry.export_source,
            [exporter],
            interval_millis=INTERVAL_MS,
            timeout_millis=1_000,
            policy=RetryPolicy(max_buffered_batches=ROOMY if name == "roomy" else TIGHT, **POLICY),
        )
        for name, exporter in exporters.items()
    }
    recovery: list[float] = []
    windows: list[tuple[float, float]] = []
    server.stop()  # down at start
    with _App(telemetry) as app, _Watch(pipelines) as watch:
        watch.down()
        down_since = time.time()
        for pipeline in pipelines.values():
            pipeline.start()
        time.sleep(OUTAGE_S)
        watch.up()  # before start(): the server may accept connections before it is ready
        server.start()
        windows.append((down_since, time.time()))
        recovery.append(_wait(lambda: _held(pipelines["roomy"]) == 0, 10, "recovery after the late start"))
        time.sleep(1.0)
        _kill(server)  # killed in the middle of the run
        watch.down()
        down_since = time.time()
        time.sleep(OUTAGE_S)
        watch.up()
        server.start()
        windows.append((down_since, time.time()))
        recovery.append(_wait(lambda: _held(pipelines["roomy"]) == 0, 10, "recovery after the kill"))
        time.sleep(0.5)
    for pipeline in pipelines.values():
        pipeline.shutdown(5_000)  # stops the thread and exports the final cumulative values
    stats = {name: pipeline.stats()[0] for name, pipeline in pipelines.items()}
    cycles_down = round(2 * OUTAGE_S * 1000 / INTERVAL_MS)
    return _Outcome(app, stats, watch.max_held, watch.sent_while_down, cycles_down, recovery, windows)


def _held(pipeline: ExportPipeline) -> int:
    [stats] = pipeline.stats()
    return stats.buffered


def _check_common(outcome: _Outcome) -> None:
    app, stats = outcome.app, outcome.stats
    assert app.errors == []
    assert app.count > 1_000
    assert app.slowest < 0.1, app.slowest  # never waited on a backend
    roomy, tight = stats["roomy"], stats["tight"]
    # Bounded retries: the backoff is capped at the interval with equal jitter (between half of it
    # and all of it), so never more than two attempts per export cycle while the backend was down.
    for name in ("roomy", "tight"):
        assert 2 <= stats[name].failed_attempts <= 2 * outcome.cycles_down + 4, stats[name]
        assert stats[name].rejected == 0, stats[name]
        assert stats[name].buffered == 0, stats[name]
    # Bounded memory: never more batches held than the policy allows.
    assert outcome.max_held["roomy"] <= ROOMY
    assert outcome.max_held["tight"] == TIGHT
    assert roomy.dropped == 0, roomy  # the outages fit in the roomy buffer: nothing dropped
    assert tight.dropped > 0, tight  # the tight one dropped its oldest batches, and says so
    # Nothing counted as sent while the server was dead: a batch counted as sent was delivered.
    assert outcome.sent_while_down == {"roomy": 0, "tight": 0}


@pytest.fixture
def telemetry(request: pytest.FixtureRequest) -> Iterator[Telemetry]:
    runtime = Telemetry(TelemetryConfig(service_name=f"faults-{request.node.name}"[:60]))
    yield runtime
    runtime.shutdown()


def test_influxdb_down_at_start_killed_and_restarted(
    start_influxdb: Callable[..., InfluxDB], telemetry: Telemetry
) -> None:
    influxdb = start_influxdb()
    databases = {name: f"faults_{name}_{uuid.uuid4().hex[:8]}" for name in ("roomy", "tight")}
    for database in databases.values():
        influxdb.create_database(database)
    exporters: dict[str, PushExporter] = {
        name: InfluxExporter(influxdb.url, database=database, precision="ns", resource_tags=())
        for name, database in databases.items()
    }
    outcome = _run_with_faults(telemetry, influxdb, exporters)
    _check_common(outcome)
    final = outcome.app.count
    for name, database in databases.items():
        rows = influxdb.rows(
            database, 'SELECT value FROM "service.requests" WHERE "service.name" = \'checkout\''
        )
        values = [row["value"] for row in rows]
        assert values == sorted(values), name  # cumulative: never backwards in time order
        assert values[-1] == final, (name, values[-3:], final)
        stats = outcome.stats[name]
        if name == "roomy":
            assert len(values) == stats.sent, name  # every batch sent is stored, once
        else:
            # Every batch sent is stored, once. A batch the server stored while it was being killed,
            # whose answer never came, counts as failed: the roomy pipeline sends it again (the same
            # timestamps overwrite it), the tight one may drop it before the server is back, so the
            # server may hold a batch counted as dropped, never one counted nowhere.
            assert stats.sent <= len(values) <= stats.sent + stats.dropped, (name, len(values), stats)
        errors = influxdb.rows(database, 'SELECT last(value) FROM "service.errors"')
        assert errors[0]["last"] == (final + 9) // 10
    # No data lost: nothing dropped or held (checked above), every batch sent stored once, and the
    # batches collected while the server was down are stored at their own collection times.
    stamps = _stamps_ns(influxdb, databases["roomy"])
    assert len(stamps) == outcome.stats["roomy"].sent
    for start, end in outcome.down_windows:
        inside = [stamp for stamp in stamps if start * 1e9 <= stamp <= end * 1e9]
        assert len(inside) >= (end - start) * 1000 / INTERVAL_MS - 2, (start, end, len(inside))
    _report(
        "influxdb faults",
        app_requests=final,
        slowest_record_ms=round(outcome.app.slowest * 1000, 2),
        recovery_s=[round(seconds, 2) for seconds in outcome.recovery_s],
        roomy=_brief(outcome.stats["roomy"]),
        tight=_brief(outcome.stats["tight"]),
        max_held=outcome.max_held,
    )


def _last_is(carbon: Carbon, series: str, value: int) -> Callable[[], bool]:
    def check() -> bool:
        points = carbon.read_series(series)
        return bool(points) and points[-1][1] == value

    return check


def _stamps_ns(influxdb: InfluxDB, database: str) -> list[int]:
    """The nanosecond timestamps of the ``service.requests`` points of ``checkout``."""
    query = 'SELECT value FROM "service.requests" WHERE "service.name" = \'checkout\''
    answer = influxdb.http.get("/query", params={"db": database, "q": query, "epoch": "ns"}).json()
    [series] = answer["results"][0]["series"]
    return [int(values[0]) for values in series["values"]]


def _brief(stats: DeliveryStats) -> str:
    return f"sent={stats.sent},failed={stats.failed_attempts},dropped={stats.dropped}"


def test_carbon_down_at_start_killed_and_restarted(
    start_carbon: Callable[..., Carbon], telemetry: Telemetry
) -> None:
    carbon = start_carbon()
    exporters: dict[str, PushExporter] = {
        name: GraphiteExporter(*carbon.line_address, prefix=f"faults_{name}", tagged=False, resource_tags=())
        for name in ("roomy", "tight")
    }
    outcome = _run_with_faults(telemetry, carbon, exporters)
    _check_common(outcome)
    final = outcome.app.count
    for name in ("roomy", "tight"):
        series = f"faults_{name}.service.requests.service_category.shop.service_name.checkout"
        carbon.wait_for_series(series)
        _wait(_last_is(carbon, series, final), 10, f"{final} as the last value of {series}")
        points = carbon.read_series(series)
        values = [value for _, value in points]
        assert values == sorted(values), name
        assert values[-1] == final
    roomy = carbon.read_series("faults_roomy.service.requests.service_category.shop.service_name.checkout")
    seconds = {stamp for stamp, _ in roomy}
    for start, end in outcome.down_windows:
        expected = set(range(int(start) + 1, int(end)))
        assert expected <= seconds, sorted(expected - seconds)  # every second of the outage arrived
    _report(
        "carbon faults",
        app_requests=final,
        slowest_record_ms=round(outcome.app.slowest * 1000, 2),
        recovery_s=[round(seconds, 2) for seconds in outcome.recovery_s],
        roomy=_brief(outcome.stats["roomy"]),
        tight=_brief(outcome.stats["tight"]),
        max_held=outcome.max_held,
        sent_while_down=outcome.sent_while_down,
    )


def test_a_batch_written_to_a_killed_carbon_is_not_counted_as_sent(
    start_carbon: Callable[..., Carbon],
) -> None:
    """The TCP exporter keeps its connection. After the server process dies, a write on that
    connection still "succeeds" into the local kernel buffer and the batch is lost, unless the
    exporter notices the closed connection first (the dead server's kernel sent a FIN) and
    reconnects, which fails while the server is down: the batch is then held for retry."""
    carbon = start_carbon()
    runtime = Telemetry(TelemetryConfig(service_name="carbon-kill"))
    try:
        service = instrument_service("checkout", category="shop", telemetry=runtime)
        exporter = GraphiteExporter(*carbon.line_address, prefix="kill", tagged=False, resource_tags=())
        policy = RetryPolicy(initial_backoff_seconds=0.01, max_backoff_seconds=0.01)
        pipeline = ExportPipeline(runtime.export_source, [exporter], timeout_millis=2_000, policy=policy)
        service.record_request(0.01)
        pipeline.export_now()  # connected, delivered
        series = "kill.service.requests.service_category.shop.service_name.checkout"
        assert [value for _, value in carbon.wait_for_series(series)] == [1.0]
        _kill(carbon)
        service.record_request(0.01)
        time.sleep(1.1)  # a second of its own for the batch written to the dead connection
        pipeline.export_now()
        [stats] = pipeline.stats()
        carbon.start()
        pipeline.shutdown(5_000)
    finally:
        runtime.shutdown()
    assert (stats.sent, stats.buffered) == (1, 1), stats  # held for retry, not counted as delivered
