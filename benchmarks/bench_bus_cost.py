"""Cost of one measurement with no bus attached versus the demo's six buses attached.

Two telemetry runtimes side by side in one process:

* ``bare``: one service, no bus.
* ``loaded``: the whole demo runtime (21 services, 6 bus-only providers) with its six buses, the
  measured service attached to one of them as a provider, and every push exporter attached (OTLP
  gRPC and HTTP, Graphite, InfluxDB: aimed at closed loopback ports with a one-hour interval, since
  exports never run on the recording path).

Two comparisons, each against its ``bare`` baseline:

* ``counter``: ``Counter.add(1, attrs)`` on an ordinary SDK counter from ``get_meter``.
* ``vitals``: one request through the standard vitals (``record_request``; an error every 10th).

A bus is a reader of the one shared collection, not an SDK reader, so the target ratio is <= 1.2.
After timing, every alternative's count is read back from its runtime's collected data.

Run: ``python benchmarks/bench_bus_cost.py [--rounds N] [--ops N] [--json]``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from _harness import compare, write_results
from bench_hot_path import every_exporter
from opentelemetry.sdk.metrics.export import MetricsData, NumberDataPoint

from telemetry_otel import Telemetry, TelemetryConfig
from telemetry_otel.instrumentation import InstrumentedService, instrument_service
from telemetry_otel.instrumentation.demo import DemoRuntime

ATTRIBUTES = {"job.kind": "import", "job.queue": "default", "job.priority": "high"}


@dataclass
class Runtime:
    """One runtime under test and the instruments the alternatives record on."""

    telemetry: Telemetry
    service: InstrumentedService
    add: Callable[[int], None]
    record: Callable[[int], None]
    demo: DemoRuntime | None = None

    def close(self) -> None:
        """Release the runtime."""
        if self.demo is not None:
            self.demo.close()
        self.telemetry.shutdown(timeout_millis=2_000)


def build(loaded: bool) -> Runtime:
    """A runtime with one measured service; ``loaded`` adds the demo's six buses and providers."""
    if loaded:
        config = TelemetryConfig(service_name="bench-bus", export_interval_millis=3_600_000)
        telemetry = Telemetry(config, every_exporter())
    else:
        telemetry = Telemetry(TelemetryConfig(service_name="bench-bus"))
    demo = DemoRuntime(telemetry, seed=1) if loaded else None
    service = instrument_service("measured", category="runtime", telemetry=telemetry)
    if demo is not None:
        demo.buses["tool"].attach(service)
    counter = telemetry.get_meter("bench").create_counter("bench.jobs", "{job}", "Jobs.")

    def add(n: int) -> None:
        for _ in range(n):
            counter.add(1, ATTRIBUTES)

    def record(n: int) -> None:
        for index in range(n):
            service.record_request(0.004, index % 10 == 0)

    return Runtime(telemetry, service, add, record, demo)


def _value(data: MetricsData, name: str, **attributes: str) -> float:
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name != name:
                    continue
                for point in metric.data.data_points:
                    if isinstance(point, NumberDataPoint) and all(
                        (point.attributes or {}).get(k.replace("__", ".")) == v for k, v in attributes.items()
                    ):
                        return point.value
    raise RuntimeError(f"{name} {attributes} not found in the collected data")


def main(argv: Sequence[str] | None = None) -> int:
    """Run both comparisons, verify the counts, print ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--ops", type=int, default=20_000)
    parser.add_argument("--warmup-ops", type=int, default=2_000)
    parser.add_argument(
        "--json", action="store_true", help="also write the results under benchmarks/results/"
    )
    args = parser.parse_args(argv)
    bare, loaded = build(False), build(True)
    try:
        counter = compare(
            "counter_add_bus_cost",
            {"bare": bare.add, "six_buses_all_exporters": loaded.add},
            baseline="bare",
            rounds=args.rounds,
            ops=args.ops,
            warmup_ops=args.warmup_ops,
        )
        vitals = compare(
            "record_request_bus_cost",
            {"bare": bare.record, "six_buses_all_exporters": loaded.record},
            baseline="bare",
            rounds=args.rounds,
            ops=args.ops,
            warmup_ops=args.warmup_ops,
        )
        for runtime in (bare, loaded):
            data = runtime.telemetry.read_metrics()
            jobs = _value(data, "bench.jobs", job__kind="import")
            requests = _value(data, "service.requests", service__name="measured")
            if (jobs, requests) != (counter.total_ops, vitals.total_ops):
                raise RuntimeError(
                    f"recorded {jobs} jobs and {requests} requests, expected {counter.total_ops}"
                )
        bus_requests = _value(
            loaded.telemetry.read_metrics(), "bus.provider.requests", bus__provider="measured"
        )
        if bus_requests != vitals.total_ops:
            raise RuntimeError(f"the tool bus saw {bus_requests} requests, expected {vitals.total_ops}")
    finally:
        bare.close()
        loaded.close()
    print(counter.report())
    print()
    print(vitals.report())
    print()
    for comparison in (counter, vitals):
        ratio = comparison.ratio("six_buses_all_exporters", "bare")
        verdict = "met" if ratio <= 1.2 else "NOT met"
        exporters = len(loaded.telemetry.exports.exporters)
        print(
            f"{comparison.name}: six_buses_all_exporters ({exporters} exporters) / bare = {ratio:.3f} "
            f"(target <= 1.2: {verdict})"
        )
    print(
        f"verified: each runtime recorded {counter.total_ops} counter adds and {vitals.total_ops} requests; "
        f"the tool bus aggregated all {vitals.total_ops} of the measured provider's requests"
    )
    if args.json:
        print(f"results: {write_results('bus_cost', [counter, vitals])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
