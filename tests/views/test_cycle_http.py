"""The collection cycle as clients see it, through real HTTP on a uvicorn server on loopback.

A request never waits on a refresh while a completed collection exists; a JSON body has each key
once and ages true when sent; everything a response shows comes from one cycle; live requests are
floored; data that stops refreshing is flagged stale and fails readiness.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest
from opentelemetry.metrics import CallbackOptions, Observation

from telemetry_otel import Snapshot, Telemetry, TelemetryConfig
from telemetry_otel.instrumentation import gauge, instrument_service
from telemetry_otel.views import create_app

BASE = "/api/demo/v1/telemetry"


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    assert duplicates == [], f"duplicate keys {duplicates}"
    return dict(pairs)


def _strict_json(response: httpx.Response) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(response.text, object_pairs_hook=_unique_keys)
    return document


def _wait_ready(http: httpx.Client, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while http.get(f"{BASE}/health/ready").status_code != 200:
        assert time.monotonic() < deadline, "no first collection in time"
        time.sleep(0.02)


@pytest.fixture
def runtime() -> Iterator[Telemetry]:
    telemetry = Telemetry(TelemetryConfig(service_name="cycle-http"))
    yield telemetry
    telemetry.shutdown()


def test_a_slow_snapshot_never_stalls_a_scrape_a_view_or_the_health_route(
    runtime: Telemetry, live_server: Any
) -> None:
    """Every refresh takes 0.6 s (one service's snapshot); with a 0.1 s TTL every request finds its
    collection expired, yet none waits for the refresh it starts."""
    calls = 0

    def slow() -> Snapshot:
        nonlocal calls
        calls += 1
        time.sleep(0.6)
        return {"slow.depth": calls}

    instrument_service(
        "slow",
        category="graph",
        snapshot=slow,
        metrics=[gauge("slow.depth", "{item}", "D.")],
        telemetry=runtime,
    )
    server = live_server(create_app(runtime, agent="demo", cache_ttl_seconds=0.1))
    slowest = 0.0
    ages: list[float] = []
    with httpx.Client(base_url=server.url, timeout=10) as http:
        _wait_ready(http)
        for index in range(45):
            path = ("/metrics", BASE, f"{BASE}/health")[index % 3]
            started = time.perf_counter()
            response = http.get(path)
            slowest = max(slowest, time.perf_counter() - started)
            assert response.status_code == 200, response.text
            if path == BASE:
                ages.append(_strict_json(response)["age_seconds"])
            time.sleep(0.02)
    assert slowest < 0.3, slowest  # a refresh takes 0.6 s: nobody waited for one
    assert max(ages) > 0.3  # served with its true age while the refresh ran
    assert 2 <= calls <= 8  # refreshes ran in the background, one at a time


def test_a_json_view_has_each_key_once_and_its_ages_are_true_when_sent(
    runtime: Telemetry, live_server: Any
) -> None:
    instrument_service("svc", category="graph", telemetry=runtime).report_health("pass")
    server = live_server(create_app(runtime, agent="demo", cache_ttl_seconds=60))
    with httpx.Client(base_url=server.url, timeout=10) as http:
        _wait_ready(http)
        for view in ("summary", "health", "operational", "performance", "reliability", "detailed"):
            first = _strict_json(http.get(BASE, params={"view": view}))
            time.sleep(0.2)
            again = _strict_json(http.get(BASE, params={"view": view}))
            assert first["timestamp"] == again["timestamp"]  # the same collection
            assert again["cached"] is True
            assert again["view"] == view
            assert again["age_seconds"] >= first["age_seconds"] + 0.15
            assert "cache_age_seconds" not in again
            assert again["stale"] is False


def test_a_cached_response_shows_the_health_and_layout_of_its_own_cycle(
    runtime: Telemetry, live_server: Any
) -> None:
    service = instrument_service("svc", category="graph", telemetry=runtime)
    service.report_health("pass")
    server = live_server(create_app(runtime, agent="demo", cache_ttl_seconds=60))
    with httpx.Client(base_url=server.url, timeout=10) as http:
        _wait_ready(http)
        before = _strict_json(http.get(BASE, params={"view": "health"}))
        service.report_health("fail", "database unreachable")
        instrument_service("newcomer", category="graph", telemetry=runtime)
        cached = _strict_json(http.get(BASE, params={"view": "health"}))
        detailed = _strict_json(http.get(BASE, params={"view": "detailed"}))
        scrape = http.get("/metrics").text
        health = http.get(f"{BASE}/health").json()
        assert cached["timestamp"] == before["timestamp"]
        assert cached["services"]["svc"]["status"] == "pass"
        assert "newcomer" not in cached["services"]
        assert detailed["services"]["svc"]["health"] == {"status": "pass", "reason": None}
        assert "newcomer" not in detailed["services"]
        assert health["checks"]["svc:health"][0]["status"] == "pass"
        assert 'service_name="newcomer"' not in scrape
        # A filter names a service of the served cycle, not of the live registry.
        refused = http.get(BASE, params={"service": "newcomer"})
        assert refused.status_code == 400
        assert refused.json()["allowed"] == ["svc"]
        time.sleep(1.05)  # past the live floor
        live = _strict_json(http.get(BASE, params={"view": "health", "live": "true"}))
        assert live["services"]["svc"]["status"] == "fail"
        assert "newcomer" in live["services"]


def test_live_requests_run_at_most_one_collection_per_floor_interval(live_server: Any) -> None:
    telemetry = Telemetry(TelemetryConfig(service_name="floor", live_min_interval_millis=500))
    calls = 0

    def counted() -> Snapshot:
        nonlocal calls
        calls += 1
        return {"floor.depth": calls}

    instrument_service(
        "floor",
        category="graph",
        snapshot=counted,
        metrics=[gauge("floor.depth", "{item}", "D.")],
        telemetry=telemetry,
    )
    try:
        server = live_server(create_app(telemetry, agent="demo", cache_ttl_seconds=60))
        with httpx.Client(base_url=server.url, timeout=10) as http:
            _wait_ready(http)
        before = calls
        limited = 0
        lock = threading.Lock()
        stop = time.monotonic() + 2.0

        def client() -> None:
            nonlocal limited
            with httpx.Client(base_url=server.url, timeout=10) as http:
                while time.monotonic() < stop:
                    body = _strict_json(http.get(BASE, params={"live": "true"}))
                    with lock:
                        limited += bool(body.get("live_limited"))

        threads = [threading.Thread(target=client) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(15)
        # 2 s at one live collection per 0.5 s: at most 5 (one may straddle the start).
        assert 1 <= calls - before <= 5, calls - before
        assert limited > 10
    finally:
        telemetry.shutdown()


def test_data_that_stops_refreshing_is_stale_and_readiness_fails_with_the_reason(live_server: Any) -> None:
    """The metric read (an observable callback here) takes longer than the collection timeout, so
    no cycle completes; after 3 TTLs of that, responses say stale and readiness answers 503."""
    telemetry = Telemetry(
        TelemetryConfig(
            service_name="stale",
            collection_timeout_millis=150,
            live_min_interval_millis=0,
            stale_after_ttls=3,
        )
    )
    broken = threading.Event()

    def observe(options: CallbackOptions) -> list[Observation]:
        if broken.is_set():
            time.sleep(0.3)
        return [Observation(1)]

    telemetry.get_meter("stale").create_observable_gauge("stale.probe", [observe])
    try:
        server = live_server(create_app(telemetry, agent="demo", cache_ttl_seconds=0.1))
        with httpx.Client(base_url=server.url, timeout=10) as http:
            _wait_ready(http)
            first = _strict_json(http.get(BASE))
            assert first["stale"] is False
            broken.set()
            deadline = time.monotonic() + 10
            ready = http.get(f"{BASE}/health/ready")
            while ready.status_code == 200:
                assert time.monotonic() < deadline, "never stale"
                http.get("/metrics")
                time.sleep(0.05)
                ready = http.get(f"{BASE}/health/ready")
            assert ready.status_code == 503
            output = ready.json()["output"]
            assert output.startswith("data is stale: no collection has completed for "), output
            assert "TimeoutError" in output
            stale = _strict_json(http.get(BASE))
            assert stale["stale"] is True
            # The last good collection, still served: the first one, or one that was already running
            # when the read broke; no later collection replaces it.
            assert _when(stale["timestamp"]) >= _when(first["timestamp"])
            time.sleep(0.3)
            assert _strict_json(http.get(BASE))["timestamp"] == stale["timestamp"]
            assert "TimeoutError" in stale["stale_reason"]
            assert http.get(f"{BASE}/health").json()["stale"] is True
            broken.clear()
            deadline = time.monotonic() + 10
            while http.get(f"{BASE}/health/ready").status_code != 200:
                assert time.monotonic() < deadline, "never fresh again"
                time.sleep(0.05)
            assert _strict_json(http.get(BASE))["stale"] is False
    finally:
        broken.clear()
        telemetry.shutdown()


def test_an_async_snapshot_on_the_servers_loop_is_never_stacked_on_itself(live_server: Any) -> None:
    """Under a server, async snapshot functions run on the server's loop. One that ignores its
    cancellation and runs past the timeout is still running at the next cycle: that cycle reports it,
    it does not start a second call."""
    telemetry = Telemetry(
        TelemetryConfig(service_name="stack", service_timeout_millis=200, live_min_interval_millis=0)
    )
    running = 0
    peak = 0

    async def stubborn() -> Snapshot:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            for _ in range(20):
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.sleep(0.05)
            return {"stubborn.depth": 1}
        finally:
            running -= 1

    instrument_service(
        "stubborn",
        category="graph",
        snapshot=stubborn,
        metrics=[gauge("stubborn.depth", "{item}", "D.")],
        telemetry=telemetry,
    )
    try:
        server = live_server(create_app(telemetry, agent="demo", cache_ttl_seconds=60))
        with httpx.Client(base_url=server.url, timeout=10) as http:
            _wait_ready(http)
            errors = [
                _strict_json(http.get(BASE, params={"view": "reliability", "live": "true"}))["services"][
                    "stubborn"
                ]["snapshot_error"]
                for _ in range(3)
            ]
        assert peak == 1
        assert all(error.startswith("previous snapshot still running") for error in errors), errors
    finally:
        telemetry.shutdown()


def _when(timestamp: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
