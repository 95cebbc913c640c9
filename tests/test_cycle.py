"""The collection cycle: one owner, stale-while-revalidate, a live floor, staleness, late exports."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from telemetry_otel import Collection, CollectionCycle, Snapshot, Telemetry, TelemetryConfig
from telemetry_otel.exporters import ExportDemand
from telemetry_otel.instrumentation import gauge, instrument_service


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _Gate:
    """A snapshot function that blocks until released, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = threading.Event()
        self.release.set()

    def __call__(self) -> Snapshot:
        self.calls += 1
        self.release.wait(5)
        return {"gate.depth": self.calls}


@pytest.fixture
def gated(telemetry: Telemetry) -> Iterator[_Gate]:
    gate = _Gate()
    instrument_service(
        "gate",
        category="graph",
        snapshot=gate,
        metrics=[gauge("gate.depth", "{item}", "Depth.")],
        telemetry=telemetry,
    )
    yield gate
    gate.release.set()


def _cycle(telemetry: Telemetry, clock: _Clock, **options: float) -> CollectionCycle:
    return CollectionCycle(telemetry.collect, clock=clock, **options)


def test_concurrent_requests_on_a_cold_cycle_cause_exactly_one_collection(
    telemetry: Telemetry, gated: _Gate
) -> None:
    async def burst() -> list[bool]:
        served = await asyncio.gather(*(telemetry.cycle.get(30) for _ in range(50)))
        return [item.cached for item in served]

    assert asyncio.run(burst()) == [False] * 50
    assert gated.calls == 1
    assert telemetry.cycle.stats().completed == 1


def test_a_completed_collection_is_served_at_once_while_a_refresh_runs(
    telemetry: Telemetry, gated: _Gate
) -> None:
    clock = _Clock()
    cycle = _cycle(telemetry, clock)
    try:
        first = asyncio.run(cycle.get(30))
        assert (first.cached, first.age_seconds, first.previous) == (False, 0.0, None)
        clock.now += 10
        young = asyncio.run(cycle.get(30))
        assert (young.collection, young.cached, young.age_seconds) == (first.collection, True, 10.0)
        clock.now += 25  # 35 s old: expired
        gated.release.clear()  # the refresh hangs until released
        started = time.perf_counter()
        served = asyncio.run(cycle.get(30))
        waited = time.perf_counter() - started
        assert waited < 0.5
        assert (served.collection, served.cached, served.age_seconds, served.stale) == (
            first.collection,
            True,
            35.0,
            False,
        )
        assert cycle.stats().served_while_refreshing == 1
        gated.release.set()
        deadline = time.monotonic() + 5
        while cycle.stats().completed < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        fresh = asyncio.run(cycle.get(30))
        assert fresh.collection is not first.collection
        assert fresh.previous is first.collection
        assert gated.calls == 2  # one refresh, however many requests
    finally:
        cycle.close()


def test_a_ttl_of_zero_waits_for_a_collection_per_request(telemetry: Telemetry, gated: _Gate) -> None:
    served = [asyncio.run(telemetry.cycle.get(0)) for _ in range(3)]
    assert len({id(item.collection) for item in served}) == 3
    assert [item.cached for item in served] == [False] * 3


def test_live_requests_are_floored_to_one_cycle_per_interval(gated: _Gate) -> None:
    del gated  # registered on the fixture's runtime, unused here
    clock = _Clock()
    runtime = Telemetry(TelemetryConfig(service_name="floor"))
    calls = 0

    def snapshot() -> Snapshot:
        nonlocal calls
        calls += 1
        return {"floor.depth": calls}

    instrument_service(
        "floor",
        category="graph",
        snapshot=snapshot,
        metrics=[gauge("floor.depth", "{item}", "D.")],
        telemetry=runtime,
    )
    cycle = _cycle(runtime, clock, live_min_interval_millis=1_000)
    try:
        first = asyncio.run(cycle.get(30, live=True))
        assert (first.cached, first.limited) == (False, False)
        clock.now += 0.5
        limited = [asyncio.run(cycle.get(30, live=True)) for _ in range(20)]
        assert {(item.collection, item.cached, item.limited) for item in limited} == {
            (first.collection, True, True)
        }
        assert calls == 1
        clock.now += 0.6
        again = asyncio.run(cycle.get(30, live=True))
        assert (again.cached, again.limited) == (False, False)
        assert calls == 2
        assert cycle.stats().live_limited == 20
    finally:
        cycle.close()
        runtime.shutdown()


