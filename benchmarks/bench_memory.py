"""Peak resident memory per series during a scrape, our runtime against a plain SDK and one reader.

Each side runs in a fresh subprocess of its own (this file with ``--child``), which imports every
module both sides use (so imports cost the same), then notes its peak resident set (``VmHWM``, the
peak ``ru_maxrss`` measures, but of this process image alone: Linux carries ``ru_maxrss`` over from
the parent across ``fork`` and ``exec``), builds the mix of
``_runtime_mix`` (40,000 series by default: services with their vitals and uptime, and ordinary
counter series), notes the resident set again (steady), scrapes three times (what a server holds
between scrapes counts: our runtime keeps its newest two collections and the body of the newest),
and notes the peak again:

* ``reference``: a plain SDK ``MeterProvider`` holding the mix through SDK instruments, with the
  reference exporter's ``PrometheusMetricReader`` as its one reader; the scrape is
  ``prometheus_client.generate_latest`` of its registry. THE BASELINE.
* ``ours``: our runtime holding the mix; the scrape is ``GET /metrics`` (identity) on the app of
  ``create_app``, called as an ASGI server calls it (on the loop of a ``TestClient`` that runs the
  app's lifespan), a fresh collection cycle each time; the body's chunks are counted and dropped as
  a server writes them to its socket (a test client's own copies of the body would be the
  scraper's memory, not the server's).

Per series: peak = (peak after the scrapes - peak before building) / series;
steady = (resident set after building - before) / series. Each round runs both children (in an
order alternating per round); the figure is the median of the per-round ratios ours / reference.
Both children check that their scrape held every series of the mix.

Target (issue 17): peak ours / reference <= 0.7. Steady is reported.

Run: ``python benchmarks/bench_memory.py [--series N] [--rounds N] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _runtime_mix import MIXES

BENCHMARK = "memory"
TARGET = 0.7
SERIES = 40_000
SIDES = ("reference", "ours")
#: Scrapes per child: a server in steady state holds what its earlier scrapes left.
SCRAPES = 3


def _status_kib(field: str) -> int:
    """A memory figure of this process from ``/proc/self/status``, in KiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _resident_kib() -> int:
    """The current resident set (``VmRSS``), in KiB."""
    return _status_kib("VmRSS")


def _peak_kib() -> int:
    """The peak resident set of this process image (``VmHWM``), in KiB.

    What ``ru_maxrss`` reports, except that Linux carries ``ru_maxrss`` over from the parent across
    ``fork`` and ``exec``: a child of a large process (``run_all.py`` after other benchmarks) would
    start with its parent's peak. ``VmHWM`` belongs to the child's own memory, so it starts at zero.
    """
    return _status_kib("VmHWM")


async def scrape(app: Any) -> tuple[int, int]:
    """``GET /metrics`` (identity) through the ASGI app as a server runs it: the body's chunks are
    counted and dropped as a server writes them to its socket; (status, body bytes)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/metrics",
        "raw_path": b"/metrics",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench"), (b"accept-encoding", b"identity")],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 80),
    }
    sent = {"status": 0, "bytes": 0}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            sent["status"] = message["status"]
        elif message["type"] == "http.response.body":
            sent["bytes"] += len(message.get("body", b""))

    await app(scope, receive, send)
    return sent["status"], sent["bytes"]


def child(side: str, series: int, mix: str) -> dict[str, float]:
    """Build the mix on ``side``, scrape it once, and return the memory figures in KiB."""
    import gc

    import prometheus_client
    from _runtime_mix import build_ours, build_plain, shape
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client.parser import text_string_to_metric_families
    from starlette.testclient import TestClient

    from telemetry_otel.views import create_app

    gc.collect()
    before_peak = _peak_kib()
    before = _resident_kib()
    if side == "ours":
        telemetry = build_ours(series, mix)
        gc.collect()
        steady = _resident_kib()
        app = create_app(telemetry, cache_ttl_seconds=0)
        with TestClient(app) as client:  # for the app's lifespan and its event loop
            portal = client.portal
            if portal is None:
                raise RuntimeError("the test client has no event loop")
            for _ in range(SCRAPES):  # each a fresh cycle: the runtime keeps its newest two
                status, _ = portal.call(scrape, app)
                if status != 200:
                    raise RuntimeError(f"GET /metrics answered {status}")
            peak = _peak_kib()
            body = client.get("/metrics", headers={"Accept-Encoding": "identity"}).content  # to check
    else:
        registry = prometheus_client.CollectorRegistry()
        build_plain(series, PrometheusMetricReader(registry=registry), mix=mix)
        gc.collect()
        steady = _resident_kib()
        for _ in range(SCRAPES):  # the body is written out and dropped, as its HTTP handler does
            if not prometheus_client.generate_latest(registry):
                raise RuntimeError("generate_latest wrote nothing")
        peak = _peak_kib()
        body = prometheus_client.generate_latest(registry)  # to check
    services, counters = shape(series, mix)
    names = {
        "service_requests",
        "service_errors",
        "service_request_duration_seconds",
        "service_uptime_seconds",
    }
    found = {name: 0 for name in (*names, "bench_items")}
    for family in text_string_to_metric_families(body.decode("utf-8")):
        if family.name in found:
            found[family.name] = len(
                {tuple(sorted(s.labels.items())) for s in family.samples if "le" not in s.labels}
            )
    expected = {**dict.fromkeys(names, services), "bench_items": counters}
    expected = {name: count for name, count in expected.items() if count}
    found = {name: count for name, count in found.items() if name in expected or count}
    if found != expected:
        raise RuntimeError(f"{side}: the scrape held {found}, expected {expected}")
    return {
        "before_kib": before,
        "before_peak_kib": before_peak,
        "steady_kib": steady,
        "peak_kib": peak,
        "body_bytes": len(body),
    }


@dataclass(frozen=True)
class Round:
    """Both sides' figures in one round, in bytes per series."""

    peak: dict[str, float]
    steady: dict[str, float]
    body: dict[str, int]


