"""One full read of the runtime with the demo's six buses against the same read without buses.

Two runtimes side by side in one process, at 10k and at 100k series:

* ``no_buses``: the demo runtime's 21 services and 6 bus-only providers, no bus attached, plus
  ``SERIES`` series of an ordinary SDK counter (``bench.items``, one per ``item.id``). THE BASELINE.
* ``six_buses``: the same, with the demo's six buses attached (the demo as it ships).

One op is ``telemetry.read_metrics()``: the SDK collection, the producers' series and, with buses,
every bus's aggregation over the read. A bus reads only the points of its own providers, through
the collection's owner index, so its cost does not grow with the series it does not own.

Target (issue 14): six_buses <= 1.05 x no_buses at both sizes.

Run: ``python benchmarks/bench_bus_read.py [--rounds N] [--json]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable

from _harness import compare, write_results

from telemetry_otel import Telemetry, TelemetryConfig
from telemetry_otel.instrumentation.demo import DemoRuntime

SIZES = (10_000, 100_000)


def build(series: int, *, buses: bool) -> tuple[Telemetry, DemoRuntime]:
    """A demo runtime (with or without its buses) plus ``series`` SDK series."""
    telemetry = Telemetry(TelemetryConfig(service_name="bench-bus-read", cardinality_limit=series + 100))
    demo = DemoRuntime(telemetry, seed=7)
    if not buses:
        for bus in list(demo.buses.values()):
            bus.close()
    demo.step()
    counter = telemetry.get_meter("bench").create_counter("bench.items", unit="{item}")
    for index in range(series):
        counter.add(1, {"item.id": index})
    return telemetry, demo


def _reads(telemetry: Telemetry) -> Callable[[int], None]:
    """``n`` full reads of ``telemetry``."""

    def run(n: int) -> None:
        for _ in range(n):
            telemetry.read_metrics()

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--json", action="store_true", help="also write the figures under results/")
    args = parser.parse_args()
    comparisons = []
    verdicts = []
    for size in SIZES:
        runtimes = {name: build(size, buses=name == "six_buses") for name in ("no_buses", "six_buses")}
        try:
            comparison = compare(
                f"full_read_{size}",
                {name: _reads(telemetry) for name, (telemetry, _) in runtimes.items()},
                baseline="no_buses",
                rounds=args.rounds,
                ops=10 if size <= 10_000 else 2,  # ~0.2-0.4 s a round: short rounds are noisy
                warmup_ops=1,
            )
        finally:
            for telemetry, demo in runtimes.values():
                demo.close()
                telemetry.shutdown()
        comparisons.append(comparison)
        print(comparison.report())
        ratio = comparison.result("six_buses").median_ratio
        base_ms = statistics.median(comparison.result("no_buses").ns_per_op) / 1e6
        verdict = "met" if ratio <= 1.05 else "NOT met"
        verdicts.append(ratio <= 1.05)
        print(
            f"{size} series: read {base_ms:.1f} ms without buses; "
            f"six buses {ratio:.3f}x (target <= 1.05) -> {verdict}\n"
        )
    if args.json:
        print(f"results: {write_results('bus_read', comparisons)}")
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
