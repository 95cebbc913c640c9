"""The hot path under load: one request through the vitals with every exporter and the six demo buses
attached, from one thread and from two threads at once, against prometheus_client pre-bound children;
and the memory each active series costs, against the OpenTelemetry SDK's.

Alternatives, side by side in one process (see ``_harness``):

* ``vitals_loaded``: ``record_request(latency, error)`` on a runtime that has the whole demo runtime
  (27 components) with its six buses, the measured service attached to a bus, and every push exporter
  attached (OTLP gRPC, OTLP HTTP, Graphite TCP, InfluxDB v1; pointed at closed loopback ports, with a
  one-hour interval: attached, not exporting, since exports never run on the recording path).
* ``prom_bound``: ``prometheus_client`` children bound once: ``inc()`` + ``observe()``. THE BASELINE.
* ``otel_sdk``: the raw SDK with three attributes (``Counter.add`` + ``Histogram.record``).
* ``..._2threads``: the same alternatives with the operations split across two threads recording
  at once; afterwards every count is read back, so a lost update fails the run.

Memory: bytes retained per active series (one service's requests, errors and latency histogram,
after one recording), for the vitals and for the SDK (a counter, an error counter and a histogram
with the same buckets and attributes), measured with ``tracemalloc`` over 1,000 series each.

Run: ``python benchmarks/bench_hot_path.py [--rounds N] [--ops N] [--json]``.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
from collections.abc import Callable, Sequence

import prometheus_client
from _harness import compare, measure_memory, write_results
from bench_record_request import make_requests
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData, NumberDataPoint

from telemetry_otel import Telemetry, TelemetryConfig
from telemetry_otel.exporters import GraphiteExporter, InfluxExporter, OTLPExporter, PushExporter
from telemetry_otel.instrumentation import LATENCY_BUCKETS, instrument_service
from telemetry_otel.instrumentation.demo import DemoRuntime

ATTRS = {"service.name": "svc", "service.category": "runtime", "bus.name": "llm"}
SERIES_FOR_MEMORY = 1_000  # below the SDK's default cardinality limit of 2,000


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def every_exporter() -> list[PushExporter]:
    """One of each push exporter, aimed at closed loopback ports."""
    return [
        OTLPExporter("grpc", endpoint=f"http://127.0.0.1:{_closed_port()}", insecure=True),
        OTLPExporter("http/protobuf", endpoint=f"http://127.0.0.1:{_closed_port()}/v1/metrics"),
        GraphiteExporter("127.0.0.1", _closed_port()),
        InfluxExporter(f"http://127.0.0.1:{_closed_port()}", database="bench"),
    ]


def _threads(work: Callable[[int], None], n: int) -> None:
    """Run ``work`` for ``n`` operations split across two threads started together."""
    barrier = threading.Barrier(2)

    def part(count: int) -> None:
        barrier.wait()
        work(count)

    threads = [threading.Thread(target=part, args=(count,)) for count in (n // 2, n - n // 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _value(data: MetricsData | None, name: str, service: str) -> float:
    for resource_metrics in data.resource_metrics if data is not None else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name != name:
                    continue
                for point in metric.data.data_points:
                    if (
                        isinstance(point, NumberDataPoint)
                        and (point.attributes or {}).get("service.name") == service
                    ):
                        return point.value
    raise RuntimeError(f"{name} of {service} not found")


def main(argv: Sequence[str] | None = None) -> int:
    """Time the alternatives, check the counts, measure memory per series, print the ratios."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--ops", type=int, default=20_000)
    parser.add_argument("--warmup-ops", type=int, default=2_000)
    parser.add_argument(
        "--json", action="store_true", help="also write the results under benchmarks/results/"
    )
    args = parser.parse_args(argv)
    pairs = make_requests()

    telemetry = Telemetry(
        TelemetryConfig(service_name="bench-hot", export_interval_millis=3_600_000), every_exporter()
    )
    demo = DemoRuntime(telemetry, seed=1)
    service = instrument_service("svc", category="runtime", telemetry=telemetry)
    demo.buses["llm"].attach(service)
    record = service.record_request

    registry = prometheus_client.CollectorRegistry()
    labels = ("service_name", "service_category", "bus_name")
    prom_requests = prometheus_client.Counter("svc_requests", "r", labels, registry=registry)
    prom_errors = prometheus_client.Counter("svc_errors", "e", labels, registry=registry)
    prom_latency = prometheus_client.Histogram(
        "svc_latency_seconds", "l", labels, registry=registry, buckets=LATENCY_BUCKETS
    )
    values = ("svc", "runtime", "llm")
    inc, err, observe = (
        prom_requests.labels(*values).inc,
        prom_errors.labels(*values).inc,
        prom_latency.labels(*values).observe,
    )

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    meter = provider.get_meter("bench")
    sdk_requests = meter.create_counter("svc.requests")
    sdk_errors = meter.create_counter("svc.errors")
    sdk_latency = meter.create_histogram(
        "svc.latency", "s", explicit_bucket_boundaries_advisory=LATENCY_BUCKETS
    )

    def vitals(n: int) -> None:
        for index in range(n):
            seconds, failed = pairs[index % len(pairs)]
            record(seconds, failed)

    def prom(n: int) -> None:
        for index in range(n):
            seconds, failed = pairs[index % len(pairs)]
            inc()
            observe(seconds)
            if failed:
                err()

    def sdk(n: int) -> None:
        for index in range(n):
            seconds, failed = pairs[index % len(pairs)]
            sdk_requests.add(1, ATTRS)
            sdk_latency.record(seconds, ATTRS)
            if failed:
                sdk_errors.add(1, ATTRS)

    try:
        one = compare(
            "hot_path_loaded",
            {"vitals_loaded": vitals, "prom_bound": prom, "otel_sdk": sdk},
            baseline="prom_bound",
            rounds=args.rounds,
            ops=args.ops,
            warmup_ops=args.warmup_ops,
        )
        two = compare(
            "hot_path_loaded_2threads",
            {
                "vitals_loaded_2threads": lambda n: _threads(vitals, n),
                "prom_bound_2threads": lambda n: _threads(prom, n),
                "otel_sdk_2threads": lambda n: _threads(sdk, n),
            },
            baseline="prom_bound_2threads",
            rounds=args.rounds,
            ops=args.ops,
            warmup_ops=args.warmup_ops,
        )
        expected = one.total_ops + two.total_ops
        recorded = _value(telemetry.read_metrics(), "service.requests", "svc")
        prom_recorded = registry.get_sample_value(
            "svc_requests_total", dict(zip(labels, values, strict=True))
        )
        sdk_data = reader.get_metrics_data()
        sdk_recorded = sum(
            p.value
            for rm in (sdk_data.resource_metrics if sdk_data else ())
            for sm in rm.scope_metrics
            for m in sm.metrics
            if m.name == "svc.requests"
            for p in m.data.data_points
            if isinstance(p, NumberDataPoint)
        )
        if (recorded, prom_recorded, sdk_recorded) != (expected, expected, expected):
            raise RuntimeError(
                f"lost updates: recorded {recorded}, {prom_recorded}, {sdk_recorded} of {expected}"
            )
        exporters = len(telemetry.exports.exporters)
    finally:
        demo.close()
        telemetry.shutdown(timeout_millis=2_000)
        provider.shutdown()

    vitals_bytes, sdk_bytes = memory_per_series()
    print(one.report())
    print()
    print(two.report())
    print()
    for comparison, ours, sdk_name, base in (
        (one, "vitals_loaded", "otel_sdk", "prom_bound"),
        (two, "vitals_loaded_2threads", "otel_sdk_2threads", "prom_bound_2threads"),
    ):
        ratio, cheaper = comparison.ratio(ours, base), comparison.ratio(sdk_name, ours)
        ratio_verdict = "met" if ratio <= 1.0 else "NOT met"
        cheaper_verdict = "met" if cheaper >= 5 else "NOT met"
        print(
            f"{comparison.name}: {ours} / {base} = {ratio:.3f} (target <= 1.0: {ratio_verdict}); "
            f"{sdk_name} / {ours} = {cheaper:.1f}x (target >= 5: {cheaper_verdict})"
        )
    print(
        f"memory per active series: vitals {vitals_bytes:.0f} B, OTel SDK {sdk_bytes:.0f} B "
        f"(ratio {vitals_bytes / sdk_bytes:.2f}; target: not larger)"
    )
    print(
        f"verified: {expected} requests recorded by each alternative with no lost update "
        f"({exporters} exporters and 6 buses attached to the vitals runtime)"
    )
    if args.json:
        print(f"results: {write_results('hot_path', [one, two])}")
    return 0


