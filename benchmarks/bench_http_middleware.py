"""Overhead of HTTP server metrics middleware per request, against a bare Starlette app.

Alternatives, side by side in one process (see ``_harness``), each the same Starlette app (the same
routes, one mount, async endpoints answering ``ok``) with one middleware added by
``Starlette(middleware=[...])``, driven in process through ASGI on one event loop:

* ``bare``: no middleware. THE BASELINE: each other alternative's overhead is its cost minus this.
* ``ours``: ``telemetry_otel.instrumentation.HTTPMetricsMiddleware`` on a ``Telemetry`` runtime
  (default exemplar filter ``trace_based``; no ``TracerProvider``: metrics only).
* ``otel_asgi``: ``opentelemetry.instrumentation.asgi.OpenTelemetryMiddleware`` metrics only: a
  ``NoOpTracerProvider`` and an SDK ``MeterProvider`` with an ``InMemoryMetricReader``, with
  ``OTEL_SEMCONV_STABILITY_OPT_IN=http`` so it records the same stable metrics
  (``http.server.request.duration`` in s, ``http.server.active_requests``).
* ``starlette_exporter``: ``starlette_exporter.PrometheusMiddleware`` (``group_paths=True``: route
  templates) on ``prometheus_client``'s default registry.

The requests cycle over five routes (a plain path, two path templates, a mounted template, a POST).
The figure of the issue is, per round, ``(ours - bare) / min(otel_asgi - bare, starlette_exporter -
bare)``, reported as the median over rounds; the target is <= 0.5. Afterwards every alternative's
recorded request count is read back from its own metrics and checked against the requests sent.

Run: ``python benchmarks/bench_http_middleware.py [--rounds N] [--ops N] [--warmup-ops N] [--json]``.
"""

from __future__ import annotations

import os

os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "http"  # before the instrumentation reads it

import argparse
import asyncio
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import prometheus_client
from _harness import Comparison, compare, write_results
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import Histogram, InMemoryMetricReader, MetricsData
from opentelemetry.trace import NoOpTracerProvider
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.types import Message
from starlette_exporter import PrometheusMiddleware

from telemetry_otel import Telemetry, TelemetryConfig
from telemetry_otel.instrumentation import HTTPMetricsMiddleware

BENCHMARK = "http_middleware"
BASELINE = "bare"
TARGET = 0.5
DURATION = "http.server.request.duration"

#: (method, path) of the requests, cycled.
REQUESTS: tuple[tuple[str, str], ...] = (
    ("GET", "/items"),
    ("GET", "/items/42"),
    ("GET", "/users/ada/orders/7"),
    ("GET", "/api/v1/things/9"),
    ("POST", "/items"),
)


async def ok(request: Request) -> Response:
    return PlainTextResponse("ok")


def make_app(middleware: Sequence[Middleware]) -> Starlette:
    """The same routes for every alternative."""
    return Starlette(
        routes=[
            Route("/", ok),
            Route("/health", ok),
            Route("/items", ok, methods=["GET", "POST"]),
            Route("/items/{item_id:int}", ok),
            Route("/users/{user_id}", ok),
            Route("/users/{user_id}/orders/{order_id:int}", ok),
            Mount("/api/v1", routes=[Route("/things", ok), Route("/things/{thing_id:int}", ok)]),
        ],
        middleware=list(middleware),
    )


