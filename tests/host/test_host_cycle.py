"""A worker's collection source is the host picture, asked per request over real loopback HTTP.

Two runtimes in this process are two workers of one in-process aggregator. A request never gets an
older picture than one already served; while nothing changed the aggregator answers 304 and the
worker hands out the same ``Collection`` object (so its renderings stay cached); an aggregator that
does not answer is an error the endpoint turns into a 503, never a silent empty picture.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from telemetry_otel import Telemetry, TelemetryConfig
from telemetry_otel.host import HostAggregator, HostCycle, HostLink, HostUnreachableError
from telemetry_otel.instrumentation import instrument_service


@pytest.fixture
def aggregator() -> Iterator[HostAggregator]:
    running = HostAggregator.start("127.0.0.1", 0)
    yield running
    running.close()


def _worker(aggregator: HostAggregator) -> Telemetry:
    endpoint = "{}:{}".format(*aggregator.address)
    return Telemetry(
        TelemetryConfig(service_name="cycle", host_endpoint=endpoint, report_interval_millis=60_000)
    )


def _requests(telemetry: Telemetry) -> float:
    collection = telemetry.cycle.get_blocking(0, 10).collection
    return sum(
        float(getattr(point, "value", 0))
        for owned in collection.index.service("svc")
        if owned.metric.name == "service.requests"
        for point in owned.points
    )


def test_every_worker_answers_with_the_host_picture(aggregator: HostAggregator) -> None:
    first, second = _worker(aggregator), _worker(aggregator)
    try:
        assert isinstance(first.cycle, HostCycle)
        for telemetry, requests in ((first, 3), (second, 4)):
            service = instrument_service("svc", category="runtime", telemetry=telemetry)
            for _ in range(requests):
                service.record_request(0.01)
            assert telemetry.report_to_host()
        assert _requests(first) == _requests(second) == 7
        served = asyncio.run(second.cycle.get(30))
        assert served.collection.host is not None
        assert len(served.collection.host.workers) == 2
        assert [record.name for record in served.collection.components] == ["svc"]
    finally:
        first.shutdown()
        second.shutdown()


def test_an_unchanged_picture_is_the_same_collection(aggregator: HostAggregator) -> None:
    telemetry = _worker(aggregator)
    try:
        telemetry.report_to_host()
        fresh = telemetry.cycle.get_blocking(0, 10)
        again = telemetry.cycle.get_blocking(0, 10)
        assert (fresh.cached, again.cached) == (False, True)
        assert again.collection is fresh.collection
        assert telemetry.cycle.collect_now(10) is fresh.collection
        assert telemetry.cycle.latest is fresh.collection
        status = telemetry.cycle.status(30)
        assert status is not None
        assert status.collection is fresh.collection
        telemetry.report_to_host()
        newer = telemetry.cycle.get_blocking(0, 10)
        assert newer.collection is not fresh.collection
        assert newer.previous is fresh.collection
        stats = telemetry.cycle.stats()
        assert (stats.completed, stats.failed) == (2, 0)
    finally:
        telemetry.shutdown()
    with pytest.raises(RuntimeError, match="closed"):
        telemetry.cycle.get_blocking(0, 10)


def test_an_aggregator_that_does_not_answer_is_an_error_not_an_empty_picture() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    link = HostLink(
        ("127.0.0.1", port),
        collect_local=lambda timeout: pytest.fail("no report in this test"),
        resource=lambda: pytest.fail("no report in this test"),
        interval_seconds=60,
        timeout_seconds=2,
        autostart=False,
    )
    cycle = HostCycle(link, longest_cycle_seconds=1, live_min_interval_millis=0)
    with pytest.raises(HostUnreachableError, match=f"no host aggregator answers at 127.0.0.1:{port}"):
        cycle.get_blocking(0, 1)
    assert cycle.stats().failed == 1
    assert cycle.status(30) is None
    cycle.close()


def test_readiness_is_not_passed_on_an_old_picture_once_the_aggregator_is_gone() -> None:
    aggregator = HostAggregator.start("127.0.0.1", 0)
    telemetry = _worker(aggregator)
    try:
        telemetry._host.autostart = False  # type: ignore[union-attr]
        telemetry.report_to_host()
        assert telemetry.cycle.get_blocking(0, 10).stale is False
        aggregator.close()
        with pytest.raises(HostUnreachableError):
            telemetry.cycle.get_blocking(0, 10)
        status = telemetry.cycle.status(30)
        assert status is not None
        assert status.stale is True
        assert status.stale_reason is not None
        assert "the host picture cannot be fetched: HostUnreachableError" in status.stale_reason
    finally:
        telemetry.shutdown()
        aggregator.close()
