"""Cost of rendering 10,000 counter and 1,000 histogram series: Prometheus text, then the other formats.

The data is built once with a real SDK: one ``MeterProvider`` with two readers, an
``InMemoryMetricReader`` (ours) and the reference exporter's ``PrometheusMetricReader`` (in its own
``CollectorRegistry``), and a ``View(instrument_name="*", aggregation_cardinality_limit=100_000)`` so
the SDK keeps every series instead of folding those beyond 2,000 into an overflow series. One
counter ``service.requests`` (unit ``{request}``; attributes ``service.name`` x ``route``, 100 routes
per service) gets the counter series and one histogram ``service.request.duration`` (unit ``s``,
buckets ``telemetry_otel.instrumentation.LATENCY_BUCKETS``, 10 routes per service) the histogram
series; each series is recorded 3 times (seeded). ``MetricsData`` below means one collection of the
``InMemoryMetricReader`` taken before timing ("the pre-collected data").

Alternatives, side by side in one process (see ``_harness``); one operation renders ALL series once:

* ``reference``: ``prometheus_client.generate_latest(registry)`` on the registry holding the
  ``PrometheusMetricReader``: the reader's own SDK collection, its translation to prometheus_client
  metric families, and their formatting. What a user of the reference exporter pays per scrape.
  THE BASELINE.
* ``reference_from_data``: the reference exporter's collector (``_CustomCollector``, the object the
  reader registers) fed the pre-collected ``MetricsData``, then ``generate_latest``: translation +
  formatting, no SDK collection. The like-for-like counterpart of ``ours_text``.
* ``reference_render_only``: ``generate_latest`` over a static collector holding the families the
  reference translated once from the pre-collected data: prometheus_client's formatting alone.
* ``sdk_collect``: ``InMemoryMetricReader.get_metrics_data()`` alone (the SDK collection that
  ``reference`` and ``ours_collect_text`` both include), to show how much of them it is.
* ``ours_collect_text``: ``get_metrics_data()`` + ``telemetry_otel.formats.encode_prometheus_text``:
  SDK collection + rendering, the like-for-like counterpart of ``reference``.
* ``ours_text``: ``encode_prometheus_text`` of the pre-collected data.
* ``openmetrics``: ``encode_openmetrics`` of the pre-collected data, only when
  ``telemetry_otel.formats`` has it.
* ``graphite_tagged`` / ``graphite_plain``: ``encode_graphite(data, tagged=True / False)``.
* ``influx``: ``encode_influx(data)``.
* ``json``: ``json.dumps(render_view("detailed", ...).document)`` over a ``Collection`` wrapping the
  pre-collected data (no components, no buses: every point lands in ``other_metrics``).

Target (issue): ``reference / ours_collect_text >= 3`` with equivalent output. Also reported:
``reference_from_data / ours_text`` and ``reference_render_only / ours_text``, and every
alternative's rate in series per second. Targets are reported, never enforced.

Before timing, the reference's output and ours are parsed with
``prometheus_client.parser.text_string_to_metric_families`` and compared: same families (name, type,
HELP), same samples (name, label set, value), normalised only for the encoder's documented
deliberate differences that this data exercises: empty label values are dropped (the reference
writes ``otel_scope_schema_url=""``, ours omits empty scope labels; Prometheus treats both alike)
and ``le`` is compared as a number (the reference writes ``str(float)``, ours ``floatToGoString``).
The run fails (exit 1) on any difference, printing the first ones. ``reference_from_data`` and
``reference_render_only`` must give the same text as ``reference``; every other format is checked
to hold every series, and after timing each alternative's last output size is checked against the
untimed one, so a no-op cannot pass as fast.

Run: ``python benchmarks/bench_render.py [--quick] [--rounds N] [--ops N] [--warmup-ops N] [--json]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata

import prometheus_client
from _harness import Comparison, compare, write_results
from opentelemetry.exporter.prometheus import PrometheusMetricReader, _CustomCollector
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
from opentelemetry.sdk.metrics.view import View
from prometheus_client.metrics_core import Metric as PromMetric
from prometheus_client.parser import text_string_to_metric_families

from telemetry_otel import Collection
from telemetry_otel import formats as otel_formats
from telemetry_otel.formats import encode_graphite, encode_influx, encode_prometheus_text
from telemetry_otel.instrumentation import LATENCY_BUCKETS
from telemetry_otel.views import Thresholds, ViewInputs, render_view

BENCHMARK = "render"
BASELINE = "reference"
TARGET = 3.0

COUNTERS = 10_000
HISTOGRAMS = 1_000
QUICK_COUNTERS = 1_000
QUICK_HISTOGRAMS = 100
ROUNDS = 7
QUICK_ROUNDS = 3

COUNTER_ROUTES = 100  # routes per service for the counter series
HISTOGRAM_ROUTES = 10  # routes per service for the histogram series
RECORDS_PER_SERIES = 3
SEED = 20_240_601
LATENCY_MEDIAN_SECONDS = 0.020
LATENCY_SIGMA = 1.2

SCOPE = "bench.render"
SCOPE_VERSION = "0.1.0"
REQUESTS = "service.requests"
DURATION = "service.request.duration"
OVERFLOW_ATTRIBUTE = "otel.metric.overflow"

#: Alternatives that render nothing (their rate has no output size).
NO_OUTPUT = frozenset({"sdk_collect"})
#: Maximum differences printed when the outputs are not equivalent.
SHOW_DIFFERENCES = 20

Render = Callable[[], str | bytes]
SampleKey = tuple[str, tuple[tuple[str, str], ...]]


def _attributes(index: int, routes: int) -> dict[str, str]:
    return {"service.name": f"svc-{index // routes:03d}", "route": f"/api/v1/resource-{index % routes:03d}"}


@dataclass
class Data:
    """The SDK pipeline and everything built from it once, before timing."""

    provider: MeterProvider
    reader: InMemoryMetricReader
    reference_registry: prometheus_client.CollectorRegistry
    data: MetricsData
    families: tuple[PromMetric, ...]
    counters: int
    histograms: int

    @property
    def series(self) -> int:
        """OTel series (data points) rendered by one operation."""
        return self.counters + self.histograms

    def close(self) -> None:
        """Shut the provider down (the reference reader unregisters from its registry)."""
        self.provider.shutdown()


def build(counters: int, histograms: int) -> Data:
    """Record ``counters`` counter series and ``histograms`` histogram series; collect them once."""
    reader = InMemoryMetricReader()
    registry = prometheus_client.CollectorRegistry()
    reference = PrometheusMetricReader(registry=registry)
    provider = MeterProvider(
        metric_readers=[reader, reference],
        views=[View(instrument_name="*", aggregation_cardinality_limit=100_000)],
    )
    meter = provider.get_meter(SCOPE, SCOPE_VERSION)
    counter = meter.create_counter(REQUESTS, "{request}", "Requests handled by the service.")
    histogram = meter.create_histogram(
        DURATION,
        "s",
        "Time the service took to handle a request.",
        explicit_bucket_boundaries_advisory=LATENCY_BUCKETS,
    )
    rng = random.Random(SEED)
    mu = math.log(LATENCY_MEDIAN_SECONDS)
    for index in range(counters):
        attributes = _attributes(index, COUNTER_ROUTES)
        for _ in range(RECORDS_PER_SERIES):
            counter.add(rng.randint(1, 5), attributes)
    for index in range(histograms):
        attributes = _attributes(index, HISTOGRAM_ROUTES)
        for _ in range(RECORDS_PER_SERIES):
            histogram.record(rng.lognormvariate(mu, LATENCY_SIGMA), attributes)

    data = reader.get_metrics_data()
    if data is None:
        provider.shutdown()
        raise RuntimeError("the InMemoryMetricReader collected nothing")
    translator = _CustomCollector()
    translator.add_metrics_data(data)
    families = tuple(translator.collect())
    return Data(provider, reader, registry, data, families, counters, histograms)


def check_data(data: MetricsData | None, counters: int, histograms: int) -> None:
    """Raise unless ``data`` holds exactly the recorded series, none folded into an overflow series."""
    if data is None:
        raise RuntimeError("no metrics data collected")
    points: dict[str, int] = {}
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                metric_data = metric.data
                if metric.name == REQUESTS and not isinstance(metric_data, SumData):
                    raise RuntimeError(f"{REQUESTS} is a {type(metric_data).__name__}, not a Sum")
                if metric.name == DURATION:
                    if not isinstance(metric_data, HistogramData):
                        raise RuntimeError(f"{DURATION} is a {type(metric_data).__name__}, not a Histogram")
                    for histogram_point in metric_data.data_points:
                        if tuple(histogram_point.explicit_bounds) != tuple(LATENCY_BUCKETS):
                            raise RuntimeError(f"{DURATION} has buckets {histogram_point.explicit_bounds}")
                for point in metric_data.data_points:
                    if OVERFLOW_ATTRIBUTE in (point.attributes or {}):
                        raise RuntimeError(f"{metric.name} has an overflow series: raise the limit")
                points[metric.name] = points.get(metric.name, 0) + len(metric_data.data_points)
    expected = {REQUESTS: counters, DURATION: histograms}
    if points != expected:
        raise RuntimeError(f"collected series {points}, expected {expected}")


# --- equivalence ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    """One parsed metric family: type, HELP and samples keyed by (name, sorted label pairs)."""

    type: str
    documentation: str
    samples: Mapping[SampleKey, float]


def normalised(text: str) -> tuple[dict[str, Family], list[str]]:
    """Parse Prometheus text into families, normalised for our encoder's deliberate differences.

    Returns the families and the problems found while parsing (a family or sample seen twice).
    """
    families: dict[str, Family] = {}
    problems: list[str] = []
    for family in text_string_to_metric_families(text):
        samples: dict[SampleKey, float] = {}
        for sample in family.samples:
            labels = tuple(
                sorted(
                    # Empty label values: the reference writes otel_scope_schema_url="" (and an empty
                    # otel_scope_version when there is none); ours omits empty scope labels. Prometheus
                    # treats an empty label value exactly like an absent label: the same series.
                    # "le": the reference writes str(float) ("30.0"), ours floatToGoString; same number.
                    (key, repr(float(value)) if key == "le" else value)
                    for key, value in sample.labels.items()
                    if value != ""
                )
            )
            key = (sample.name, labels)
            if key in samples:
                problems.append(f"sample {_show(key)} appears twice")
            samples[key] = sample.value
        if family.name in families:
            problems.append(f"family {family.name} appears twice")
        families[family.name] = Family(family.type, family.documentation, samples)
    return families, problems


def _show(key: SampleKey) -> str:
    name, labels = key
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in labels) + "}"


def _same_value(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def differences(theirs_text: str, ours_text: str) -> list[str]:
    """Every difference between the reference's text and ours after normalisation (empty: equivalent)."""
    theirs, theirs_problems = normalised(theirs_text)
    ours, ours_problems = normalised(ours_text)
    found = [f"reference: {p}" for p in theirs_problems] + [f"ours: {p}" for p in ours_problems]
    for name in sorted(theirs.keys() - ours.keys()):
        found.append(f"family {name} only in the reference")
    for name in sorted(ours.keys() - theirs.keys()):
        found.append(f"family {name} only in ours")
    for name in sorted(theirs.keys() & ours.keys()):
        a, b = theirs[name], ours[name]
        if (a.type, a.documentation) != (b.type, b.documentation):
            found.append(
                f"family {name}: reference {a.type} {a.documentation!r}, ours {b.type} {b.documentation!r}"
            )
        for key in sorted(a.samples.keys() - b.samples.keys()):
            found.append(f"sample {_show(key)} only in the reference")
        for key in sorted(b.samples.keys() - a.samples.keys()):
            found.append(f"sample {_show(key)} only in ours")
        for key in sorted(a.samples.keys() & b.samples.keys()):
            if not _same_value(a.samples[key], b.samples[key]):
                found.append(f"sample {_show(key)}: reference {a.samples[key]!r}, ours {b.samples[key]!r}")
    return found


