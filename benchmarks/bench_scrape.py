"""``GET /metrics`` on the real route against OTel's ``PrometheusMetricReader`` + ``generate_latest``.

Two data sets, each recorded identically (seeded) into our runtime and into a plain SDK
``MeterProvider`` holding the reference exporter's ``PrometheusMetricReader`` (its own
``CollectorRegistry``, the same resource), both with a cardinality limit above the series count:

* ``counters``: 10,000 counter series (``service.requests``, ``service.name`` x ``route``);
* ``mixed``: the same plus 1,000 histogram series (``service.request.duration``, unit ``s``,
  ``LATENCY_BUCKETS``).

Ours is the app of ``telemetry_otel.views.create_app`` driven in-process by Starlette's
``TestClient``: routing, the collection cycle, the runtime's read, the encoder, the body cache and
the response, as a user's scrape goes.

Per data set, two comparisons (side by side in one process, see ``_harness``; one op = one scrape):

1. Fresh scrapes, ``create_app(cache_ttl_seconds=0)``: every scrape runs a collection cycle (the
   SDK collection included) and encodes it.

   * ``reference``: ``prometheus_client.generate_latest(registry)``: the reader's SDK collection,
     its translation and formatting. THE BASELINE.
   * ``route``: ``GET /metrics`` with ``Accept-Encoding: identity`` (text 0.0.4).
   * ``reference_gzip``: ``gzip.compress(generate_latest(registry))``, what prometheus_client's
     HTTP handlers send to a client accepting gzip.
   * ``route_gzip``: ``GET /metrics`` with ``Accept-Encoding: gzip``.
   * ``sdk_collect``: a plain ``InMemoryMetricReader`` collection of the same data, the floor both
     sides pay (it caps what an encoder can gain).
   * ``route_asgi``: the same app called through its ASGI interface on its event loop, as a server
     calls it (``bench_memory.scrape``): routing, the cycle, the read, the encoder, the body cache
     and the response's chunks, without the test client's HTTP model and thread hops (which cost
     about 13 % of a mixed scrape and nearly all of a repeat one, and which no server pays). The
     targets are judged on this figure; ``route`` is reported beside it.

2. Repeat scrapes of one collection, ``create_app(cache_ttl_seconds=3600)``: the cycle's collection
   is served again and the body comes from the per-collection cache.

   * ``reference``: as above. THE BASELINE.
   * ``route_repeat``: ``GET /metrics`` (identity) of the same collection.
   * ``route_repeat_asgi``: the same through ASGI directly; what the route itself costs (the test
     client's fixed cost per request dominates ``route_repeat``). The target is judged on it.

Targets (issue 17): ``reference / route_asgi`` >= 4 (counters) and >= 8 (mixed); ``reference /
route_repeat_asgi`` >= 50. The test client's figures and gzip are reported, not targeted.

Equivalence, before timing, on the real route: the route's text 0.0.4 (identity and gzip) is parsed
and compared with the reference's ``generate_latest``, its OpenMetrics (``Accept:
application/openmetrics-text``) with the reference's OpenMetrics exposition, normalised only for the
documented deliberate differences (see ``bench_render.py`` and ``tests/formats``). Ours has more
families than the reference only for the runtime's own collector series (scope
``telemetry_otel.collector``), which are checked to be the only extras. Any difference fails the
run (exit 1). After timing, each alternative's last body length must equal the checked one.

Run: ``python benchmarks/bench_scrape.py [--quick] [--rounds N] [--json]``.
"""

from __future__ import annotations

import argparse
import gzip
import math
import random
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import prometheus_client
from _harness import Comparison, compare, write_results
from bench_memory import scrape as asgi_scrape
from bench_render import differences
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData
from opentelemetry.sdk.metrics.view import View
from prometheus_client.metrics_core import Metric as PromMetric
from prometheus_client.openmetrics import exposition as openmetrics_exposition
from prometheus_client.openmetrics import parser as openmetrics_parser
from starlette.testclient import TestClient

