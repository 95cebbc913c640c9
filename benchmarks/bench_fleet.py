"""A cold fleet summary over 5 and over 50 agents x 21 services backfilled into VictoriaMetrics.

Each agent's series are a real demo runtime's ``/metrics`` (21 services, 6 buses, ~1,700 series),
relabelled with the agent's id and a scrape's ``job``/``instance``, imported at three times 15 s
apart through ``/api/v1/import/prometheus`` (with an ``up`` series per agent). The 5-agent fleet
lies three days before the 50-agent fleet in the same VictoriaMetrics, so each read (one day of
lookback) sees only its own fleet.

Alternatives, side by side in one process (see ``_harness``), one op = one cold fleet summary, the
work of ``GET /api/fleet/v1/telemetry``: a new client (no cache), every request (:data:`QUERIES`
and the one series request), a model per agent, the whole fleet's collection and its summary view,
the fleet document as JSON.
``agents_5`` is the baseline.

Target (issue): the query count is the same at 5 and at 50 agents. The time ratio is reported:
the data returned grows with the agents, the number of queries does not.

Run: ``python benchmarks/bench_fleet.py [--rounds N] [--json]`` (needs Debian's ``victoria-metrics``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence

from _harness import compare, write_results
from prometheus_client.parser import text_string_to_metric_families

from telemetry_otel import Telemetry, TelemetryConfig
from telemetry_otel.formats import encode_prometheus_text, label_agent
from telemetry_otel.instrumentation.demo import DemoRuntime
from telemetry_otel.views import FleetSettings, Thresholds, TsdbConfig, ViewInputs, render_view
from telemetry_otel.views._build import build_model
from telemetry_otel.views._fleet_merge import fleet_collections
from telemetry_otel.views._fleet_query import PrometheusClient
from telemetry_otel.views._fleet_source import QUERIES, REQUESTS_PER_READ, FleetSource
from telemetry_otel.views._fleet_summary import fleet_document

FLEETS = (5, 50)
STEP_SECONDS = 15


def _demo_samples() -> list[tuple[str, dict[str, str], float]]:
    """The samples of one real demo runtime's ``/metrics`` after 40 ticks."""
    runtime = Telemetry(TelemetryConfig(service_name="template"))
    demo = DemoRuntime(runtime, seed=3)
    try:
        for _ in range(40):
            demo.step()
        collection = asyncio.run(runtime.collect())
    finally:
        demo.close()
        runtime.shutdown()
    text = encode_prometheus_text(label_agent(collection.metrics))
    return [
        (sample.name, dict(sample.labels), float(sample.value))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _import_lines(template: list[tuple[str, dict[str, str], float]], agents: int, end_unix: float) -> bytes:
    lines = []
    for index in range(agents):
        agent = f"agent{agents}-{index:02d}"
        scrape = {"job": "telemetry-otel", "instance": f"host{index:02d}:8000"}
        for step in range(3):
            at = end_unix - (2 - step) * STEP_SECONDS
            millis = int(at * 1000)
            scale = 1 - 0.01 * (2 - step)  # counters grow from one scrape to the next
            lines.append(f'up{{job="telemetry-otel",instance="{scrape["instance"]}"}} 1 {millis}')
            for name, labels, value in template:
                if name == "telemetry_collection_timestamp_seconds":
                    value, scaled = at, at
                else:
                    scaled = value * scale
                own = {**labels, "agent": agent, **scrape}
                rendered = ",".join(f'{key}="{_escape(val)}"' for key, val in own.items())
                lines.append(f"{name}{{{rendered}}} {scaled!r} {millis}")
    return ("\n".join(lines) + "\n").encode()


class _Victoria:
    """A VictoriaMetrics on 127.0.0.1 in a temporary directory, stopped by its PID."""

    def __init__(self) -> None:
        binary = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"
        self.root = tempfile.mkdtemp(prefix="bench-fleet-")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                binary,
                f"-storageDataPath={self.root}/vm",
                f"-httpListenAddr=127.0.0.1:{self.port}",
                "-graphiteListenAddr=",
                "-influxListenAddr=",
                "-retentionPeriod=100y",
                "-search.latencyOffset=0s",
                "-search.disableCache",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as answer:
                    if answer.read().strip() == b"OK":
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("victoria-metrics did not become ready in 30 s")
            time.sleep(0.1)

    def load(self, body: bytes) -> None:
        request = urllib.request.Request(f"{self.url}/api/v1/import/prometheus", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=120) as answer:
            assert answer.status == 204, answer.status
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=30):
            pass

    def stop(self) -> None:
        with_group = self.process.pid
        try:
            os.killpg(with_group, signal.SIGTERM)
            self.process.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(with_group, signal.SIGKILL)
            self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def cold_summary(url: str, at_unix: float, agents: int, queries: list[int]) -> Callable[[int], None]:
    """``n`` cold fleet summaries read at ``at_unix``; checks every agent and service was read."""

    def once() -> None:
        client = PrometheusClient(TsdbConfig(url, timeout_seconds=120))
        data = asyncio.run(FleetSource(client, FleetSettings()).read(at_unix))
        models = {
            name: build_model(
                ViewInputs(agent.collection, agent.previous, Thresholds(), agent.collection.time_unix_nano)
            )
            for name, agent in data.agents.items()
        }
        fleet, previous = fleet_collections(data)  # the whole fleet as one runtime, as the route does
        view = render_view(
            "summary", ViewInputs(fleet, previous, Thresholds(), fleet.time_unix_nano)
        ).document
        document = {**view, **fleet_document(data, models, url)}
        json.dumps(document)
        assert document["services"]["total"] == 21 * agents
        assert document["agents"]["total"] == agents, document["agents"]
        assert all(entry["services"]["total"] == 21 for entry in document["by_agent"].values())
        queries.append(client.queries)

    def run(n: int) -> None:
        for _ in range(n):
            once()

    return run


def main(argv: Sequence[str] | None = None) -> int:
    """Backfill both fleets, time a cold summary of each, print the ratio and the query counts."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--json", action="store_true", help="also write the results under benchmarks/results/"
    )
    args = parser.parse_args(argv)
    template = _demo_samples()
    now = time.time()
    ends = {5: now - 3 * 86_400, 50: now - 60}
    victoria = _Victoria()
    queries: dict[int, list[int]] = {agents: [] for agents in FLEETS}
    try:
        for agents in FLEETS:
            started = time.perf_counter()
            victoria.load(_import_lines(template, agents, ends[agents]))
            took = time.perf_counter() - started
            print(f"backfilled {agents} agents x {len(template)} series x 3 points in {took:.1f} s")
        comparison = compare(
            "fleet_summary",
            {
                f"agents_{agents}": cold_summary(victoria.url, ends[agents] + 1, agents, queries[agents])
                for agents in FLEETS
            },
            baseline="agents_5",
            rounds=args.rounds,
            ops=1,
            warmup_ops=1,
        )
    finally:
        victoria.stop()
    print(comparison.report())
    counts = {agents: sorted(set(found)) for agents, found in queries.items()}
    print(
        f"\nrequests per cold summary: {counts} "
        f"({len(QUERIES)} instant queries + 1 series request = {REQUESTS_PER_READ})"
    )
    same = all(found == [REQUESTS_PER_READ] for found in counts.values())
    print(f"target: the same query count at 5 and 50 agents: {'met' if same else 'NOT met'}")
    ratio = comparison.ratio("agents_50", "agents_5")
    print(f"time ratio 50/5 agents (median of per-round ratios): {ratio:.2f}")
    if args.json:
        print(f"results: {write_results('fleet_summary', [comparison])}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