def _sample_count(text: str) -> int:
    return sum(len(family.samples) for family in text_string_to_metric_families(text))


# --- alternatives -------------------------------------------------------------------------------


class StaticCollector:
    """A prometheus_client collector that hands out the same, already translated families."""

    def __init__(self, families: Iterable[PromMetric]) -> None:
        self._families = tuple(families)

    def collect(self) -> Iterable[PromMetric]:
        """The stored families."""
        return self._families


def renders(built: Data) -> dict[str, Render]:
    """One render of every alternative, in report order."""
    data = built.data
    reader = built.reader
    registry = built.reference_registry
    static = StaticCollector(built.families)
    replay = _CustomCollector()

    def reference_from_data() -> bytes:
        replay.add_metrics_data(data)  # consumed by the next collect(), like the reader's collection
        return prometheus_client.generate_latest(replay)

    def collected() -> MetricsData:
        fresh = reader.get_metrics_data()
        if fresh is None:
            raise RuntimeError("the InMemoryMetricReader collected nothing")
        return fresh

    def sdk_collect() -> str:
        return "x" * len(collected().resource_metrics)

    collection = Collection(
        metrics=data, outcomes={}, time_unix_nano=time.time_ns(), duration_seconds=0.0, sdk_disabled=False
    )
    detailed_inputs = ViewInputs(
        collection=collection, previous=None, thresholds=Thresholds(), now_unix_nano=collection.time_unix_nano
    )
    alternatives: dict[str, Render] = {
        BASELINE: lambda: prometheus_client.generate_latest(registry),
        "reference_from_data": reference_from_data,
        "reference_render_only": lambda: prometheus_client.generate_latest(static),
        "sdk_collect": sdk_collect,
        "ours_collect_text": lambda: encode_prometheus_text(collected()),
        "ours_text": lambda: encode_prometheus_text(data),
    }
    encode_openmetrics: Callable[[MetricsData], str] | None = getattr(
        otel_formats, "encode_openmetrics", None
    )
    if encode_openmetrics is not None:
        openmetrics = encode_openmetrics
        alternatives["openmetrics"] = lambda: openmetrics(data)
    alternatives.update(
        {
            "graphite_tagged": lambda: encode_graphite(data, tagged=True),
            "graphite_plain": lambda: encode_graphite(data, tagged=False),
            "influx": lambda: encode_influx(data),
            "json": lambda: json.dumps(render_view("detailed", detailed_inputs).document),
        }
    )
    return alternatives


