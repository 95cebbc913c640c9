from __future__ import annotations

import asyncio
import threading
import time

from opentelemetry.sdk.metrics.export import MetricsData, NumberDataPoint

from telemetry_otel import Collection, Snapshot, Telemetry, TelemetryConfig
from telemetry_otel.instrumentation import gauge, instrument_service


def _values(data: MetricsData, name: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name == name:
                    for point in metric.data.data_points:
                        assert isinstance(point, NumberDataPoint)
                        found[str((point.attributes or {})["service.name"])] = point.value
    return found


DEPTH = gauge("work.queue.depth", "{item}", "Items waiting.")


def test_a_failing_or_slow_service_is_reported_while_the_others_are_complete() -> None:
    telemetry = Telemetry(TelemetryConfig(service_name="t", service_timeout_millis=200))
    release = threading.Event()

    def hangs() -> Snapshot:
        release.wait(5)
        return {"work.queue.depth": 99}

    async def hangs_async() -> Snapshot:
        await asyncio.sleep(5)
        return {"work.queue.depth": 98}

    def raises() -> Snapshot:
        raise RuntimeError("database is gone")

    try:
        instrument_service(
            "good",
            category="graph",
            snapshot=lambda: {"work.queue.depth": 3},
            metrics=[DEPTH],
            telemetry=telemetry,
        )
        instrument_service("slow", category="graph", snapshot=hangs, metrics=[DEPTH], telemetry=telemetry)
        instrument_service(
            "slow_async", category="graph", snapshot=hangs_async, metrics=[DEPTH], telemetry=telemetry
        )
        instrument_service("broken", category="graph", snapshot=raises, metrics=[DEPTH], telemetry=telemetry)
        started = time.perf_counter()
        collection = asyncio.run(telemetry.collect())
        elapsed = time.perf_counter() - started
    finally:
        release.set()
        telemetry.shutdown()
    assert elapsed < 2.0  # bounded by the 200 ms timeout, not by the 5 s hangs
    outcomes = collection.outcomes
    assert outcomes["good"].outcome == "ok"
    assert (outcomes["slow"].outcome, outcomes["slow_async"].outcome) == ("timeout", "timeout")
    assert outcomes["slow"].error == "snapshot timed out after 200 ms"
    assert outcomes["broken"].outcome == "error"
    assert outcomes["broken"].error == "RuntimeError: database is gone"
    assert _values(collection.metrics, "work.queue.depth") == {"good": 3}


def test_snapshots_run_in_parallel(telemetry: Telemetry) -> None:
    def slow_snapshot() -> Snapshot:
        time.sleep(0.2)
        return {"work.queue.depth": 1}

    for index in range(10):
        instrument_service(
            f"svc{index}", category="graph", snapshot=slow_snapshot, metrics=[DEPTH], telemetry=telemetry
        )
    started = time.perf_counter()
    collection = asyncio.run(telemetry.collect())
    assert time.perf_counter() - started < 1.0  # ten 200 ms snapshots, not one after another (2 s)
    assert all(outcome.outcome == "ok" for outcome in collection.outcomes.values())


def test_unusable_values_are_dropped_and_reported_never_zeroed(telemetry: Telemetry) -> None:
    metrics = [DEPTH, gauge("work.cpu", "1", "CPU."), gauge("work.unknown", "1", "Unknown.")]
    instrument_service(
        "garbage",
        category="graph",
        snapshot=lambda: {"work.queue.depth": float("nan"), "work.cpu": "high", "work.unknown": None},
        metrics=metrics,
        telemetry=telemetry,
    )
    collection = asyncio.run(telemetry.collect())
    outcome = collection.outcomes["garbage"]
    assert outcome.outcome == "ok"
    assert outcome.problems == (
        "work.queue.depth: nan is not a finite number",
        "work.cpu: a str is not a finite number",
    )
    for name in ("work.queue.depth", "work.cpu", "work.unknown"):
        assert _values(collection.metrics, name) == {}


def test_a_failed_snapshot_keeps_the_last_good_value_and_its_age(telemetry: Telemetry) -> None:
    state = {"fail": False}

    def flaky() -> Snapshot:
        if state["fail"]:
            raise OSError("disk")
        return {"work.queue.depth": 7}

    instrument_service("flaky", category="graph", snapshot=flaky, metrics=[DEPTH], telemetry=telemetry)
    first = asyncio.run(telemetry.collect())
    state["fail"] = True
    second = asyncio.run(telemetry.collect())
    assert second.outcomes["flaky"].outcome == "error"
    assert second.outcomes["flaky"].last_success_unix_nano == first.outcomes["flaky"].last_success_unix_nano
    assert _values(second.metrics, "work.queue.depth") == {"flaky": 7}


def test_a_stuck_synchronous_snapshot_never_exhausts_the_collection_threads() -> None:
    telemetry = Telemetry(TelemetryConfig(service_name="t", service_timeout_millis=100))
    release = threading.Event()
    calls = 0

    def stuck() -> Snapshot:
        nonlocal calls
        calls += 1
        release.wait(30)
        return {"work.queue.depth": 1}

    try:
        instrument_service("stuck", category="graph", snapshot=stuck, metrics=[DEPTH], telemetry=telemetry)
        instrument_service(
            "fine",
            category="graph",
            snapshot=lambda: {"work.queue.depth": 2},
            metrics=[DEPTH],
            telemetry=telemetry,
        )

        async def many_cycles() -> list[Collection]:
            cycles = [await asyncio.wait_for(telemetry.collect(), 5) for _ in range(40)]
            await asyncio.sleep(0.3)  # one more cycle, the stuck call running that much longer
            return [*cycles, await asyncio.wait_for(telemetry.collect(), 5)]

        collections = asyncio.run(many_cycles())
    finally:
        release.set()
        telemetry.shutdown()
    assert calls == 1  # never stacked a second call on the stuck one
    assert collections[0].outcomes["stuck"].error == "snapshot timed out after 100 ms"
    later = collections[-1].outcomes["stuck"]
    assert later.outcome == "timeout"
    assert later.error is not None
    assert later.error.startswith("previous snapshot still running")
    # The same text every cycle it stays stuck: a reason label that does not make a series per cycle.
    assert len({c.outcomes["stuck"].error for c in collections[1:]}) == 1
    assert all(_values(c.metrics, "work.queue.depth") == {"fine": 2} for c in collections)


def test_the_collector_reports_itself_as_metrics(telemetry: Telemetry) -> None:
    state = {"fail": False}

    def flaky() -> Snapshot:
        if state["fail"]:
            raise OSError("disk")
        return {"work.queue.depth": 1}

    instrument_service("flaky", category="graph", snapshot=flaky, metrics=[DEPTH], telemetry=telemetry)
    instrument_service("live", category="graph", telemetry=telemetry)  # nothing to collect: no up series
    asyncio.run(telemetry.collect())
    state["fail"] = True
    data = asyncio.run(telemetry.collect()).metrics
    assert _values(data, "telemetry.collection.up") == {"flaky": 0}
    assert _values(data, "telemetry.collection.errors") == {"flaky": 1}
    assert _values(data, "telemetry.collection.timeouts") == {"flaky": 0}
    assert _values(data, "telemetry.collection.snapshot.age")["flaky"] >= 0
    totals = {
        metric.name: point.value
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        for point in metric.data.data_points
        if isinstance(point, NumberDataPoint) and not point.attributes
    }
    assert totals["telemetry.collections"] == 2
    assert totals["telemetry.collection.duration"] > 0
