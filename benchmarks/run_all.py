"""Run every benchmark of the read-path targets (issue 17) and print one table of ratios against them.

Each figure is measured here, side by side in one run (median of per-round ratios), by the
benchmark that owns it; this script only calls them and gathers their figures:

* ``bench_request_forms.py``: ``with``/``async with``/decorated requests vs prometheus_client;
* ``bench_scrape.py``: ``GET /metrics`` on the real route vs ``PrometheusMetricReader`` +
  ``generate_latest`` (fresh and repeat scrapes, gzip reported);
* ``bench_memory.py``: peak resident memory per series during a scrape (subprocess per side);
* ``bench_read_cost.py``: a full read per data point vs the plain SDK's collection, 1k to 100k.

Targets are reported as met / NOT met, never enforced: the exit status is 0 unless a benchmark's
own checks (equivalence with the reference, counts read back) fail.

Run from the repository root: ``python benchmarks/run_all.py`` (``--quick`` for a smoke run with
small sizes and few rounds, whose figures are not the targets' sizes).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass

import bench_memory
import bench_read_cost
import bench_request_forms
import bench_scrape


@dataclass(frozen=True)
class Row:
    """One line of the table: a figure, its value, the target and whether it is met."""

    figure: str
    value: float
    target: str
    met: bool | None  # None: reported only


def request_rows(rounds: int, ops: int) -> list[Row]:
    """The request forms against prometheus_client pre-bound children."""
    comparison = bench_request_forms.run(rounds, ops, warmup_ops=max(1, ops // 10))
    rows = [
        Row(figure, value, f"<= {bench_request_forms.TARGET}", met)
        for figure, value, met in bench_request_forms.targets(comparison)
    ]
    before = comparison.result("contextmanager_before").median_ratio
    rows.append(Row("contextmanager_before / prom_bound_ok (the form before)", before, "reported", None))
    return rows


def scrape_rows(rounds: int, quick: bool) -> list[Row]:
    """Fresh, gzip and repeat scrapes of both data sets."""
    rows: list[Row] = []
    for result in bench_scrape.run(rounds, quick):
        for figure, value, target, met in result.rows():
            rows.append(Row(figure, value, target, met))
    return rows


def memory_rows(series: int, rounds: int) -> list[Row]:
    """Peak memory per series (the runtime mix targeted, the others reported) and steady (reported)."""
    rows: list[Row] = []
    for mix in ("runtime", "services", "counters"):
        _, peak, steady = bench_memory.measure(series, rounds, mix)
        peak_ratio, steady_ratio = statistics.median(peak), statistics.median(steady)
        targeted = mix == "runtime"
        rows.append(
            Row(
                f"peak RSS per series in scrapes, {series} series, {mix} mix: ours / reference",
                peak_ratio,
                f"<= {bench_memory.TARGET}" if targeted else "reported",
                peak_ratio <= bench_memory.TARGET if targeted else None,
            )
        )
        rows.append(
            Row(
                f"steady RSS per series, {series} series, {mix} mix: ours / reference",
                steady_ratio,
                "reported",
                None,
            )
        )
    return rows


def read_rows(sizes: list[int], rounds: int) -> list[Row]:
    """A full read per point against the plain SDK's collection, at each size."""
    rows = []
    for size in sizes:
        result = bench_read_cost.run_size(size, rounds)
        rows.append(
            Row(
                f"full read / plain SDK collect, {size} series",
                result.ratio,
                f"<= {bench_read_cost.TARGET}",
                result.ratio <= bench_read_cost.TARGET,
            )
        )
    return rows


def table(rows: list[Row]) -> str:
    """The rows as one aligned table."""
    width = max(len(row.figure) for row in rows)
    lines = [f"{'figure':<{width}}  {'measured':>9}  {'target':<9}  verdict"]
    for row in rows:
        verdict = "reported" if row.met is None else ("met" if row.met else "NOT met")
        lines.append(f"{row.figure:<{width}}  {row.value:>9.3f}  {row.target:<9}  {verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run every benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes and few rounds: a smoke run")
    parser.add_argument("--rounds", type=int, default=None, help="rounds of every timed comparison")
    args = parser.parse_args(argv)
    quick = args.quick
    started = time.perf_counter()
    rows: list[Row] = []
    rows += request_rows(args.rounds or (5 if quick else 21), 2_000 if quick else 20_000)
    rows += scrape_rows(args.rounds or (3 if quick else 9), quick)
    rows += memory_rows(20_000 if quick else bench_memory.SERIES, 1 if quick else 3)
    rows += read_rows(
        [1_000, 10_000] if quick else list(bench_read_cost.SIZES), args.rounds or (3 if quick else 7)
    )
    print()
    print(table(rows))
    elapsed = time.perf_counter() - started
    print(f"\n(median of per-round ratios, measured side by side in this run; {elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