from telemetry_otel import Telemetry, TelemetryConfig
from telemetry_otel.instrumentation import LATENCY_BUCKETS
from telemetry_otel.views import create_app

BENCHMARK = "scrape"
BASELINE = "reference"
#: (name, counter series, histogram series, target of reference / route)
DATA_SETS = (("counters", 10_000, 0, 4.0), ("mixed", 10_000, 1_000, 8.0))
REPEAT_TARGET = 50.0

SCOPE = "bench.scrape"
SCOPE_VERSION = "0.1.0"
COLLECTOR_SCOPE = "telemetry_otel.collector"
SEED = 20_240_601
OPENMETRICS = "application/openmetrics-text; version=1.0.0"

#: One scrape; the length of the body it got.
Scrape = Callable[[], int]
#: prometheus_client's OpenMetrics parser and exposition (untyped modules), typed here.
parse_openmetrics: Callable[[str], Iterable[PromMetric]] = openmetrics_parser.text_string_to_metric_families
generate_openmetrics: Callable[[prometheus_client.CollectorRegistry], bytes] = (
    openmetrics_exposition.generate_latest
)
_Sample = tuple[str, tuple[tuple[str, str], ...], float]


@dataclass
class Sides:
    """Our runtime and the reference pipeline, holding the same recorded series."""

    telemetry: Telemetry
    provider: MeterProvider
    registry: prometheus_client.CollectorRegistry
    plain: InMemoryMetricReader
    counters: int
    histograms: int

    def close(self) -> None:
        """Shut both down."""
        self.provider.shutdown()
        self.telemetry.shutdown()


def build(counters: int, histograms: int) -> Sides:
    """Record ``counters`` counter and ``histograms`` histogram series on both sides, identically."""
    limit = counters + histograms + 100
    telemetry = Telemetry(TelemetryConfig(service_name="bench-scrape", cardinality_limit=limit))
    registry = prometheus_client.CollectorRegistry()
    plain = InMemoryMetricReader()
    provider = MeterProvider(
        metric_readers=[PrometheusMetricReader(registry=registry), plain],
        resource=telemetry.resource,
        views=[View(instrument_name="*", aggregation_cardinality_limit=limit)],
    )
    meters = (telemetry.get_meter(SCOPE, SCOPE_VERSION), provider.get_meter(SCOPE, SCOPE_VERSION))
    adds = [m.create_counter("service.requests", "{request}", "Requests handled.").add for m in meters]
    records = [
        m.create_histogram(
            "service.request.duration",
            "s",
            "Time the service took to handle a request.",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS,
        ).record
        for m in meters
    ]
    rng = random.Random(SEED)
    for index in range(counters):
        attributes = {"service.name": f"svc-{index // 100:03d}", "route": f"/api/r-{index % 100:03d}"}
        value = rng.randint(1, 5)
        for add in adds:
            add(value, attributes)
    mu = math.log(0.02)
    for index in range(histograms):
        attributes = {"service.name": f"svc-{index // 10:03d}", "route": f"/api/r-{index % 10:03d}"}
        for _ in range(3):
            latency = rng.lognormvariate(mu, 1.2)
            for record in records:
                record(latency, attributes)
    return Sides(telemetry, provider, registry, plain, counters, histograms)


@contextmanager
def route(sides: Sides, ttl: float) -> Iterator[TestClient]:
    """The real app over our runtime, started (lifespan) for the block."""
    with TestClient(create_app(sides.telemetry, cache_ttl_seconds=ttl)) as client:
        yield client


def get(client: TestClient, *, gzipped: bool = False, accept: str | None = None) -> bytes:
    """One ``GET /metrics``; the body as sent (still gzipped when it was)."""
    headers = {"Accept-Encoding": "gzip" if gzipped else "identity"}
    if accept is not None:
        headers["Accept"] = accept
    with client.stream("GET", "/metrics", headers=headers) as response:
        if response.status_code != 200:
            raise RuntimeError(f"GET /metrics answered {response.status_code}")
        if (response.headers.get("content-encoding") == "gzip") != gzipped:
            raise RuntimeError(f"GET /metrics gzip={gzipped} got {response.headers}")
        return b"".join(response.iter_raw())