def test_a_failing_collection_makes_the_data_stale_after_a_multiple_of_the_ttl(telemetry: Telemetry) -> None:
    clock = _Clock()
    failing = False
    real = telemetry.collect

    async def collect() -> Collection:
        if failing:
            raise RuntimeError("metric read failed")
        return await real()

    cycle = CollectionCycle(collect, clock=clock, stale_after_ttls=3)
    try:
        first = asyncio.run(cycle.get(10))
        failing = True
        clock.now += 11  # due: a refresh starts, and fails
        assert asyncio.run(cycle.get(10)).stale is False
        time.sleep(0.1)
        clock.now += 25  # 25 s since the refresh became due: not yet 3 TTLs
        assert asyncio.run(cycle.get(10)).stale is False
        clock.now += 6  # 31 s
        stale = asyncio.run(cycle.get(10))
        assert stale.collection is first.collection
        assert stale.stale is True
        assert stale.stale_reason is not None
        assert "metric read failed" in stale.stale_reason
        failing = False
        time.sleep(0.1)
        asyncio.run(cycle.get(0))  # a cycle completes
        assert asyncio.run(cycle.get(10)).stale is False
        assert cycle.stats().failed >= 1
    finally:
        cycle.close()


def test_an_idle_cycle_is_not_stale(telemetry: Telemetry) -> None:
    clock = _Clock()
    cycle = _cycle(telemetry, clock)
    try:
        asyncio.run(cycle.get(1))
        clock.now += 3600  # nobody asked for an hour: old, but nothing failed
        served = asyncio.run(cycle.get(1))
        assert (served.age_seconds, served.stale) == (3600.0, False)
    finally:
        cycle.close()


def test_an_export_waits_at_most_its_interval_then_takes_the_newest_and_counts_it_late(
    telemetry: Telemetry, gated: _Gate
) -> None:
    first = asyncio.run(telemetry.cycle.get(30))
    time.sleep(0.25)
    gated.release.clear()  # the next cycle takes longer than the export's interval
    started = time.perf_counter()
    data = telemetry.export_source(ExportDemand(max_age_seconds=0.2, timeout_seconds=0.2))
    waited = time.perf_counter() - started
    assert data is first.collection.metrics
    assert 0.15 < waited < 1.0
    assert telemetry.cycle.stats().late == 1
    gated.release.set()


def test_an_export_reuses_a_collection_younger_than_its_interval(telemetry: Telemetry, gated: _Gate) -> None:
    first = asyncio.run(telemetry.cycle.get(30))
    data = telemetry.export_source(ExportDemand(max_age_seconds=30, timeout_seconds=1))
    assert data is first.collection.metrics
    assert gated.calls == 1


def test_the_final_export_collects_anew(telemetry: Telemetry, gated: _Gate) -> None:
    first = asyncio.run(telemetry.cycle.get(30))
    final = telemetry.export_source(ExportDemand(max_age_seconds=30, timeout_seconds=5, final=True))
    assert final is not first.collection.metrics
    assert gated.calls == 2


def test_a_collection_freezes_components_health_and_bus_membership(telemetry: Telemetry) -> None:
    service = instrument_service("svc", category="graph", telemetry=telemetry)
    service.report_health("warn", "slow")
    collection = asyncio.run(telemetry.cycle.get(30)).collection
    service.report_health("fail", "down")
    telemetry.components.declare_bus("llm")
    record = collection.component("svc")
    assert record is not None
    assert (record.kind, record.category, record.has_snapshot) == ("service", "graph", False)
    assert record.health is not None
    assert (record.health.status, record.health.reason) == ("warn", "slow")
    assert "llm" not in collection.buses
    with pytest.raises(TypeError):
        collection.buses["x"] = {}  # type: ignore[index]


