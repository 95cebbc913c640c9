"""Cost of exemplars on the vitals fast path when no span is active, against exemplars off.

Alternatives, side by side in one process (see ``_harness``), each one service on its own
``Telemetry`` runtime recording the same latencies (every 10th an error):

* ``off``: ``OTEL_METRICS_EXEMPLAR_FILTER=always_off``: the recorder without exemplars, the fast
  path as it was before exemplars existed. THE BASELINE.
* ``no_provider``: ``trace_based`` (the default) with no ``TracerProvider`` installed.
  Target (issue): <= 1.02 x ``off``.
* ``provider_no_span``: ``trace_based`` with an SDK ``TracerProvider`` installed and no span active.
  Target (issue): <= 1.15 x ``off``.
* ``provider_in_span`` (for information, no target): inside a sampled span, so every request keeps
  an exemplar.

Each is measured twice: ``record_request(latency, error)`` (names as above) and the
``with service.request():`` block (names prefixed ``ctx_``; its ratios are against ``ctx_off``).

Whether a ``TracerProvider`` is installed is process-wide (``trace.set_tracer_provider`` works
once), so each alternative sets the OpenTelemetry API's ``_TRACER_PROVIDER`` global before it runs
(None, or the SDK provider) and the benchmark restores it at the end: the only private name it
touches. Afterwards every service's request count is read back and checked.

Run: ``python benchmarks/bench_exemplars.py [--rounds N] [--ops N] [--warmup-ops N] [--json]``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import math
import random
import sys
from collections.abc import Callable, Sequence
from importlib import metadata

from _harness import Comparison, compare, write_results
from opentelemetry import trace
from opentelemetry.sdk.metrics.export import Sum
from opentelemetry.sdk.trace import TracerProvider

from telemetry_otel import Telemetry, TelemetryConfig
from telemetry_otel.instrumentation import instrument_service

BENCHMARK = "exemplars"
BASELINE = "off"
TARGETS = {"no_provider": 1.02, "provider_no_span": 1.15}
SAMPLES = 10_000
SEED = 20_261_206

_PROVIDER = TracerProvider()


def _latencies() -> list[tuple[float, bool]]:
    rng = random.Random(SEED)
    return [(rng.lognormvariate(math.log(0.02), 1.2), i % 10 == 9) for i in range(SAMPLES)]


class Subject:
    """One service on its own runtime, run under one tracing state."""

    def __init__(
        self, exemplar_filter: str, provider: TracerProvider | None, in_span: bool, block: bool
    ) -> None:
        self.telemetry = Telemetry(TelemetryConfig(service_name="bench", exemplar_filter=exemplar_filter))  # type: ignore[arg-type]
        self.service = instrument_service("svc", telemetry=self.telemetry)
        self._provider = provider
        self._in_span = in_span
        self._block = block
        self._pairs = itertools.cycle(_latencies())

    def run(self, n: int) -> None:
        trace._TRACER_PROVIDER = self._provider  # the process-wide state this alternative measures
        span = (
            _PROVIDER.get_tracer("bench").start_as_current_span("request")
            if self._in_span
            else contextlib.nullcontext()
        )
        record = self.service.record_request
        request = self.service.request
        pairs = itertools.islice(self._pairs, n)
        with span:
            if self._block:
                for _ in pairs:
                    with request():
                        pass
            else:
                for latency, error in pairs:
                    record(latency, error)

    def recorded(self) -> int:
        data = self.telemetry.read_metrics()
        return sum(
            int(point.value)
            for resource_metrics in data.resource_metrics
            for scope_metrics in resource_metrics.scope_metrics
            for metric in scope_metrics.metrics
            if metric.name == "service.requests" and isinstance(metric.data, Sum)
            for point in metric.data.data_points
        )


def build_subjects() -> dict[str, Subject]:
    states: dict[str, tuple[str, TracerProvider | None, bool]] = {
        "off": ("always_off", None, False),
        "no_provider": ("trace_based", None, False),
        "provider_no_span": ("trace_based", _PROVIDER, False),
        "provider_in_span": ("trace_based", _PROVIDER, True),
    }
    subjects: dict[str, Subject] = {}
    for prefix, block in (("", False), ("ctx_", True)):
        for name, (exemplar_filter, provider, in_span) in states.items():
            subjects[prefix + name] = Subject(exemplar_filter, provider, in_span, block)
    return subjects


def summary(comparison: Comparison) -> tuple[str, dict[str, float]]:
    lines = ["", "targets (issue), median of per-round ratios against exemplars off:"]
    headline: dict[str, float] = {}
    for prefix, label in (("", "record_request"), ("ctx_", "with request()")):
        for name, target in TARGETS.items():
            ratio = comparison.ratio(prefix + name, prefix + "off")
            headline[f"{prefix}{name}"] = ratio
            verdict = "met" if ratio <= target else "NOT met"
            lines.append(f"  {label}: {name} / off = {ratio:.3f} (<= {target}) -> {verdict}")
        spanned = comparison.ratio(prefix + "provider_in_span", prefix + "off")
        headline[f"{prefix}provider_in_span"] = spanned
        lines.append(f"  {label}: provider_in_span / off = {spanned:.3f} (information: an exemplar each)")
    return "\n".join(lines), headline


def main(argv: Sequence[str] | None = None) -> int:
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

    saved = trace._TRACER_PROVIDER
    subjects = build_subjects()
    runs: dict[str, Callable[[int], None]] = {name: subject.run for name, subject in subjects.items()}
    try:
        comparison = compare(
            BENCHMARK, runs, baseline=BASELINE, rounds=args.rounds, ops=args.ops, warmup_ops=args.warmup_ops
        )
        total = comparison.total_ops
        wrong = {name: got for name, subject in subjects.items() if (got := subject.recorded()) != total}
        if wrong:
            raise RuntimeError(f"expected {total} recorded requests each, got {wrong}")
    finally:
        trace._TRACER_PROVIDER = saved
        for subject in subjects.values():
            subject.telemetry.shutdown()

    print(comparison.report())
    text, headline = summary(comparison)
    print(text)
    print(f"\nverified: every alternative recorded {total} requests (read back from its collected data)")
    versions = {dist: metadata.version(dist) for dist in ("telemetry-otel", "opentelemetry-sdk")}
    print(
        "versions: "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
        + f"; python {sys.version.split()[0]}"
    )
    if args.json:
        path = write_results(BENCHMARK, [comparison], extra={"versions": versions, "headline": headline})
        print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