def get_asgi(client: TestClient) -> int:
    """One ``GET /metrics`` (identity) through the app's ASGI interface on its event loop; the
    body's length (its chunks are dropped as a server writes them out)."""
    portal = client.portal
    if portal is None:
        raise RuntimeError("the test client has no event loop")
    status, length = portal.call(asgi_scrape, client.app)
    if status != 200:
        raise RuntimeError(f"GET /metrics answered {status}")
    return int(length)


# --- equivalence ----------------------------------------------------------------------------------


def _collector_only(text: str, openmetrics: bool) -> list[str]:
    """Problems: families of ``text`` whose samples are not all of the runtime's collector scope."""
    parse = parse_openmetrics if openmetrics else prometheus_client.parser.text_string_to_metric_families
    problems = []
    for family in parse(text):
        if any(sample.labels.get("otel_scope_name") != COLLECTOR_SCOPE for sample in family.samples):
            problems.append(f"family {family.name} is only in ours and not the runtime's own")
    return problems


def _split_extras(ours: str, theirs: str, openmetrics: bool) -> tuple[str, str]:
    """``ours`` as two texts: the families the reference also has, and the others."""
    parse = parse_openmetrics if openmetrics else prometheus_client.parser.text_string_to_metric_families
    names = {family.name for family in parse(theirs)}
    kept: list[str] = []
    extra: list[str] = []
    current, block = kept, ""
    for line in ours.splitlines(keepends=True):
        if line.startswith("# EOF"):
            kept.append(line)
            extra.append(line)
            continue
        if line.startswith(("# HELP ", "# TYPE ", "# UNIT ")):
            name = line.split(" ", 3)[2]
            if name != block:
                block = name
                current = kept if _family_in(name, names) else extra
        current.append(line)
    return "".join(kept), "".join(extra)


def _family_in(name: str, names: set[str]) -> bool:
    return name in names or (name.endswith("_total") and name[:-6] in names)


def _openmetrics_differences(theirs: str, ours: str) -> list[str]:
    """Differences of two OpenMetrics texts, normalised like ``tests/formats/test_openmetrics.py``:
    ours has ``_created`` samples and may have ``# UNIT``, the reference has neither."""

    def normalised(
        text: str,
    ) -> dict[str, tuple[str, str, list[tuple[str, tuple[tuple[str, str], ...], float]]]]:
        families = {}
        for family in parse_openmetrics(text):
            samples = sorted(
                (
                    sample.name,
                    tuple(
                        sorted(
                            (key, repr(float(value)) if key == "le" else value)
                            for key, value in sample.labels.items()
                            if value != ""
                        )
                    ),
                    sample.value,
                )
                for sample in family.samples
                if not sample.name.endswith("_created")
            )
            families[family.name] = (family.type, family.documentation, samples)
        return families

    a, b = normalised(theirs), normalised(ours)
    found = [f"family {name} only in the reference" for name in sorted(a.keys() - b.keys())]
    found += [f"family {name} only in ours" for name in sorted(b.keys() - a.keys())]
    for name in sorted(a.keys() & b.keys()):
        if a[name] != b[name]:
            found.append(f"family {name} differs")
    return found


def _without_agent(text: str, agent: str, problems: list[str], where: str) -> str:
    """``text`` without the ``agent`` label every sample of ours carries (docs/fleet.md) and the
    reference does not; a sample line without it is a problem."""
    label = f'agent="{agent}"'
    kept = []
    for line in text.splitlines(keepends=True):
        if line.startswith(("#", "target_info")) or not line.strip():  # target_info: the resource's
            kept.append(line)
            continue
        if label not in line:
            problems.append(f"{where}: a sample without {label}: {line.strip()[:80]}")
        kept.append(line.replace(label + ",", "").replace("{" + label + "}", "").replace(label, ""))
    return "".join(kept)


