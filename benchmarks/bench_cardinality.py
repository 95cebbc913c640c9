"""Memory of an attribute-value explosion, with and without the per-instrument cardinality limit.

One instrument receives ``--values`` distinct attribute values (100,000 by default), through the two
paths a service uses:

* ``sdk``: ``Counter.add(1, {"job.id": <distinct>})`` on the runtime's reader (:class:`PullReader`);
* ``snapshot``: one ``instrument_service`` snapshot returning that many series of one counter.

Each path is measured with the limit (``TelemetryConfig.cardinality_limit``, 2000 by default) and
without it (a limit above the number of values), and against the baseline of exactly 2000 distinct
values. Memory is what stays allocated once the values are recorded and read once
(``_harness.measure_memory``: tracemalloc, after a garbage collection), the runtime included. The
number of series read back is checked (limit + 1 with the limit: the overflow series). The last
row is the snapshot's own return value alone: the runtime keeps the last snapshot of every service
(to serve its last good values), so that much is held whatever the limit.

Run: ``python benchmarks/bench_cardinality.py [--values N] [--limit N] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Sequence

from _harness import RESULTS_DIR, machine_info, measure_memory
from opentelemetry.sdk.metrics import MeterProvider

from telemetry_otel import Snapshot, Telemetry, TelemetryConfig
from telemetry_otel._reader import PullReader
from telemetry_otel.instrumentation import counter, instrument_service

SCOPE = "bench.cardinality"


def _series(telemetry: Telemetry, name: str) -> int:
    return sum(
        len(metric.data.data_points)
        for resource_metrics in telemetry.read_metrics().resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        if metric.name == name
    )


def sdk_path(values: int, limit: int, counts: dict[str, int], label: str) -> Callable[[], object]:
    """A provider with the runtime's reader, one counter, ``values`` distinct attribute values."""

    def build() -> object:
        reader = PullReader(cardinality_limit=limit)
        provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
        jobs = provider.get_meter(SCOPE).create_counter("jobs")
        for index in range(values):
            jobs.add(1, {"job.id": f"job-{index:06d}"})
        data = reader.read()
        assert data is not None
        counts[label] = sum(
            len(metric.data.data_points)
            for resource_metrics in data.resource_metrics
            for scope_metrics in resource_metrics.scope_metrics
            for metric in scope_metrics.metrics
        )
        return provider, reader, jobs

    return build


def snapshot_path(values: int, limit: int, counts: dict[str, int], label: str) -> Callable[[], object]:
    """A runtime with one service whose snapshot returns ``values`` series of one counter."""

    def build() -> object:
        # No collection timeout to speak of: without the limit, reading 100,000 series under
        # tracemalloc takes longer than the default 5 s.
        config = TelemetryConfig(
            service_name="bench-cardinality",
            cardinality_limit=limit,
            collection_timeout_millis=600_000,
            service_timeout_millis=600_000,
        )
        telemetry = Telemetry(config)

        def explode() -> Snapshot:
            return {"users.seen": [({"user.id": f"u{index:06d}"}, 1) for index in range(values)]}

        instrument_service(
            "exploding",
            category="bench",
            snapshot=explode,
            metrics=[counter("users.seen", "{event}", "Events per user.")],
            telemetry=telemetry,
        )
        asyncio.run(telemetry.collect())
        counts[label] = _series(telemetry, "users.seen")
        return telemetry

    return build


def main(argv: Sequence[str] | None = None) -> int:
    """Measure every path with and without the limit; print a table (and JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--values", type=int, default=100_000, help="distinct attribute values")
    parser.add_argument("--limit", type=int, default=2_000, help="the cardinality limit")
    parser.add_argument(
        "--json", action="store_true", help="also write the results under benchmarks/results/"
    )
    args = parser.parse_args(argv)
    values, limit = args.values, args.limit
    unlimited = values + 1
    counts: dict[str, int] = {}
    rows: list[tuple[str, str, int]] = []
    for path, make in (("sdk", sdk_path), ("snapshot", snapshot_path)):
        for label, distinct, cap in (
            (f"{limit} values (baseline)", limit, limit),
            (f"{values} values, limit {limit}", values, limit),
            (f"{values} values, no limit", values, unlimited),
        ):
            key = f"{path}: {label}"
            rows.append((path, label, measure_memory(make(distinct, cap, counts, key))))
    for path in ("sdk", "snapshot"):
        expected = {
            f"{path}: {limit} values (baseline)": limit,
            f"{path}: {values} values, limit {limit}": limit + 1,
            f"{path}: {values} values, no limit": values,
        }
        for key, series in expected.items():
            if counts[key] != series:
                print(
                    f"bench_cardinality: {key} read {counts[key]} series, expected {series}", file=sys.stderr
                )
                return 1
    # For reference: the snapshot's own value, which the runtime holds until the next collection.
    held = measure_memory(lambda: [({"user.id": f"u{index:06d}"}, 1) for index in range(values)])
    rows.append(("snapshot", f"(the {values} series the service returns)", held))
    counts[f"snapshot: (the {values} series the service returns)"] = values
    width = max(len(label) for _, label, _ in rows)
    print(f"memory retained, {values} distinct values on one instrument (tracemalloc):")
    print(f"{'path':<9} {'case':<{width}} {'MiB':>8} {'x baseline':>11} {'series':>8}")
    baselines = {path: size for path, label, size in rows if label.endswith("(baseline)")}
    for path, label, size in rows:
        ratio = size / baselines[path]
        print(
            f"{path:<9} {label:<{width}} {size / 2**20:>8.2f} {ratio:>11.2f} {counts[f'{path}: {label}']:>8}"
        )
    if args.json:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        target = RESULTS_DIR / "cardinality.json"
        target.write_text(
            json.dumps(
                {
                    "benchmark": "cardinality",
                    "machine": machine_info(),
                    "values": values,
                    "limit": limit,
                    "bytes": {f"{path}: {label}": size for path, label, size in rows},
                    "series": counts,
                },
                indent=2,
            )
            + "\n"
        )
        print(f"results: {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
