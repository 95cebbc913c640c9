"""Cost of the forms that time a request: ``with``, ``async with`` and the decorators.

One operation is one successful request (counted, its latency recorded). Alternatives, side by side
in one process (see ``_harness``), each on its own runtime and service:

* ``prom_bound_ok``: ``prometheus_client`` children bound once, ``child.inc()`` +
  ``hchild.observe(latency)`` with the precomputed latencies of ``bench_record_request``. THE BASELINE.
* ``record_request``: ``service.record_request(latency)``, the pre-bound fast path the forms call.
* ``with_request``: ``with service.request(): pass``.
* ``async_with_request``: ``async with service.request(): pass`` inside a coroutine.
* ``decorated``: a function decorated with ``@service.request()``, called.
* ``decorated_async``: a coroutine function decorated with ``@service.request()``, awaited inside a
  coroutine.
* ``contextmanager_before``: the form as it was before issue 17, a ``@contextlib.contextmanager``
  generator around ``record_request``, kept here to show the change side by side.

References doing the same user work as a form (same pre-bound ``inc()`` + ``observe(latency)``):

* ``prom_called``: the empty function of ``decorated``, called, then ``inc()`` + ``observe()``.
* ``prom_awaited``: the empty coroutine function of ``decorated_async``, awaited in the same driven
  coroutine, then ``inc()`` + ``observe()``. A decorated form's figure holds the call (or the
  coroutine and its await) of the user's own function, which costs the same without any metrics:
  these references hold it too.
* ``prom_time`` / ``prom_time_async``: prometheus_client's own way to time a block, ``inc()`` and
  ``with hchild.time(): pass`` (in a ``def`` loop, and in an ``async def`` loop: prometheus_client
  has no ``async with``), which reads the clock twice as the forms do. Reported only.

Floors, hand-written, recording through ``record_request`` like the forms (reported only):

* ``floor_with``: the clock read, an empty ``with`` on a C-level context manager (an uncontended
  ``threading.Lock``), the clock read, ``record_request``: what no Python context manager can beat.
* ``floor_async_with``: the same around ``async with`` on one shared object whose ``__aenter__`` and
  ``__aexit__`` do nothing but return the done awaitable of ``RequestTimer`` (no C-level
  asynchronous context manager exists): the cheapest ``async with`` there is.

The coroutine alternatives run their whole loop in one coroutine driven without an event loop
(nothing suspends), so what is timed is the request form, not a scheduler. The forms measure the
latency themselves (two clock reads), which the baseline does not: that cost is theirs.

After timing, every alternative's request and latency counts are read back from its own collected
data and must equal the operations performed (and no error counted).

Targets (issue 17): ``with_request``, ``async_with_request``, ``decorated`` and ``decorated_async``
<= 0.6 x ``prom_bound_ok``. Also printed: each form against the reference doing its same user work
(``SAME_WORK``; for ``with`` and ``async with`` that is ``prom_bound_ok`` itself, an empty block
costing nothing). Reported, never enforced.

Run: ``python benchmarks/bench_request_forms.py [--rounds N] [--ops N] [--warmup-ops N] [--json]``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from time import perf_counter
from typing import Any

from _harness import Comparison, compare, write_results
from bench_record_request import (
    PROM_VALUES,
    Recorded,
    Subject,
    _prom_recorded,
    _prom_registry,
    _sdk_recorded,
    make_requests,
)

import telemetry_otel
from telemetry_otel.instrumentation import InstrumentedService, instrument_service
from telemetry_otel.instrumentation._timer import _DONE

BENCHMARK = "request_forms"
BASELINE = "prom_bound_ok"
TARGET = 0.6
#: The alternatives the issue's target applies to.
FORMS = ("with_request", "async_with_request", "decorated", "decorated_async")
#: Each form's reference doing the same user work (an empty block, a call, an awaited coroutine).
SAME_WORK = {
    "with_request": BASELINE,
    "async_with_request": BASELINE,
    "decorated": "prom_called",
    "decorated_async": "prom_awaited",
}

SERVICE_ATTRIBUTES = {"service.name": "svc", "service.category": "runtime"}


def _drive(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine that never suspends to its end, without an event loop."""
    try:
        coroutine.send(None)
    except StopIteration:
        return
    coroutine.close()
    raise RuntimeError("the benchmark coroutine suspended: it must not")


def _service_subject(make_run: Callable[[InstrumentedService], Callable[[int], None]]) -> Subject:
    telemetry = telemetry_otel.Telemetry(telemetry_otel.TelemetryConfig(service_name="bench"))
    if telemetry.disabled:
        raise RuntimeError("the telemetry runtime is disabled: the forms would be no-ops")
    service = instrument_service("svc", category="runtime", telemetry=telemetry)

    def recorded() -> Recorded:
        return _sdk_recorded(telemetry.read_metrics(), SERVICE_ATTRIBUTES)

    def close() -> None:
        service.close()
        telemetry.shutdown()

    return Subject(make_run(service), recorded, close)