def check_equivalence(sides: Sides, client: TestClient) -> list[str]:
    """Every difference between the route's output and the reference's, in both formats and gzip."""
    theirs = prometheus_client.generate_latest(sides.registry).decode("utf-8")
    problems: list[str] = []
    agent = str(sides.telemetry.resource.attributes["service.name"])
    text = _without_agent(get(client).decode("utf-8"), agent, problems, "text")
    ours, extra = _split_extras(text, theirs, openmetrics=False)
    problems += [f"text: {p}" for p in differences(theirs, ours)]
    problems += [f"text: {p}" for p in _collector_only(extra, openmetrics=False)]
    if not extra.strip():
        problems.append("text: the runtime's own collector series are missing")
    zipped = gzip.decompress(get(client, gzipped=True)).decode("utf-8")
    unzipped = _without_agent(zipped, agent, problems, "gzip")
    ours_gzip, extra_gzip = _split_extras(unzipped, theirs, openmetrics=False)
    problems += [f"gzip: {p}" for p in differences(theirs, ours_gzip)]
    problems += [f"gzip: {p}" for p in _collector_only(extra_gzip, openmetrics=False)]

    theirs_om = generate_openmetrics(sides.registry).decode("utf-8")
    om = _without_agent(get(client, accept=OPENMETRICS).decode("utf-8"), agent, problems, "openmetrics")
    ours_om, extra_om = _split_extras(om, theirs_om, openmetrics=True)
    problems += [f"openmetrics: {p}" for p in _openmetrics_differences(theirs_om, ours_om)]
    problems += [f"openmetrics: {p}" for p in _collector_only(extra_om, openmetrics=True)]
    return problems


# --- timing ---------------------------------------------------------------------------------------


def _timed(name: str, scrape: Scrape, sizes: dict[str, int]) -> Callable[[int], None]:
    def run(n: int) -> None:
        size = 0
        for _ in range(n):
            size = scrape()
        sizes[name] = size

    return run


def _run(
    name: str, scrapes: Mapping[str, Scrape], rounds: int, expected: Mapping[str, int]
) -> tuple[Comparison, dict[str, int]]:
    sizes: dict[str, int] = {}
    comparison = compare(
        name,
        {alt: _timed(alt, scrape, sizes) for alt, scrape in scrapes.items()},
        baseline=BASELINE,
        rounds=rounds,
        ops=1,
        warmup_ops=1,
    )
    for alt, size in expected.items():
        if alt in sizes and not _close(sizes[alt], size):
            raise RuntimeError(f"{name}: {alt} answered {sizes[alt]} bytes after timing, {size} before")
    return comparison, sizes


def _close(after: int, before: int) -> bool:
    # The runtime's own series (collection count, duration) change by a few bytes per cycle.
    return abs(after - before) <= 64


@dataclass(frozen=True)
class DataSetResult:
    """The two comparisons of one data set and the figures the issue targets."""

    name: str
    fresh: Comparison
    repeat: Comparison
    target: float
    sizes: Mapping[str, int]
    counters: int
    histograms: int

    def rows(self) -> list[tuple[str, float, str, bool | None]]:
        """(figure, value, target text, met or None when only reported)."""
        label = f"{self.name} ({self.counters} counters + {self.histograms} histograms)"
        speedup = 1 / self.fresh.result("route").median_ratio
        gzip_speedup = self.fresh.ratio("reference_gzip", "route_gzip")
        repeat = 1 / self.repeat.result("route_repeat").median_ratio
        floor = 1 / self.fresh.result("sdk_collect").median_ratio
        asgi = 1 / self.fresh.result("route_asgi").median_ratio
        repeat_asgi = 1 / self.repeat.result("route_repeat_asgi").median_ratio
        return [
            (f"{label}: reference / route_asgi", asgi, f">= {self.target:g}", asgi >= self.target),
            (f"{label}: reference / sdk_collect (the cap)", floor, "reported", None),
            (f"{label}: reference / route (through the test client)", speedup, "reported", None),
            (f"{label}: reference_gzip / route_gzip", gzip_speedup, "reported", None),
            (
                f"{label}: reference / route_repeat_asgi",
                repeat_asgi,
                f">= {REPEAT_TARGET:g}",
                repeat_asgi >= REPEAT_TARGET,
            ),
            (f"{label}: reference / route_repeat (through the test client)", repeat, "reported", None),
        ]