def timed_alternative(name: str, render: Render, sizes: dict[str, int]) -> Callable[[int], None]:
    """The harness callable: ``n`` renders, the size of the last output kept in ``sizes[name]``."""

    def run(n: int) -> None:
        size = 0
        for _ in range(n):
            size = len(render())
        sizes[name] = size

    return run


# --- checks before and after timing ---------------------------------------------------------------


def check_outputs(built: Data, outputs: Mapping[str, str | bytes]) -> list[str]:
    """Every problem with the untimed outputs: non-equivalence with the reference, missing series."""
    theirs = _text(outputs[BASELINE])
    problems: list[str] = []
    for name in ("reference_from_data", "reference_render_only"):
        if _text(outputs[name]) != theirs:
            problems.append(f"{name} does not give the same text as {BASELINE}")
    for name in ("ours_text", "ours_collect_text"):
        found = differences(theirs, _text(outputs[name]))
        problems.extend(f"{name}: {difference}" for difference in found)
    samples = _sample_count(theirs)
    wanted = built.counters + built.histograms * (len(LATENCY_BUCKETS) + 3) + 1  # + target_info
    if samples != wanted:
        problems.append(f"{BASELINE} has {samples} samples, expected {wanted}")

    series = built.series
    influx_lines = _text(outputs["influx"]).count("\n")
    if influx_lines != series:
        problems.append(f"influx wrote {influx_lines} lines for {series} series")
    for name in ("graphite_tagged", "graphite_plain"):
        lines = _text(outputs[name]).count("\n")
        if lines < series:
            problems.append(f"{name} wrote {lines} lines for {series} series")
    document = json.loads(outputs["json"])
    json_points = sum(len(entry["points"]) for entry in document["other_metrics"])
    if json_points != series:
        problems.append(f"json holds {json_points} points for {series} series")
    if "openmetrics" in outputs:
        text = _text(outputs["openmetrics"])
        open_samples = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
        if open_samples < samples or not text.endswith("# EOF\n"):
            problems.append(
                f"openmetrics has {open_samples} samples (the reference {samples}) or does not end in # EOF"
            )
    return problems