def run_round(series: int, order: tuple[str, ...], mix: str) -> Round:
    """One fresh subprocess per side, in ``order``."""
    peak: dict[str, float] = {}
    steady: dict[str, float] = {}
    body: dict[str, int] = {}
    for side in order:
        output = subprocess.run(
            [sys.executable, __file__, "--child", side, "--series", str(series), "--mix", mix],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        figures = json.loads(output.strip().splitlines()[-1])
        if figures["peak_kib"] <= figures["before_peak_kib"]:
            raise SystemExit(f"{side}: {series} series did not raise the peak above the imports': use more")
        peak[side] = (figures["peak_kib"] - figures["before_peak_kib"]) * 1024 / series
        steady[side] = (figures["steady_kib"] - figures["before_kib"]) * 1024 / series
        body[side] = int(figures["body_bytes"])
    return Round(peak, steady, body)


def measure(series: int, rounds: int, mix: str = "runtime") -> tuple[list[Round], list[float], list[float]]:
    """Run ``rounds`` rounds; return them and the per-round ratios ours / reference (peak, steady)."""
    done = [run_round(series, SIDES if index % 2 == 0 else SIDES[::-1], mix) for index in range(rounds)]
    peak_ratios = [r.peak["ours"] / r.peak["reference"] for r in done]
    steady_ratios = [r.steady["ours"] / r.steady["reference"] for r in done]
    return done, peak_ratios, steady_ratios


def main(argv: list[str] | None = None) -> int:
    """Run the rounds (or, with ``--child``, one side) and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--series", type=int, default=SERIES, help=f"series in the mix (default {SERIES})")
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds, each one subprocess per side (default 3)"
    )
    parser.add_argument(
        "--mix", choices=sorted(MIXES), default="runtime", help="the mix of series (default runtime)"
    )
    parser.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="also write the results under results/")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.series, args.mix)))
        return 0
    rounds, peak_ratios, steady_ratios = measure(args.series, args.rounds, args.mix)
    what = f"{args.series} series ({args.mix} mix)"
    print(f"{BENCHMARK}: {args.rounds} rounds, {what}, one fresh subprocess per side per round")
    for index, r in enumerate(rounds):
        print(
            f"  round {index + 1}: peak per series ours {r.peak['ours']:.0f} B,"
            f" reference {r.peak['reference']:.0f} B; steady ours {r.steady['ours']:.0f} B,"
            f" reference {r.steady['reference']:.0f} B; body ours {r.body['ours']} B,"
            f" reference {r.body['reference']} B"
        )
    peak = statistics.median(peak_ratios)
    steady = statistics.median(steady_ratios)
    spread = f"min {min(peak_ratios):.3f}, max {max(peak_ratios):.3f}"
    print(f"peak per series during a scrape, ours / reference = {peak:.3f} ({spread})")
    print(f"steady per series, ours / reference = {steady:.3f}")
    print("targets (median of per-round ratios; reported, never enforced):")
    print(f"  peak ours / reference = {peak:.3f} (<= {TARGET}) -> {'met' if peak <= TARGET else 'NOT met'}")
    if args.json:
        from _harness import RESULTS_DIR, machine_info

        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        path = RESULTS_DIR / f"{BENCHMARK}.json"
        data = {
            "series": args.series,
            "machine": machine_info(),
            "peak_ratios": peak_ratios,
            "steady_ratios": steady_ratios,
        }
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        print(f"results written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