def test_bad_ages_are_refused(telemetry: Telemetry) -> None:
    with pytest.raises(ValueError, match="max_age_seconds"):
        asyncio.run(telemetry.cycle.get(-1))
    with pytest.raises(ValueError, match="stale_after_ttls"):
        CollectionCycle(telemetry.collect, stale_after_ttls=0)


def test_closing_the_cycle_releases_whoever_waits_for_the_cycle_in_flight(
    telemetry: Telemetry, gated: _Gate
) -> None:
    cycle = CollectionCycle(telemetry.collect, longest_cycle_seconds=30)
    gated.release.clear()  # the first cycle hangs in the snapshot
    outcome: list[BaseException | None] = []

    def wait() -> None:
        try:
            asyncio.run(cycle.get(30))
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.2)
    started = time.perf_counter()
    cycle.close()
    waiter.join(5)
    assert not waiter.is_alive(), "a waiter was left hanging by close()"
    assert time.perf_counter() - started < 3
    [error] = outcome
    assert isinstance(error, RuntimeError)
    gated.release.set()
    assert cycle.status(0) is None  # after close: no new cycle, no error


def test_a_waiter_gives_up_after_the_longest_cycle(telemetry: Telemetry, gated: _Gate) -> None:
    cycle = CollectionCycle(telemetry.collect, longest_cycle_seconds=0.2)
    gated.release.clear()
    try:
        started = time.perf_counter()
        with pytest.raises(TimeoutError, match=r"no collection completed within 1\.2 s"):
            asyncio.run(cycle.get(30))
        assert time.perf_counter() - started < 2.5
    finally:
        gated.release.set()
        cycle.close()


def test_a_ttl_of_zero_is_not_stale_while_a_healthy_cycle_may_still_run(telemetry: Telemetry) -> None:
    clock = _Clock()
    release = threading.Event()
    cycles = 0

    async def collect() -> Collection:
        # The refreshes the status calls start stay in flight (a cycle that completed would end
        # the staleness this test is about), until the test is done.
        nonlocal cycles
        cycles += 1
        if cycles > 1:
            await asyncio.get_running_loop().run_in_executor(None, release.wait, 30)
        return await telemetry.collect()

    cycle = CollectionCycle(collect, clock=clock, longest_cycle_seconds=7, stale_after_ttls=3)
    try:
        asyncio.run(cycle.get(0))
        with cycle._lock:  # a refresh due since now, as a request would make it
            cycle._due_since = clock.now
        clock.now += 5  # 3 x the 1 s live floor is 3 s, but a healthy cycle may take 7 s
        assert cycle.status(0) is not None
        assert cycle.status(0).stale is False  # type: ignore[union-attr]
        clock.now += 17  # 22 s: past 3 x 7 s
        assert cycle.status(0).stale is True  # type: ignore[union-attr]
    finally:
        release.set()
        cycle.close()


def test_a_forked_child_collects_on_a_cycle_of_its_own(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import asyncio, os, sys
        from telemetry_otel import Telemetry, TelemetryConfig
        from telemetry_otel.exporters import GraphiteExporter
        from telemetry_otel.instrumentation import gauge, instrument_service
        telemetry = Telemetry(TelemetryConfig(service_name="fork"), [GraphiteExporter("127.0.0.1", 9)])
        instrument_service("svc", category="c", snapshot=lambda: {"svc.depth": os.getpid()},
                           metrics=[gauge("svc.depth", "{item}", "D.")], telemetry=telemetry)
        asyncio.run(telemetry.cycle.get(0))  # the parent's cycle thread runs
        child = os.fork()
        if child == 0:
            served = asyncio.run(asyncio.wait_for(telemetry.cycle.get(0), 5))
            depth = [p.value for rm in served.collection.metrics.resource_metrics
                     for sm in rm.scope_metrics for m in sm.metrics if m.name == "svc.depth"
                     for p in m.data.data_points]
            os._exit(0 if depth == [os.getpid()] else 3)
        _, status = os.waitpid(child, 0)
        print(os.waitstatus_to_exitcode(status))
        telemetry.shutdown(2_000)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False, cwd="/"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0"], (done.stdout, done.stderr)
