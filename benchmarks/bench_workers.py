"""Many workers, one host picture: what it costs (issue 18), three figures measured in one run.

1. ``record``: one request through ``record_request`` in a host worker (its runtime reports to a
   host aggregator every report interval, on its reporter thread) against the same in a
   single-process runtime (THE BASELINE), side by side in one process (``_harness.compare``).
   Target: worker / single <= 1.05.
2. ``view``: cached summary view throughput over HTTP (``wrk -t1 -c16``, loopback) of
   ``telemetry-otel serve --demo --workers 4`` against ``telemetry-otel serve --demo`` (one
   process), both with a one-hour cache, alternating every round; median of the per-round ratios.
   Target: host-wide / single >= 0.5. (A host-wide view asks the aggregator for the picture as it
   stands on every request: one loopback round trip, answered 304 while unchanged.)
3. ``picture``: a 304 round trip to the aggregator, and a fetch and decode of the demo's picture.
4. ``lag``: from a worker's recording to the host picture including it (polled every 5 ms from a
   second worker), over ``--lag-samples`` recordings at random moments. Target: p99 < the report
   interval plus one collection.

After timing, the recorded counts are read back (a no-op cannot pass as fast).

Run: ``python benchmarks/bench_workers.py [--rounds N] [--ops N] [--seconds S] [--lag-samples N]
[--skip-view]``.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

from _harness import compare, write_results

from telemetry_otel import Telemetry, TelemetryConfig
from telemetry_otel.host import HostAggregator
from telemetry_otel.instrumentation import instrument_service
from telemetry_otel.instrumentation.demo import DemoRuntime

SUMMARY = "/api/demo/v1/telemetry"
REPORT_INTERVAL_MILLIS = 1000.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _requests(telemetry: Telemetry) -> float:
    data = telemetry.read_metrics()
    return sum(
        float(getattr(point, "value", 0))
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == "service.requests"
        for point in metric.data.data_points
    )


def _record_comparison(args: argparse.Namespace, endpoint: str) -> dict[str, float]:
    single = Telemetry(TelemetryConfig(service_name="single"))
    worker = Telemetry(
        TelemetryConfig(
            service_name="worker", host_endpoint=endpoint, report_interval_millis=REPORT_INTERVAL_MILLIS
        )
    )
    services = {
        "single": instrument_service("svc", category="runtime", telemetry=single).record_request,
        "worker": instrument_service("svc", category="runtime", telemetry=worker).record_request,
    }
    rng = random.Random(18)
    latencies = [rng.lognormvariate(-4, 1.0) for _ in range(1000)]

    def run(record: object) -> object:
        def alternative(n: int) -> None:
            call = record
            values = latencies
            for i in range(n):
                call(values[i % 1000], i % 10 == 0)  # type: ignore[operator]

        return alternative

    comparison = compare(
        "record_request_in_a_host_worker",
        {name: run(record) for name, record in services.items()},  # type: ignore[misc]
        baseline="single",
        rounds=args.rounds,
        ops=args.ops,
        warmup_ops=args.ops // 10,
    )
    expected = comparison.total_ops
    for name, runtime in (("single", single), ("worker", worker)):
        got = _requests(runtime)
        if got != expected:
            raise SystemExit(f"{name} recorded {got} requests, {expected} were made")
    ratio = comparison.ratio("worker", "single")
    print(comparison.report())
    print(f"record: worker / single = {ratio:.3f} (target <= 1.05: {'met' if ratio <= 1.05 else 'NOT met'})")
    single.shutdown()
    worker.shutdown()
    _write(args, [comparison])
    return {"record_ratio": ratio}


def _serve(workers: int, port: int, endpoint_port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TELEMETRY_OTEL_"))}
    env["TELEMETRY_OTEL_HOST_ENDPOINT"] = f"127.0.0.1:{endpoint_port}"
    argv = [sys.executable, "-m", "telemetry_otel", "serve", "--demo", "--seed", "18", "--port", str(port)]
    argv += ["--cache-ttl", "3600", "--log-level", "warning", "--workers", str(workers)]
    process = subprocess.Popen(
        argv, env=env, cwd="/", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{SUMMARY}", timeout=5) as response:
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"serve --workers {workers} did not answer within 60 s")


def _wrk(url: str, seconds: int) -> float:
    result = subprocess.run(
        ["wrk", "-t1", "-c16", f"-d{seconds}s", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    )
    if "Non-2xx" in result.stdout or "Socket errors" in result.stdout:
        raise SystemExit(f"wrk saw errors on {url}:\n{result.stdout}")
    found = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    if found is None:
        raise SystemExit(f"no Requests/sec in wrk's output:\n{result.stdout}")
    return float(found.group(1))


def _view_comparison(args: argparse.Namespace) -> dict[str, float]:
    single_port, host_port = _free_port(), _free_port()
    servers = [_serve(1, single_port, _free_port()), _serve(4, host_port, _free_port())]
    ratios = []
    try:
        for round_number in range(args.view_rounds):
            order = [("single", single_port), ("host", host_port)]
            if round_number % 2:
                order.reverse()
            rates = {name: _wrk(f"http://127.0.0.1:{port}{SUMMARY}", args.seconds) for name, port in order}
            ratios.append(rates["host"] / rates["single"])
            single, host = rates["single"], rates["host"]
            print(f"  round {round_number + 1}: single {single:.0f} req/s, 4 workers {host:.0f} req/s")
    finally:
        for process in servers:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(30)
    ratio = statistics.median(ratios)
    met = "met" if ratio >= 0.5 else "NOT met"
    print(f"view: 4-worker host / single cached summary = {ratio:.3f} (target >= 0.5: {met})")
    return {"view_ratio": ratio}


def _lag(args: argparse.Namespace, endpoint: str) -> dict[str, float]:
    recorder = Telemetry(
        TelemetryConfig(
            service_name="lag", host_endpoint=endpoint, report_interval_millis=REPORT_INTERVAL_MILLIS
        )
    )
    reader = Telemetry(
        TelemetryConfig(
            service_name="lag", host_endpoint=endpoint, report_interval_millis=REPORT_INTERVAL_MILLIS
        )
    )
    service = instrument_service("lagged", category="runtime", telemetry=recorder)
    rng = random.Random(1818)
    lags = []

    def host_count() -> float:
        data = reader.cycle.get_blocking(0, 10).collection.metrics
        return sum(
            float(getattr(point, "value", 0))
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for metric in sm.metrics
            if metric.name == "service.requests"
            for point in metric.data.data_points
            if (point.attributes or {}).get("service.name") == "lagged"
        )

    for sample in range(args.lag_samples):
        time.sleep(rng.uniform(0, REPORT_INTERVAL_MILLIS / 1000))
        started = time.perf_counter()
        service.record_request(0.001)
        while host_count() < sample + 1:
            time.sleep(0.005)
        lags.append(time.perf_counter() - started)
    recorder.shutdown()
    reader.shutdown()
    lags.sort()
    p50 = lags[len(lags) // 2]
    p99 = lags[min(len(lags) - 1, round(0.99 * (len(lags) - 1)))]
    bound = REPORT_INTERVAL_MILLIS / 1000 + 0.25
    print(
        f"lag over {len(lags)} recordings: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max "
        f"{lags[-1] * 1000:.0f} ms (report interval {REPORT_INTERVAL_MILLIS:.0f} ms; target p99 < "
        f"interval + one collection: {'met' if p99 < bound else 'NOT met'})"
    )
    return {"lag_p50_seconds": p50, "lag_p99_seconds": p99, "lag_max_seconds": lags[-1]}


def _picture_costs(endpoint: str, aggregator: HostAggregator) -> dict[str, float]:
    """What a worker pays per request for the demo's host picture: a 304 round trip while it is
    unchanged, a fetch and decode when it changed (and the document's size)."""
    telemetry = Telemetry(
        TelemetryConfig(service_name="demo", host_endpoint=endpoint, report_interval_millis=60_000)
    )
    DemoRuntime(telemetry, seed=18)
    telemetry.report_to_host()
    link = telemetry._host
    assert link is not None
    started = time.perf_counter()
    for _ in range(50):
        link.fetch(None)
    fetch = (time.perf_counter() - started) / 50
    started = time.perf_counter()
    for _ in range(500):
        assert link.fetch(aggregator.generation) is None
    unchanged = (time.perf_counter() - started) / 500
    size = len(aggregator.document(None) or b"")
    telemetry.shutdown()
    print(
        f"picture: 304 round trip {unchanged * 1e6:.0f} us; fetch and decode of the demo's picture "
        f"{fetch * 1000:.1f} ms ({size / 1024:.0f} KiB)"
    )
    return {"unchanged_round_trip_seconds": unchanged, "fetch_decode_seconds": fetch, "document_bytes": size}


def _write(
    args: argparse.Namespace, comparisons: list[object], extra: dict[str, float] | None = None
) -> None:
    if args.json:
        path = write_results("workers", comparisons, extra=extra)  # type: ignore[arg-type]
        print(f"results: {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--ops", type=int, default=20_000)
    parser.add_argument("--view-rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--lag-samples", type=int, default=30)
    parser.add_argument("--skip-view", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    aggregator = HostAggregator.start("127.0.0.1", 0)
    endpoint = "{}:{}".format(*aggregator.address)
    try:
        figures = _record_comparison(args, endpoint)
        figures.update(_lag(args, endpoint))
        figures.update(_picture_costs(endpoint, aggregator))
    finally:
        aggregator.close()
    if not args.skip_view:
        figures.update(_view_comparison(args))
    print({name: round(value, 4) for name, value in figures.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
