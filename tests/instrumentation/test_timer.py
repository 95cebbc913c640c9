"""``service.request()``: ``with``, ``async with`` and the decorators count requests, errors and latency."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

import pytest
from opentelemetry.sdk.metrics.export import HistogramDataPoint, NumberDataPoint

from telemetry_otel import Telemetry
from telemetry_otel.instrumentation import SCOPE_NAME, InstrumentedService, RequestTimer, instrument_service


def _counts(telemetry: Telemetry, service: str) -> tuple[int, int, int, float]:
    """Requests, errors, latency count and latency sum of ``service``, read back from a collection."""
    found: dict[str, object] = {}
    for resource_metrics in telemetry.read_metrics().resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            if scope_metrics.scope.name != SCOPE_NAME:
                continue
            for metric in scope_metrics.metrics:
                for point in metric.data.data_points:
                    if (point.attributes or {}).get("service.name") == service:
                        found[metric.name] = point
    requests = found.get("service.requests")
    errors = found.get("service.errors")
    latency = found.get("service.request.duration")
    assert isinstance(requests, NumberDataPoint)
    assert isinstance(errors, NumberDataPoint)
    if latency is None:
        return int(requests.value), int(errors.value), 0, 0.0
    assert isinstance(latency, HistogramDataPoint)
    return int(requests.value), int(errors.value), latency.count, latency.sum


@pytest.fixture
def service(telemetry: Telemetry) -> InstrumentedService:
    return instrument_service("timed", category="runtime", telemetry=telemetry)


def test_request_returns_a_timer_that_times_the_block(
    telemetry: Telemetry, service: InstrumentedService
) -> None:
    timer = service.request()
    assert isinstance(timer, RequestTimer)
    with timer:
        time.sleep(0.02)
    requests, errors, count, total = _counts(telemetry, "timed")
    assert (requests, errors, count) == (1, 0, 1)
    assert 0.02 <= total < 5


def test_with_counts_an_exception_as_an_error_and_lets_it_propagate(
    telemetry: Telemetry, service: InstrumentedService
) -> None:
    with pytest.raises(ValueError, match="boom"), service.request():
        raise ValueError("boom")
    assert _counts(telemetry, "timed")[:3] == (1, 1, 1)


def test_base_exceptions_that_are_not_exceptions_record_nothing(
    telemetry: Telemetry, service: InstrumentedService
) -> None:
    with pytest.raises(KeyboardInterrupt), service.request():
        raise KeyboardInterrupt

    @service.request()
    def interrupted() -> None:
        raise SystemExit(3)

    with pytest.raises(SystemExit):
        interrupted()
    assert _counts(telemetry, "timed")[:3] == (0, 0, 0)


def test_async_with_counts_requests_errors_and_latency(
    telemetry: Telemetry, service: InstrumentedService
) -> None:
    async def scenario() -> None:
        async with service.request():
            await asyncio.sleep(0.02)
        with pytest.raises(KeyError):
            async with service.request():
                raise KeyError("missing")

    asyncio.run(scenario())
    requests, errors, count, total = _counts(telemetry, "timed")
    assert (requests, errors, count) == (2, 1, 2)
    assert total >= 0.02


def test_a_cancelled_async_with_records_nothing(telemetry: Telemetry, service: InstrumentedService) -> None:
    async def cancelled() -> None:
        async with service.request():
            await asyncio.sleep(10)

    async def scenario() -> None:
        task = asyncio.create_task(cancelled())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert _counts(telemetry, "timed")[:3] == (0, 0, 0)


def test_decorated_function_is_one_request_per_call_and_keeps_its_result_and_name(
    telemetry: Telemetry, service: InstrumentedService
) -> None:
    @service.request()
    def handle(value: int, *, twice: bool = False) -> int:
        """Handle one value."""
        if value < 0:
            raise ValueError("negative")
        return value * 2 if twice else value

    assert handle(3) == 3
    assert handle(3, twice=True) == 6
    with pytest.raises(ValueError, match="negative"):
        handle(-1)
    assert handle.__name__ == "handle"
    assert handle.__doc__ == "Handle one value."
    assert _counts(telemetry, "timed")[:3] == (3, 1, 3)


def test_decorated_coroutine_function_times_the_awaited_call(
    telemetry: Telemetry, service: InstrumentedService
) -> None:
    @service.request()
    async def handle(delay: float) -> str:
        await asyncio.sleep(delay)
        if delay > 0.05:
            raise TimeoutError("slow")
        return "done"

    async def scenario() -> None:
        assert await handle(0.02) == "done"
        with pytest.raises(TimeoutError):
            await handle(0.06)

    assert asyncio.iscoroutinefunction(handle)
    asyncio.run(scenario())
    requests, errors, count, total = _counts(telemetry, "timed")
    assert (requests, errors, count) == (2, 1, 2)
    assert total >= 0.08  # the awaited time, not the creation of the coroutine


def test_a_cancelled_decorated_coroutine_records_nothing(
    telemetry: Telemetry, service: InstrumentedService
) -> None:
    @service.request()
    async def handle() -> None:
        await asyncio.sleep(10)

    async def scenario() -> None:
        task = asyncio.create_task(handle())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert _counts(telemetry, "timed")[:3] == (0, 0, 0)


def test_concurrent_async_requests_each_time_their_own_block(
    telemetry: Telemetry, service: InstrumentedService
) -> None:
    async def one(delay: float) -> None:
        async with service.request():
            await asyncio.sleep(delay)

    async def scenario() -> None:
        await asyncio.gather(one(0.05), one(0.01), one(0.03))

    asyncio.run(scenario())
    requests, _, count, total = _counts(telemetry, "timed")
    assert (requests, count) == (3, 3)
    assert total >= 0.09  # each block timed from its own start: 0.05 + 0.01 + 0.03


def test_timer_of_a_disabled_runtime_records_nothing_and_lets_exceptions_through() -> None:
    from telemetry_otel import TelemetryConfig

    runtime = Telemetry(TelemetryConfig(service_name="off", disabled=True))
    try:
        service = instrument_service("svc", telemetry=runtime)
        with service.request():
            pass
        with pytest.raises(ValueError, match="x"), service.request():
            raise ValueError("x")
    finally:
        runtime.shutdown()


def test_each_service_times_into_its_own_series_when_timers_interleave(telemetry: Telemetry) -> None:
    first = instrument_service("first", telemetry=telemetry)
    second = instrument_service("second", telemetry=telemetry)
    outer, inner = first.request(), second.request()
    assert isinstance(outer, RequestTimer)
    assert isinstance(inner, RequestTimer)
    with outer:
        with inner:
            pass
        with pytest.raises(ValueError, match="second fails"), second.request():
            raise ValueError("second fails")
    assert _counts(telemetry, "first")[:3] == (1, 0, 1)
    assert _counts(telemetry, "second")[:3] == (2, 1, 2)


def test_a_timer_reentered_times_each_entry_from_its_own_start(
    telemetry: Telemetry, service: InstrumentedService
) -> None:
    timer = service.request()
    time.sleep(0.05)  # made long before it is entered: the wait is not part of any request
    started = time.perf_counter()
    with timer:
        pass
    with timer:
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    requests, errors, count, total = _counts(telemetry, "timed")
    assert (requests, errors, count) == (2, 0, 2)
    assert 0.02 <= total <= elapsed


def test_a_timer_not_made_by_a_service_is_refused_before_anything_runs() -> None:
    ran: list[str] = []
    with pytest.raises(TypeError, match="context manager"), RequestTimer():
        ran.append("block")
    with pytest.raises(TypeError, match=r"made by InstrumentedService\.request\(\)"):
        RequestTimer()(lambda: ran.append("function"))
    assert ran == []


def test_threads_timing_requests_at_once_lose_none(
    telemetry: Telemetry, service: InstrumentedService
) -> None:
    per_thread, threads_count = 5_000, 4
    start = threading.Barrier(threads_count)

    @service.request()
    def handle(index: int) -> None:
        if index % 10 == 0:
            raise ValueError(index)

    def work() -> None:
        start.wait()
        for index in range(per_thread):
            with service.request():
                pass
            with contextlib.suppress(ValueError):
                handle(index)

    threads = [threading.Thread(target=work) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = 2 * per_thread * threads_count  # one block and one decorated call per iteration
    assert _counts(telemetry, "timed")[:3] == (total, per_thread * threads_count // 10, total)