def _scope(method: str, path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench.local"), (b"user-agent", b"bench")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


@dataclass
class Subject:
    """One alternative: the timed callable, the responses it got, what its metrics counted."""

    run: Callable[[int], None]
    responses: Callable[[], int]
    recorded: Callable[[], int]
    close: Callable[[], None]


def subject(
    app: Starlette, loop: asyncio.AbstractEventLoop, recorded: Callable[[], int], close: Callable[[], None]
) -> Subject:
    scopes = [_scope(method, path) for method, path in REQUESTS]
    count = len(scopes)
    answered = [0]

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            if message["status"] >= 400:
                raise RuntimeError(f"unexpected status {message['status']}")
            answered[0] += 1

    async def drive(n: int) -> None:
        for index in range(n):
            await app(dict(scopes[index % count]), receive, send)

    def run(n: int) -> None:
        loop.run_until_complete(drive(n))

    return Subject(run, lambda: answered[0], recorded, close)


def _histogram_count(data: MetricsData | None, name: str) -> int:
    return sum(
        point.count
        for resource_metrics in (data.resource_metrics if data is not None else ())
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        if metric.name == name and isinstance(metric.data, Histogram)
        for point in metric.data.data_points
    )


def build_subjects(loop: asyncio.AbstractEventLoop) -> dict[str, Subject]:
    """Every alternative, in report order."""
    telemetry = Telemetry(TelemetryConfig(service_name="bench"))
    ours = make_app([Middleware(HTTPMetricsMiddleware, telemetry=telemetry)])

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    otel = make_app(
        [Middleware(OpenTelemetryMiddleware, meter_provider=provider, tracer_provider=NoOpTracerProvider())]
    )

    exporter = make_app([Middleware(PrometheusMiddleware, app_name="bench", group_paths=True)])

    def exporter_recorded() -> int:
        total = 0.0
        for family in prometheus_client.REGISTRY.collect():
            for sample in family.samples:
                if sample.name == "starlette_requests_total" and sample.labels.get("app_name") == "bench":
                    total += sample.value
        return int(total)

    return {
        "ours": subject(
            ours, loop, lambda: _histogram_count(telemetry.read_metrics(), DURATION), telemetry.shutdown
        ),
        "otel_asgi": subject(
            otel, loop, lambda: _histogram_count(reader.get_metrics_data(), DURATION), provider.shutdown
        ),
        "starlette_exporter": subject(exporter, loop, exporter_recorded, lambda: None),
        BASELINE: subject(make_app([]), loop, lambda: -1, lambda: None),
    }


def overhead_ratios(comparison: Comparison) -> list[float]:
    """Per round: our overhead over the cheaper of the two others' overheads."""
    bare = comparison.result(BASELINE).ns_per_op
    ours = comparison.result("ours").ns_per_op
    otel = comparison.result("otel_asgi").ns_per_op
    exporter = comparison.result("starlette_exporter").ns_per_op
    return [(o - b) / min(t - b, e - b) for o, t, e, b in zip(ours, otel, exporter, bare, strict=True)]


def summary(comparison: Comparison) -> tuple[str, dict[str, float]]:
    bare = comparison.result(BASELINE).median_ns_per_op
    overheads = {
        name: statistics.median(
            a - b
            for a, b in zip(
                comparison.result(name).ns_per_op, comparison.result(BASELINE).ns_per_op, strict=True
            )
        )
        for name in ("ours", "otel_asgi", "starlette_exporter")
    }
    ratio = statistics.median(overhead_ratios(comparison))
    lines = [
        "",
        f"bare Starlette: {bare / 1000:.1f} us per request; overhead per request (median of per-round "
        "differences to bare):",
        *(f"  {name}: {ns / 1000:.2f} us" for name, ns in overheads.items()),
        "target (issue): ours <= 0.5 x the cheaper of otel_asgi and starlette_exporter",
        f"  (ours - bare) / min(otel_asgi - bare, starlette_exporter - bare) = {ratio:.3f} -> "
        f"{'met' if ratio <= TARGET else 'NOT met'}",
    ]
    return "\n".join(lines), {
        "overhead_ratio": ratio,
        **{f"overhead_ns_{k}": v for k, v in overheads.items()},
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds (default 15)")
    parser.add_argument(
        "--ops", type=int, default=2_000, help="requests per alternative per round (default 2000)"
    )
    parser.add_argument("--warmup-ops", type=int, default=500, help="untimed requests first (default 500)")
    parser.add_argument(
        "--json", action="store_true", help="also write the results under benchmarks/results/"
    )
    args = parser.parse_args(argv)

    loop = asyncio.new_event_loop()
    subjects = build_subjects(loop)
    try:
        comparison = compare(
            BENCHMARK,
            {name: item.run for name, item in subjects.items()},
            baseline=BASELINE,
            rounds=args.rounds,
            ops=args.ops,
            warmup_ops=args.warmup_ops,
        )
        total = comparison.total_ops
        wrong = {
            name: (item.responses(), item.recorded())
            for name, item in subjects.items()
            if item.responses() != total or (name != BASELINE and item.recorded() != total)
        }
        if wrong:
            raise RuntimeError(f"expected {total} answered and recorded requests each, got {wrong}")
    finally:
        for item in subjects.values():
            item.close()
        loop.close()

    print(comparison.report())
    text, headline = summary(comparison)
    print(text)
    print(f"\nverified: every alternative answered {total} requests and each middleware recorded them all")
    versions = {
        dist: metadata.version(dist)
        for dist in (
            "telemetry-otel",
            "starlette",
            "opentelemetry-instrumentation-asgi",
            "starlette-exporter",
        )
    }
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