def memory_per_series() -> tuple[float, float]:
    """Bytes retained per active series: vitals against the SDK (after one recording each)."""

    def vitals_series() -> object:
        telemetry = Telemetry(TelemetryConfig(service_name="mem"))
        services = [
            instrument_service(f"s{i}", category="runtime", telemetry=telemetry)
            for i in range(SERIES_FOR_MEMORY)
        ]
        for service in services:
            service.record_request(0.01, True)
        return telemetry, services

    def sdk_series() -> object:
        reader = InMemoryMetricReader()
        provider = MeterProvider(metric_readers=[reader])
        meter = provider.get_meter("mem")
        requests = meter.create_counter("service.requests")
        errors = meter.create_counter("service.errors")
        latency = meter.create_histogram(
            "service.request.duration", "s", explicit_bucket_boundaries_advisory=LATENCY_BUCKETS
        )
        for i in range(SERIES_FOR_MEMORY):
            attributes = {"service.name": f"s{i}", "service.category": "runtime"}
            requests.add(1, attributes)
            errors.add(1, attributes)
            latency.record(0.01, attributes)
        return provider, reader

    base_telemetry = measure_memory(lambda: Telemetry(TelemetryConfig(service_name="mem")))
    base_sdk = measure_memory(lambda: MeterProvider(metric_readers=[InMemoryMetricReader()]))
    vitals_bytes = (measure_memory(vitals_series) - base_telemetry) / SERIES_FOR_MEMORY
    sdk_bytes = (measure_memory(sdk_series) - base_sdk) / SERIES_FOR_MEMORY
    return vitals_bytes, sdk_bytes


if __name__ == "__main__":
    sys.exit(main())