def prom_bound_ok_subject(requests: Sequence[tuple[float, bool]]) -> Subject:
    """prometheus_client pre-bound children: ``inc()`` + ``observe(latency)``, no error."""
    registry, counter, _errors, histogram = _prom_registry()
    latencies = itertools.cycle([latency for latency, _ in requests])
    inc = counter.labels(*PROM_VALUES).inc
    observe = histogram.labels(*PROM_VALUES).observe

    def run(n: int) -> None:
        for latency in itertools.islice(latencies, n):
            inc()
            observe(latency)

    return Subject(run, lambda: _prom_recorded(registry), lambda: None)


def _prom_subject(make_run: Callable[[Callable[[], None], Any], Callable[[int], None]]) -> Subject:
    """A prometheus_client alternative whose loop is ``make_run(inc, histogram child)``."""
    registry, counter, _errors, histogram = _prom_registry()
    run = make_run(counter.labels(*PROM_VALUES).inc, histogram.labels(*PROM_VALUES))
    return Subject(run, lambda: _prom_recorded(registry), lambda: None)


def prom_called_subject(requests: Sequence[tuple[float, bool]]) -> Subject:
    """``handle()`` (empty, as in ``decorated``), then ``inc()`` + ``observe(latency)``."""
    latencies = itertools.cycle([latency for latency, _ in requests])

    def handle() -> None:
        pass

    def make(inc: Callable[[], None], child: Any) -> Callable[[int], None]:
        observe = child.observe

        def run(n: int) -> None:
            for latency in itertools.islice(latencies, n):
                handle()
                inc()
                observe(latency)

        return run

    return _prom_subject(make)


def prom_awaited_subject(requests: Sequence[tuple[float, bool]]) -> Subject:
    """``await handle()`` (empty, as in ``decorated_async``), then ``inc()`` + ``observe(latency)``."""
    latencies = itertools.cycle([latency for latency, _ in requests])

    async def handle() -> None:
        pass

    def make(inc: Callable[[], None], child: Any) -> Callable[[int], None]:
        observe = child.observe

        async def loop(n: int) -> None:
            for latency in itertools.islice(latencies, n):
                await handle()
                inc()
                observe(latency)

        return lambda n: _drive(loop(n))

    return _prom_subject(make)


def prom_time_subject() -> Subject:
    """prometheus_client's timing of a block: ``inc()`` and ``with hchild.time(): pass``."""

    def make(inc: Callable[[], None], child: Any) -> Callable[[int], None]:
        time = child.time

        def run(n: int) -> None:
            for _ in itertools.repeat(None, n):
                inc()
                with time():
                    pass

        return run

    return _prom_subject(make)


def prom_time_async_subject() -> Subject:
    """The same in an ``async def``: prometheus_client has no asynchronous context manager."""

    def make(inc: Callable[[], None], child: Any) -> Callable[[int], None]:
        time = child.time

        async def loop(n: int) -> None:
            for _ in itertools.repeat(None, n):
                inc()
                with time():
                    pass

        return lambda n: _drive(loop(n))

    return _prom_subject(make)


def record_request_run(requests: Sequence[tuple[float, bool]]) -> Callable[[InstrumentedService], Any]:
    latencies = itertools.cycle([latency for latency, _ in requests])

    def make(service: InstrumentedService) -> Callable[[int], None]:
        record = service.record_request

        def run(n: int) -> None:
            for latency in itertools.islice(latencies, n):
                record(latency)

        return run

    return make


def with_run(service: InstrumentedService) -> Callable[[int], None]:
    request = service.request

    def run(n: int) -> None:
        for _ in itertools.repeat(None, n):
            with request():
                pass

    return run


def async_with_run(service: InstrumentedService) -> Callable[[int], None]:
    request = service.request

    async def loop(n: int) -> None:
        for _ in itertools.repeat(None, n):
            async with request():
                pass

    return lambda n: _drive(loop(n))


def decorated_run(service: InstrumentedService) -> Callable[[int], None]:
    @service.request()
    def handle() -> None:
        pass

    def run(n: int) -> None:
        for _ in itertools.repeat(None, n):
            handle()

    return run


def decorated_async_run(service: InstrumentedService) -> Callable[[int], None]:
    @service.request()
    async def handle() -> None:
        pass

    async def loop(n: int) -> None:
        for _ in itertools.repeat(None, n):
            await handle()

    return lambda n: _drive(loop(n))


def floor_with_run(service: InstrumentedService) -> Callable[[int], None]:
    record = service.record_request
    lock = threading.Lock()

    def run(n: int) -> None:
        for _ in itertools.repeat(None, n):
            started = perf_counter()
            with lock:
                pass
            record(perf_counter() - started, False)

    return run