def _text(output: str | bytes) -> str:
    return output.decode("utf-8") if isinstance(output, bytes) else output


# --- report -----------------------------------------------------------------------------------------


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def headline(comparison: Comparison) -> dict[str, float]:
    """The ratios the issue asks about (median of per-round ratios; above 1: ours is faster)."""
    return {
        "reference_over_ours_collect_text": comparison.ratio(BASELINE, "ours_collect_text"),
        "reference_from_data_over_ours_text": comparison.ratio("reference_from_data", "ours_text"),
        "reference_render_only_over_ours_text": comparison.ratio("reference_render_only", "ours_text"),
        "reference_over_sdk_collect": comparison.ratio(BASELINE, "sdk_collect"),
    }


def summary(comparison: Comparison, ratios: Mapping[str, float]) -> str:
    """The headline ratios and the target verdict (reported, not enforced)."""
    main = ratios["reference_over_ours_collect_text"]
    lines = [
        "",
        "speed-ups (median of per-round ratios; above 1.0 means ours is faster):",
        f"  reference / ours_collect_text = {main:.2f}  (SDK collection + render on both sides)",
        f"  reference_from_data / ours_text = {ratios['reference_from_data_over_ours_text']:.2f}"
        "  (render of the same MetricsData on both sides)",
        f"  reference_render_only / ours_text = {ratios['reference_render_only_over_ours_text']:.2f}"
        "  (prometheus_client formatting of ready families vs our whole encoder)",
        f"  sdk_collect is {comparison.ratio('sdk_collect', BASELINE):.1%} of reference"
        f" and {comparison.ratio('sdk_collect', 'ours_collect_text'):.1%} of ours_collect_text",
        f"target (issue, reported only): reference / ours_collect_text >= {TARGET:.1f}: "
        f"{main:.2f} -> {_verdict(main >= TARGET)}",
    ]
    return "\n".join(lines)


