"""Cost of recording ONE request: count it, record its latency, count an error every 10th request.

Alternatives, side by side in one process (see ``_harness``):

* ``vitals``: ``instrument_service("svc", category="runtime", telemetry=t).record_request(latency, error)``
  on a ``telemetry_otel.Telemetry`` runtime. The service binds two attributes (``service.name``,
  ``service.category``); it cannot take a third, and its recording cost does not depend on them.
* ``otel_sdk``: the raw OpenTelemetry SDK (``MeterProvider`` with one ``InMemoryMetricReader``,
  default settings): ``Counter.add(1, attrs)`` + ``Histogram.record(latency, attrs)`` (+ error
  ``Counter.add(1, attrs)``) with three attributes ``service.name``, ``service.category``, ``bus.name``.
* ``otel_sdk_2attr``: the same with vitals' two attributes, to show what the third one costs.
* ``prom_labels``: ``prometheus_client`` with ``Counter.labels(...).inc()`` +
  ``Histogram.labels(...).observe(latency)``, the label children looked up on every call.
* ``prom_bound``: ``prometheus_client`` children bound once: ``child.inc()`` + ``hchild.observe(latency)``.
  THE BASELINE.

The prometheus_client alternatives use the same three labels as ``otel_sdk`` (``service_name``,
``service_category``, ``bus_name``), each in its own ``CollectorRegistry``. Every histogram has the
buckets of ``telemetry_otel.instrumentation.LATENCY_BUCKETS``. Every alternative walks the same
precomputed list of (latency, error) pairs: lognormal latencies (seeded), every 10th an error.

After timing, each alternative's recorded request, error and latency counts are read back from its
own collected data and checked against the number of operations performed: a benchmark of a no-op
fails loudly.

Run: ``python benchmarks/bench_record_request.py [--rounds N] [--ops N] [--warmup-ops N] [--json]``.
"""

from __future__ import annotations

import argparse
import itertools
import math
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata

import prometheus_client
from _harness import Comparison, compare, write_results
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    Histogram as HistogramData,
)
from opentelemetry.sdk.metrics.export import (
    InMemoryMetricReader,
    MetricsData,
)
from opentelemetry.sdk.metrics.export import (
    Sum as SumData,
)

import telemetry_otel
from telemetry_otel.instrumentation import (
    LATENCY_BUCKETS,
    instrument_service,
)

BENCHMARK = "record_request"
BASELINE = "prom_bound"

#: Pairs in the latency cycle; a multiple of 10 so "every 10th request" holds across the wrap.
SAMPLES = 10_000
ERROR_EVERY = 10
SEED = 20_240_601
#: Lognormal latency: median 20 ms, sigma 1.2 (spans the buckets from ~0.5 ms to seconds).
LATENCY_MEDIAN_SECONDS = 0.020
LATENCY_SIGMA = 1.2

SERVICE = "svc"
CATEGORY = "runtime"
BUS = "llm"
OTEL_ATTRS_3: dict[str, str] = {"service.name": SERVICE, "service.category": CATEGORY, "bus.name": BUS}
OTEL_ATTRS_2: dict[str, str] = {"service.name": SERVICE, "service.category": CATEGORY}
PROM_LABELS = ("service_name", "service_category", "bus_name")
PROM_VALUES = (SERVICE, CATEGORY, BUS)

REQUESTS = "service.requests"
ERRORS = "service.errors"
DURATION = "service.request.duration"

Request = tuple[float, bool]


def make_requests(count: int = SAMPLES, seed: int = SEED) -> list[Request]:
    """``count`` (latency seconds, error) pairs: seeded lognormal latencies, every 10th an error."""
    rng = random.Random(seed)
    mu = math.log(LATENCY_MEDIAN_SECONDS)
    return [(rng.lognormvariate(mu, LATENCY_SIGMA), i % ERROR_EVERY == ERROR_EVERY - 1) for i in range(count)]


@dataclass(frozen=True)
class Recorded:
    """What an alternative's collected data says it recorded."""

    requests: int
    errors: int
    latencies: int


@dataclass(frozen=True)
class Subject:
    """One alternative: the timed callable, how to read back what it recorded, how to release it."""

    run: Callable[[int], None]
    recorded: Callable[[], Recorded]
    close: Callable[[], None]


def _sdk_recorded(data: MetricsData | None, attributes: dict[str, str]) -> Recorded:
    """Request, error and latency counts of the series with ``attributes`` in SDK metrics data."""
    found: dict[str, int] = {}
    wanted = dict(attributes)
    for resource_metrics in data.resource_metrics if data is not None else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                counted = 0
                if metric.name == DURATION and isinstance(metric.data, HistogramData):
                    counted = sum(
                        p.count for p in metric.data.data_points if dict(p.attributes or {}) == wanted
                    )
                elif metric.name in (REQUESTS, ERRORS) and isinstance(metric.data, SumData):
                    counted = sum(
                        int(p.value) for p in metric.data.data_points if dict(p.attributes or {}) == wanted
                    )
                found[metric.name] = found.get(metric.name, 0) + counted
    return Recorded(found.get(REQUESTS, 0), found.get(ERRORS, 0), found.get(DURATION, 0))


