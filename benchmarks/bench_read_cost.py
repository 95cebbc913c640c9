"""A full read of the runtime per data point against the plain SDK's own collection, 1k to 100k series.

At each size, the same mix (``_runtime_mix``: services with their vitals and uptime, plus ordinary
counter series) is built on our runtime and on a plain SDK ``MeterProvider`` with one
``InMemoryMetricReader``. Alternatives, side by side in one process (one op = one read):

* ``plain_sdk``: ``InMemoryMetricReader.get_metrics_data()``, the SDK's own collection of the same
  instruments. THE BASELINE.
* ``full_read``: ``telemetry.cycle.get_blocking(0, ...)``, one collection cycle as every consumer gets
  it: the snapshot phase over every component, the records frozen, the runtime's read (SDK
  collection, producers, cardinality caps, the collector's own series) on its own thread.
* ``runtime_read``: ``telemetry.read_metrics()`` alone, without the cycle around it.

Printed per size: the ratios, and the cost per data point of each alternative. Target (issue 17):
``full_read / plain_sdk <= 1.10`` at every size (linear: the excess per point does not grow with
the series). Reported, never enforced. Before timing, both sides are checked to hold the mix's
series; after, each alternative's last read must have held them too.

Run: ``python benchmarks/bench_read_cost.py [--sizes 1000,10000,100000] [--rounds N] [--json]``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass

from _harness import Comparison, compare, write_results
from _runtime_mix import SERIES_PER_SERVICE, build_ours, build_plain, shape
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData

BENCHMARK = "read_cost"
BASELINE = "plain_sdk"
TARGET = 1.10
SIZES = (1_000, 10_000, 100_000)
MIX_METRICS = (
    "service.requests",
    "service.errors",
    "service.request.duration",
    "service.uptime",
    "bench.items",
)


def mix_points(data: MetricsData | None) -> int:
    """Data points of the mix's metrics in ``data``."""
    if data is None:
        return 0
    return sum(
        len(metric.data.data_points)
        for resource_metrics in data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        if metric.name in MIX_METRICS
    )


@dataclass(frozen=True)
class SizeResult:
    """One size's comparison and its headline figures."""

    series: int
    comparison: Comparison

    @property
    def ratio(self) -> float:
        """full_read / plain_sdk, median of per-round ratios."""
        return self.comparison.result("full_read").median_ratio

    def per_point_ns(self, name: str) -> float:
        """Median cost of one read of ``name`` per data point, in ns."""
        return self.comparison.result(name).median_ns_per_op / self.series


def run_size(series: int, rounds: int) -> SizeResult:
    """Build the mix on both sides, check it, time the reads, check the last reads."""
    telemetry = build_ours(series)
    reader = InMemoryMetricReader()
    provider = build_plain(series, reader, telemetry.resource)
    last: dict[str, int] = {}
    timeout = 600.0

    def reads(name: str, read: Callable[[], MetricsData | None]) -> Callable[[int], None]:
        def run(n: int) -> None:
            for _ in range(n):
                last[name] = mix_points(read())

        return run

    try:
        alternatives = {
            BASELINE: reads(BASELINE, reader.get_metrics_data),
            "full_read": reads(
                "full_read", lambda: telemetry.cycle.get_blocking(0, timeout).collection.metrics
            ),
            "runtime_read": reads("runtime_read", telemetry.read_metrics),
        }
        for name, alternative in alternatives.items():
            alternative(1)
            if last[name] != series:
                raise SystemExit(f"{name} read {last[name]} data points of the mix, expected {series}")
        comparison = compare(
            f"{BENCHMARK}_{series}", alternatives, baseline=BASELINE, rounds=rounds, ops=1, warmup_ops=1
        )
        wrong = {name: points for name, points in last.items() if points != series}
        if wrong:
            raise SystemExit(f"reads after timing held the wrong number of points: {wrong}")
        return SizeResult(series, comparison)
    finally:
        provider.shutdown()
        telemetry.shutdown()


def main(argv: list[str] | None = None) -> int:
    """Run every size, print the tables, the per-point costs and the target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="series per size, comma-separated")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per size (default 7)")
    parser.add_argument("--json", action="store_true", help="also write the results under results/")
    args = parser.parse_args(argv)
    results = [run_size(int(size), args.rounds) for size in args.sizes.split(",")]
    for result in results:
        services, counters = shape(result.series)
        print(result.comparison.report())
        costs = ", ".join(
            f"{name} {result.per_point_ns(name):.0f} ns/point"
            for name in (BASELINE, "full_read", "runtime_read")
        )
        mix = f"{services} services x {SERIES_PER_SERVICE} + {counters} counter series"
        print(f"{result.series} series ({mix}): {costs}\n")
    print("targets (median of per-round ratios; reported, never enforced):")
    for result in results:
        verdict = "met" if result.ratio <= TARGET else "NOT met"
        print(
            f"  {result.series} series: full_read / plain_sdk = {result.ratio:.3f} (<= {TARGET}) -> {verdict}"
        )
    if args.json:
        print(f"results written to {write_results(BENCHMARK, [r.comparison for r in results])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