@dataclass(frozen=True)
class Rate:
    """One alternative's median speed and the size of its output (``None``: it renders no text)."""

    alternative: str
    ms_per_render: float
    series_per_second: float
    output_bytes: int | None


def rates(comparison: Comparison, built: Data, outputs: Mapping[str, str | bytes]) -> list[Rate]:
    """Per alternative: median ms per render, series per second and the size of its output."""
    rows: list[Rate] = []
    for result in comparison.results:
        seconds = result.median_ns_per_op / 1e9
        output = outputs[result.name]
        size = None if result.name in NO_OUTPUT else len(_text(output).encode("utf-8"))
        rows.append(Rate(result.name, seconds * 1e3, built.series / seconds, size))
    return rows


def rates_table(rows: Sequence[Rate], built: Data) -> str:
    """``rates`` as a readable table."""
    width = max(len("alternative"), *(len(row.alternative) for row in rows))
    lines = [
        "",
        f"rates ({built.series} series per render: {built.counters} counter + {built.histograms} histogram;"
        " medians over rounds):",
        f"{'alternative':<{width}}  {'ms/render':>10}  {'series/s':>12}  {'output bytes':>12}",
    ]
    lines.extend(
        f"{row.alternative:<{width}}  {row.ms_per_render:>10.2f}  {row.series_per_second:>12,.0f}"
        f"  {'-' if row.output_bytes is None else f'{row.output_bytes:,}':>12}"
        for row in rows
    )
    return "\n".join(lines)