def vitals_subject(requests: Sequence[Request]) -> Subject:
    """``instrument_service(...).record_request(latency, error)`` on a fresh ``Telemetry``."""
    telemetry = telemetry_otel.Telemetry(telemetry_otel.TelemetryConfig(service_name="bench"))
    if telemetry.disabled:
        raise RuntimeError("the telemetry runtime is disabled: vitals would be a no-op")
    service = instrument_service(SERVICE, category=CATEGORY, telemetry=telemetry)
    pairs = itertools.cycle(requests)
    record = service.record_request

    def run(n: int) -> None:
        for latency, error in itertools.islice(pairs, n):
            record(latency, error)

    def recorded() -> Recorded:
        return _sdk_recorded(
            telemetry.read_metrics(), {"service.name": SERVICE, "service.category": CATEGORY}
        )

    def close() -> None:
        service.close()
        telemetry.shutdown()

    return Subject(run, recorded, close)


def otel_sdk_subject(requests: Sequence[Request], attributes: dict[str, str]) -> Subject:
    """Raw SDK: ``Counter.add`` + ``Histogram.record`` (+ error ``Counter.add``) with ``attributes``."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    meter = provider.get_meter("bench.otel_sdk")
    counter = meter.create_counter(REQUESTS, "{request}", "Requests handled by the service.")
    errors = meter.create_counter(ERRORS, "{error}", "Requests the service failed.")
    histogram = meter.create_histogram(
        DURATION,
        "s",
        "Time the service took to handle a request.",
        explicit_bucket_boundaries_advisory=LATENCY_BUCKETS,
    )
    pairs = itertools.cycle(requests)
    add = counter.add
    add_error = errors.add
    observe = histogram.record
    attrs = dict(attributes)

    def run(n: int) -> None:
        for latency, error in itertools.islice(pairs, n):
            add(1, attrs)
            observe(latency, attrs)
            if error:
                add_error(1, attrs)

    def recorded() -> Recorded:
        return _sdk_recorded(reader.get_metrics_data(), attrs)

    def close() -> None:
        provider.shutdown()

    return Subject(run, recorded, close)


def _prom_registry() -> tuple[
    prometheus_client.CollectorRegistry,
    prometheus_client.Counter,
    prometheus_client.Counter,
    prometheus_client.Histogram,
]:
    registry = prometheus_client.CollectorRegistry()
    counter = prometheus_client.Counter(
        "service_requests", "Requests handled by the service.", PROM_LABELS, registry=registry
    )
    errors = prometheus_client.Counter(
        "service_errors", "Requests the service failed.", PROM_LABELS, registry=registry
    )
    histogram = prometheus_client.Histogram(
        "service_request_duration_seconds",
        "Time the service took to handle a request.",
        PROM_LABELS,
        registry=registry,
        buckets=LATENCY_BUCKETS,
    )
    return registry, counter, errors, histogram


def _prom_recorded(registry: prometheus_client.CollectorRegistry) -> Recorded:
    labels = dict(zip(PROM_LABELS, PROM_VALUES, strict=True))

    def value(sample: str) -> int:
        found = registry.get_sample_value(sample, labels)
        return int(found) if found is not None else 0

    return Recorded(
        value("service_requests_total"),
        value("service_errors_total"),
        value("service_request_duration_seconds_count"),
    )


def prom_labels_subject(requests: Sequence[Request]) -> Subject:
    """prometheus_client, label children looked up on every call with ``.labels(...)``."""
    registry, counter, errors, histogram = _prom_registry()
    pairs = itertools.cycle(requests)
    counter_labels = counter.labels
    errors_labels = errors.labels
    histogram_labels = histogram.labels

    def run(n: int) -> None:
        for latency, error in itertools.islice(pairs, n):
            counter_labels(SERVICE, CATEGORY, BUS).inc()
            histogram_labels(SERVICE, CATEGORY, BUS).observe(latency)
            if error:
                errors_labels(SERVICE, CATEGORY, BUS).inc()

    return Subject(run, lambda: _prom_recorded(registry), lambda: None)


def prom_bound_subject(requests: Sequence[Request]) -> Subject:
    """prometheus_client, children bound once: ``child.inc()`` + ``hchild.observe(latency)``."""
    registry, counter, errors, histogram = _prom_registry()
    pairs = itertools.cycle(requests)
    inc = counter.labels(*PROM_VALUES).inc
    inc_error = errors.labels(*PROM_VALUES).inc
    observe = histogram.labels(*PROM_VALUES).observe

    def run(n: int) -> None:
        for latency, error in itertools.islice(pairs, n):
            inc()
            observe(latency)
            if error:
                inc_error()

    return Subject(run, lambda: _prom_recorded(registry), lambda: None)


def build_subjects(requests: Sequence[Request]) -> dict[str, Subject]:
    """Every alternative, in report order."""
    return {
        "vitals": vitals_subject(requests),
        "otel_sdk": otel_sdk_subject(requests, OTEL_ATTRS_3),
        "otel_sdk_2attr": otel_sdk_subject(requests, OTEL_ATTRS_2),
        "prom_labels": prom_labels_subject(requests),
        BASELINE: prom_bound_subject(requests),
    }


def verify(subjects: dict[str, Subject], requests: Sequence[Request], total_ops: int) -> Recorded:
    """Check every alternative recorded exactly ``total_ops`` requests; raise if any did not."""
    cycles, rest = divmod(total_ops, len(requests))
    errors = cycles * sum(1 for _, error in requests if error) + sum(
        1 for _, error in requests[:rest] if error
    )
    expected = Recorded(requests=total_ops, errors=errors, latencies=total_ops)
    wrong = {name: got for name, subject in subjects.items() if (got := subject.recorded()) != expected}
    if wrong:
        details = "; ".join(f"{name}: {got}" for name, got in wrong.items())
        raise RuntimeError(f"benchmark recorded the wrong counts (expected {expected}): {details}")
    return expected


def _versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    for dist in ("telemetry-otel", "opentelemetry-sdk", "prometheus_client"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "unknown"
    return versions


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def summary(comparison: Comparison) -> str:
    """The headline ratios and where they stand against the hot-path targets (reported, not enforced)."""
    vs_base = comparison.result("vitals").median_ratio
    sdk_over_vitals = comparison.ratio("otel_sdk", "vitals")
    sdk2_over_vitals = comparison.ratio("otel_sdk_2attr", "vitals")
    lines = [
        "",
        f"ratios against the baseline {BASELINE!r} (median of per-round ratios):",
        *(
            f"  {r.name} / {BASELINE} = {r.median_ratio:.3f}"
            for r in comparison.results
            if r.name != BASELINE
        ),
        "raw SDK against vitals (median of per-round ratios):",
        f"  otel_sdk / vitals = {sdk_over_vitals:.2f}  (SDK with 3 attributes, vitals binds 2)",
        f"  otel_sdk_2attr / vitals = {sdk2_over_vitals:.2f}  (same 2 attributes)",
        "hot-path targets (reported only):",
        f"  vitals / {BASELINE} <= 1.0: {vs_base:.3f} -> {_verdict(vs_base <= 1.0)}",
        f"  otel_sdk / vitals >= 5.0: {sdk_over_vitals:.2f} -> {_verdict(sdk_over_vitals >= 5.0)}",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the table and ratios, verify the recorded counts, optionally save JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds (default 15)")
    parser.add_argument(
        "--ops", type=int, default=20_000, help="requests per alternative per round (default 20000)"
    )
    parser.add_argument("--warmup-ops", type=int, default=2_000, help="untimed requests first (default 2000)")
    parser.add_argument(
        "--json", action="store_true", help="also write the results under benchmarks/results/"
    )
    args = parser.parse_args(argv)

    requests = make_requests()
    subjects = build_subjects(requests)
    try:
        comparison = compare(
            BENCHMARK,
            {name: subject.run for name, subject in subjects.items()},
            baseline=BASELINE,
            rounds=args.rounds,
            ops=args.ops,
            warmup_ops=args.warmup_ops,
        )
        expected = verify(subjects, requests, comparison.total_ops)
    finally:
        for subject in subjects.values():
            subject.close()

    print(comparison.report())
    print(summary(comparison))
    print(
        f"\nverified: every alternative recorded {expected.requests} requests, {expected.errors} errors "
        f"and {expected.latencies} latencies (read back from its collected data)"
    )
    versions = _versions()
    print(
        "versions: "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
        + f"; python {sys.version.split()[0]}"
    )
    if args.json:
        path = write_results(
            BENCHMARK,
            [comparison],
            extra={
                "versions": versions,
                "attributes": {
                    "vitals": 2,
                    "otel_sdk": 3,
                    "otel_sdk_2attr": 2,
                    "prom_labels": 3,
                    "prom_bound": 3,
                },
                "headline": {
                    "vitals_over_prom_bound": comparison.result("vitals").median_ratio,
                    "otel_sdk_over_vitals": comparison.ratio("otel_sdk", "vitals"),
                    "otel_sdk_2attr_over_vitals": comparison.ratio("otel_sdk_2attr", "vitals"),
                },
            },
        )
        print(f"results written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