class _EmptyAsync:
    """The cheapest asynchronous context manager: plain methods returning an awaitable already done."""

    __slots__ = ()

    def __aenter__(self) -> Awaitable[None]:
        return _DONE

    def __aexit__(self, *exc_info: object) -> Awaitable[None]:
        return _DONE


def floor_async_with_run(service: InstrumentedService) -> Callable[[int], None]:
    record = service.record_request
    empty = _EmptyAsync()

    async def loop(n: int) -> None:
        for _ in itertools.repeat(None, n):
            started = perf_counter()
            async with empty:
                pass
            record(perf_counter() - started, False)

    return lambda n: _drive(loop(n))


def contextmanager_before_run(service: InstrumentedService) -> Callable[[int], None]:
    """The ``request()`` of before issue 17, verbatim, as a generator context manager."""

    @contextlib.contextmanager
    def request() -> Iterator[None]:
        started = perf_counter()
        try:
            yield
        except Exception:
            service.record_request(perf_counter() - started, True)
            raise
        service.record_request(perf_counter() - started, False)

    def run(n: int) -> None:
        for _ in itertools.repeat(None, n):
            with request():
                pass

    return run


def build_subjects(requests: Sequence[tuple[float, bool]]) -> dict[str, Subject]:
    """Every alternative, in report order."""
    return {
        BASELINE: prom_bound_ok_subject(requests),
        "record_request": _service_subject(record_request_run(requests)),
        "with_request": _service_subject(with_run),
        "async_with_request": _service_subject(async_with_run),
        "decorated": _service_subject(decorated_run),
        "decorated_async": _service_subject(decorated_async_run),
        "contextmanager_before": _service_subject(contextmanager_before_run),
        "floor_with": _service_subject(floor_with_run),
        "floor_async_with": _service_subject(floor_async_with_run),
        "prom_called": prom_called_subject(requests),
        "prom_awaited": prom_awaited_subject(requests),
        "prom_time": prom_time_subject(),
        "prom_time_async": prom_time_async_subject(),
    }


def verify(subjects: dict[str, Subject], total_ops: int) -> None:
    """Every alternative recorded exactly ``total_ops`` requests and latencies, and no error."""
    expected = Recorded(requests=total_ops, errors=0, latencies=total_ops)
    wrong = {name: got for name, subject in subjects.items() if (got := subject.recorded()) != expected}
    if wrong:
        raise RuntimeError(f"wrong counts (expected {expected}): {wrong}")


def targets(comparison: Comparison) -> list[tuple[str, float, bool]]:
    """(figure, ratio, met) for every form the issue's target applies to: against the baseline, then
    against the reference doing the same user work where that is another one."""
    strict = [
        (f"{name} / {BASELINE} <= {TARGET}", ratio, ratio <= TARGET)
        for name in FORMS
        for ratio in [comparison.result(name).median_ratio]
    ]
    same_work = [
        (f"{name} / {reference} (same user work) <= {TARGET}", ratio, ratio <= TARGET)
        for name in FORMS
        if (reference := SAME_WORK[name]) != BASELINE
        for ratio in [comparison.ratio(name, reference)]
    ]
    return strict + same_work


def run(rounds: int, ops: int, warmup_ops: int) -> Comparison:
    """Time every alternative and verify what each recorded."""
    subjects = build_subjects(make_requests())
    try:
        comparison = compare(
            BENCHMARK,
            {name: subject.run for name, subject in subjects.items()},
            baseline=BASELINE,
            rounds=rounds,
            ops=ops,
            warmup_ops=warmup_ops,
        )
        verify(subjects, comparison.total_ops)
    finally:
        for subject in subjects.values():
            subject.close()
    return comparison


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the table and the targets, optionally save JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=21, help="timed rounds (default 21)")
    parser.add_argument("--ops", type=int, default=20_000, help="requests per alternative per round")
    parser.add_argument("--warmup-ops", type=int, default=2_000, help="untimed requests first")
    parser.add_argument("--json", action="store_true", help="also write the results under results/")
    args = parser.parse_args(argv)
    comparison = run(args.rounds, args.ops, args.warmup_ops)
    print(comparison.report())
    before = comparison.ratio("contextmanager_before", "with_request")
    print(f"\ncontextmanager_before / with_request = {before:.2f}")
    for name, reference in (("with_request", "prom_time"), ("async_with_request", "prom_time_async")):
        ratio = comparison.ratio(name, reference)
        print(f"{name} / {reference} (prometheus_client timing a block) = {ratio:.3f}")
    for name, floor in (("with_request", "floor_with"), ("async_with_request", "floor_async_with")):
        ratio = comparison.result(floor).median_ratio
        print(f"{floor} / {BASELINE} (the floor of {name}) = {ratio:.3f}")
    print("targets (reported only):")
    for figure, ratio, met in targets(comparison):
        print(f"  {figure}: {ratio:.3f} -> {'met' if met else 'NOT met'}")
    print("verified: every alternative recorded every request and latency, no error")
    if args.json:
        print(f"results written to {write_results(BENCHMARK, [comparison])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