def _versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    for dist in (
        "telemetry-otel",
        "opentelemetry-sdk",
        "opentelemetry-exporter-prometheus",
        "prometheus_client",
    ):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "unknown"
    return versions


def main(argv: Sequence[str] | None = None) -> int:
    """Build the data, check equivalence, time every alternative, print the table, ratios and rates."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_COUNTERS} counter + {QUICK_HISTOGRAMS} histogram series, {QUICK_ROUNDS} rounds",
    )
    parser.add_argument("--counters", type=int, help=f"counter series (default {COUNTERS})")
    parser.add_argument("--histograms", type=int, help=f"histogram series (default {HISTOGRAMS})")
    parser.add_argument("--rounds", type=int, help=f"timed rounds (default {ROUNDS}, --quick {QUICK_ROUNDS})")
    parser.add_argument("--ops", type=int, default=1, help="renders per alternative per round (default 1)")
    parser.add_argument("--warmup-ops", type=int, default=1, help="untimed renders first (default 1)")
    parser.add_argument(
        "--json", action="store_true", help="also write the results under benchmarks/results/"
    )
    args = parser.parse_args(argv)
    counters = args.counters if args.counters is not None else QUICK_COUNTERS if args.quick else COUNTERS
    histograms = (
        args.histograms if args.histograms is not None else QUICK_HISTOGRAMS if args.quick else HISTOGRAMS
    )
    rounds = args.rounds if args.rounds is not None else QUICK_ROUNDS if args.quick else ROUNDS
    if counters < 1 or histograms < 1:
        parser.error("--counters and --histograms must be positive")

    started = time.perf_counter()
    built = build(counters, histograms)
    try:
        check_data(built.data, counters, histograms)
        alternatives = renders(built)
        outputs = {name: render() for name, render in alternatives.items()}
        problems = check_outputs(built, outputs)
        if problems:
            print(f"NOT EQUIVALENT: {len(problems)} problem(s); the first ones:", file=sys.stderr)
            for problem in problems[:SHOW_DIFFERENCES]:
                print(f"  {problem}", file=sys.stderr)
            return 1
        sizes: dict[str, int] = {}
        comparison = compare(
            BENCHMARK,
            {name: timed_alternative(name, render, sizes) for name, render in alternatives.items()},
            baseline=BASELINE,
            rounds=rounds,
            ops=args.ops,
            warmup_ops=args.warmup_ops,
        )
        wrong = {name: size for name, size in sizes.items() if size != len(outputs[name])}
        if wrong or sizes.keys() != outputs.keys():
            print(f"timed outputs differ in size from the checked ones: {wrong}", file=sys.stderr)
            return 1
        check_data(built.reader.get_metrics_data(), counters, histograms)
    finally:
        built.close()
    elapsed = time.perf_counter() - started

    ratios = headline(comparison)
    rows = rates(comparison, built, outputs)
    print(comparison.report())
    print(summary(comparison, ratios))
    print(rates_table(rows, built))
    print(
        f"\nequivalent: ours_text and ours_collect_text parse to the same families, samples and values as"
        f" {BASELINE} ({_sample_count(_text(outputs[BASELINE]))} samples; empty label values dropped, le"
        " compared as numbers); reference_from_data and reference_render_only give its exact text"
    )
    if "openmetrics" not in outputs:
        print("openmetrics: telemetry_otel.formats has no encode_openmetrics; not measured")
    versions = _versions()
    print(
        "versions: "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
        + f"; python {sys.version.split()[0]}; total run {elapsed:.1f} s"
    )
    if args.json:
        path = write_results(
            BENCHMARK,
            [comparison],
            extra={
                "versions": versions,
                "series": {"counter": counters, "histogram": histograms, "total": built.series},
                "records_per_series": RECORDS_PER_SERIES,
                "histogram_buckets": list(LATENCY_BUCKETS),
                "target": {"reference_over_ours_collect_text": TARGET},
                "headline": ratios,
                "rates": [dataclasses.asdict(row) for row in rows],
            },
        )
        print(f"results written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