def run_data_set(name: str, counters: int, histograms: int, target: float, rounds: int) -> DataSetResult:
    """Build, check equivalence, time fresh then repeat scrapes of one data set."""
    sides = build(counters, histograms)
    try:
        registry = sides.registry
        with route(sides, 0) as client:
            problems = check_equivalence(sides, client)
            if problems:
                shown = "\n  ".join(problems[:20])
                raise SystemExit(f"{name}: the route's output is not equivalent to the reference:\n  {shown}")
            fresh_scrapes: dict[str, Scrape] = {
                BASELINE: lambda: len(prometheus_client.generate_latest(registry)),
                "route": lambda: len(get(client)),
                "route_asgi": lambda: get_asgi(client),
                "reference_gzip": lambda: len(gzip.compress(prometheus_client.generate_latest(registry))),
                "route_gzip": lambda: len(get(client, gzipped=True)),
                "sdk_collect": lambda: len(_collected(sides).resource_metrics),
            }
            expected = {alt: scrape() for alt, scrape in fresh_scrapes.items() if alt != "sdk_collect"}
            if not _close(expected["route_asgi"], expected["route"]):
                raise RuntimeError(f"{name}: the ASGI call and the test client got different bodies")
            fresh, sizes = _run(f"{name}_fresh", fresh_scrapes, rounds, expected)
        with route(sides, 3600) as client:
            repeat_scrapes: dict[str, Scrape] = {
                BASELINE: lambda: len(prometheus_client.generate_latest(registry)),
                "route_repeat": lambda: len(get(client)),
                "route_repeat_asgi": lambda: get_asgi(client),
            }
            repeated = {"route_repeat": expected["route"], "route_repeat_asgi": expected["route"]}
            repeat, _ = _run(f"{name}_repeat", repeat_scrapes, rounds, repeated)
        return DataSetResult(name, fresh, repeat, target, sizes, counters, histograms)
    finally:
        sides.close()


def _collected(sides: Sides) -> MetricsData:
    data = sides.plain.get_metrics_data()
    if data is None:
        raise RuntimeError("the plain reader collected nothing")
    return data


def run(rounds: int, quick: bool = False) -> list[DataSetResult]:
    """Every data set (a tenth of the series with ``quick``)."""
    scale = 10 if quick else 1
    return [
        run_data_set(name, counters // scale, histograms // scale, target, rounds)
        for name, counters, histograms, target in DATA_SETS
    ]


def main(argv: list[str] | None = None) -> int:
    """Run, print the tables and the targets, optionally save JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=9, help="timed rounds per comparison (default 9)")
    parser.add_argument("--quick", action="store_true", help="a tenth of the series, 3 rounds")
    parser.add_argument("--json", action="store_true", help="also write the results under results/")
    args = parser.parse_args(argv)
    results = run(3 if args.quick and args.rounds == 9 else args.rounds, args.quick)
    for result in results:
        print(result.fresh.report())
        print(result.repeat.report())
        print(f"body bytes: {dict(result.sizes)}\n")
    print("targets (median of per-round ratios; reported, never enforced):")
    for result in results:
        for figure, value, target, met in result.rows():
            verdict = "" if met is None else (" -> met" if met else " -> NOT met")
            print(f"  {figure} = {value:.2f} ({target}){verdict}")
    print("equivalence: the route's text, gzip and OpenMetrics bodies match the reference exporter's")
    if args.json:
        comparisons = [c for r in results for c in (r.fresh, r.repeat)]
        print(f"results written to {write_results(BENCHMARK, comparisons)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
