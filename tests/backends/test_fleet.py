"""Fleet views over real engines: three demo agents (separate processes, their own ids and seeds,
traffic frozen after a fixed number of requests), a Prometheus scraping them, and a Prometheus in
agent mode remote-writing the same targets into VictoriaMetrics.

Over each TSDB the fleet endpoint gives, for every agent, exactly the counts that agent's own
endpoint gives. Rates: the window (7.5 s, 2.5 scrapes) lies after the freeze, so both the agent's
own rate and the TSDB's ``increase`` are 0 (compared to 1e-9). p95: both the views over the TSDB's buckets and
PromQL's ``histogram_quantile`` interpolate linearly inside the same bucket of the same cumulative
counts, so they agree with the agent's own p95 up to float rounding (relative 1e-9). Killing an
agent makes it ``down`` in the fleet summary within two scrape intervals over both TSDBs (see the
test's docstring for what is counted), and its last counts stay in the fleet totals.

The engines run the configurations ``docs/deployment.md`` shows: a 3 s scrape interval, agent mode's
``batch_send_deadline`` of 250 ms, and VictoriaMetrics with its default query flags (the fleet's
queries carry ``nocache=1``, so no ``-search.latencyOffset`` is needed).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import httpx2 as httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from telemetry_otel import Telemetry
from telemetry_otel.formats import encode_prometheus_text, label_agent
from telemetry_otel.instrumentation import instrument_service
from telemetry_otel.views import (
    FleetSettings,
    Thresholds,
    TsdbConfig,
    TsdbError,
    ViewInputs,
    create_fleet_app,
)
from telemetry_otel.views._build import build_model
from telemetry_otel.views._fleet_html import render_fleet_html
from telemetry_otel.views._fleet_query import PrometheusClient
from telemetry_otel.views._fleet_source import QUERIES, REQUESTS_PER_READ, SERIES_MATCHES, FleetSource
from telemetry_otel.views._fleet_summary import fleet_document, fleet_json, fleet_model

if TYPE_CHECKING:
    from _support import Prometheus, PrometheusAgent, TelemetryProcess, VictoriaMetrics

pytestmark = pytest.mark.backend

SCRAPE_SECONDS = 3.0
WINDOW_SECONDS = 7.5
BATCH_SEND_DEADLINE = "250ms"
AGENTS = {"fleet-a": 101, "fleet-b": 202, "fleet-c": 303}
#: What makes an agent show a status with a reason: fleet-a's ``memory`` returns a value it never
#: declared (dropped: ``warn``, the problem as reason), fleet-b's ``llm`` fails (``fail``, its
#: reported reason); fleet-c is healthy.
TROUBLE = {"fleet-a": ["--demo-bad-value", "memory"], "fleet-b": ["--demo-fail", "llm"], "fleet-c": []}
STOP_AFTER = 150


@dataclass
class Rig:
    agents: dict[str, TelemetryProcess]
    prometheus: Prometheus
    agent_mode: PrometheusAgent
    victoria: VictoriaMetrics
    fleet_cli: TelemetryProcess
    own: dict[str, dict[str, Any]]
    frozen_at: float


def _get(url: str, **params: str) -> httpx.Response:
    return httpx.get(url, params=params, timeout=15, trust_env=False)


def _own_documents(agent: TelemetryProcess, name: str) -> dict[str, Any]:
    base = f"{agent.url}/api/{name}/v1/telemetry"
    return {view: _get(base, view=view).json() for view in ("summary", "operational", "detailed", "health")}


def _counts(documents: dict[str, Any]) -> dict[str, Any]:
    """Every count an agent's views show: runtime, per service, per bus."""
    summary, operational, detailed = documents["summary"], documents["operational"], documents["detailed"]
    return {
        "services": summary["services"],
        "requests": summary["requests"]["total"],
        "errors": summary["requests"]["errors"],
        "status": summary["status"],
        "per_service": {
            name: (state["requests"], state["errors"], state["status"], state["queue_depth"])
            for name, state in operational["services"].items()
        },
        "per_bus": {
            name: (bus["requests"], bus["failures"], bus["processed"], bus["providers_total"])
            for name, bus in detailed["buses"].items()
        },
    }


def _frozen(agent: TelemetryProcess, name: str) -> dict[str, Any]:
    """The agent's documents once two reads a collection apart give the same counts."""
    deadline = time.monotonic() + 30
    last = None
    while True:
        documents = _own_documents(agent, name)
        counts = _counts(documents)
        if counts == last and counts["requests"]:
            return documents
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} never froze: {counts['requests']} requests")
        last = counts
        time.sleep(1.2)


@pytest.fixture(scope="module")
def rig(
    start_telemetry_process: Callable[..., TelemetryProcess],
    start_prometheus: Callable[..., Prometheus],
    start_prometheus_agent: Callable[..., PrometheusAgent],
    start_victoria_metrics: Callable[..., VictoriaMetrics],
    free_port: Callable[..., int],
) -> Iterator[Rig]:
    ports = {name: free_port() for name in AGENTS}
    targets = [f"127.0.0.1:{port}" for port in ports.values()]
    interval = f"{SCRAPE_SECONDS:g}s"
    victoria = start_victoria_metrics(search_flags=())  # the defaults, as documented
    # The targets are declared first: discovery is throttled to 5 s, the agents bind meanwhile.
    prometheus = start_prometheus(targets, scrape_interval=interval, job="telemetry-otel")
    agent_mode = start_prometheus_agent(
        targets,
        f"{victoria.http_url}/api/v1/write",
        scrape_interval=interval,
        job="telemetry-otel",
        batch_send_deadline=BATCH_SEND_DEADLINE,
    )
    agents = {
        name: start_telemetry_process(
            [
                "serve",
                "--demo",
                "--agent",
                name,
                "--seed",
                str(seed),
                "--cache-ttl",
                "0.5",
                "--stop-after-requests",
                str(STOP_AFTER),
                "--log-level",
                "warning",
                *TROUBLE[name],
            ],
            f"/api/{name}/v1/telemetry/health/live",
            port=ports[name],
        )
        for name, seed in AGENTS.items()
    }
    fleet_cli = start_telemetry_process(
        [
            "fleet",
            "--prometheus",
            prometheus.url,
            "--cache-ttl",
            "0",
            "--window",
            f"{WINDOW_SECONDS:g}",
            "--down-after",
            "60",
            "--log-level",
            "warning",
        ],
        "/health",
    )
    own = {name: _frozen(agent, name) for name, agent in agents.items()}
    rig = Rig(agents, prometheus, agent_mode, victoria, fleet_cli, own, time.time())
    yield rig
    for process in (fleet_cli, *agents.values()):
        process.stop()


def _victoria_fleet(rig: Rig, live_server: Callable[..., Any]) -> str:
    settings = FleetSettings(window_seconds=WINDOW_SECONDS, down_after_seconds=60)
    app = create_fleet_app(rig.victoria.http_url, settings=settings, cache_ttl_seconds=0)
    return str(live_server(app).url)


def _fleet_after_freeze(rig: Rig, base: str, flush: Callable[[], None]) -> dict[str, Any]:
    """The fleet summary once every agent's newest collection in the TSDB is past the freeze by the
    rate window: two or more scrapes of the frozen agents, and a window with nothing but them."""
    deadline = time.monotonic() + 40
    while True:
        flush()
        response = _get(f"{base}/api/fleet/v1/telemetry")
        if response.status_code == 200:
            document = response.json()
            ages = [entry["last_collection_age_seconds"] for entry in document["by_agent"].values()]
            newest = time.time() - max(ages, default=1e9)
            if len(ages) == len(AGENTS) and newest >= rig.frozen_at + WINDOW_SECONDS + 0.5:
                return document
        if time.monotonic() > deadline:
            raise AssertionError(f"the TSDB never caught up with the frozen agents: {response.text[:500]}")
        time.sleep(0.5)


def _reasons(health: dict[str, Any]) -> dict[str, Any]:
    """Every status and reason of a health view: the runtime's, each category's, service's and bus's."""
    return {
        "runtime": (health["status"], health["reason"]),
        **{
            f"{kind}/{name}": (entry["status"], entry["reason"])
            for kind in ("categories", "services", "buses")
            for name, entry in health[kind].items()
        },
    }


def _check_agents_match(rig: Rig, base: str, fleet: dict[str, Any]) -> None:
    degraded = sum(own["summary"]["status"] != "pass" for own in rig.own.values())
    expected = {"total": 3, "healthy": 3 - degraded, "degraded": degraded, "down": 0, "unknown": 0}
    assert degraded == 2  # fleet-a warns, fleet-b fails (TROUBLE)
    dropped = rig.own["fleet-a"]["health"]["services"]["memory"]
    assert dropped["status"] == "warn"
    assert "snapshot problem: demo.undeclared" in dropped["reason"]
    failing = rig.own["fleet-b"]["health"]["services"]["llm"]
    assert failing["status"] == "fail"
    assert failing["reason"]
    assert fleet["agents"] == expected, fleet
    for name, own in rig.own.items():
        copy = {view: _get(f"{base}/api/{name}/v1/telemetry", view=view).json() for view in own}
        assert _counts(copy) == _counts(own), name  # exactly
        # The same status and the same reason everywhere: the texts are series too.
        assert _reasons(copy["health"]) == _reasons(own["health"]), name
        entry = fleet["by_agent"][name]
        assert (entry["status"], entry["reason"]) == (own["summary"]["status"], own["summary"]["reason"])
        assert entry["requests"]["total"] == own["summary"]["requests"]["total"]
        assert entry["missing"] == []
        assert entry["scrape_up"] is True
        # Rates: a window after the freeze, 0 on both sides.
        assert own["summary"]["requests"]["rate_per_second"] == pytest.approx(0.0, abs=1e-9)
        assert copy["summary"]["requests"]["rate_per_second"] == pytest.approx(0.0, abs=1e-9)
        assert entry["requests"]["rate_per_second"] == pytest.approx(0.0, abs=1e-9)
        # p95: the same buckets interpolated the same way.
        p95 = own["summary"]["latency_p95_seconds"]
        assert p95 is not None
        assert copy["summary"]["latency_p95_seconds"] == pytest.approx(p95, rel=1e-9)
        assert entry["latency_p95_seconds"] == pytest.approx(p95, rel=1e-9)
        assert copy["summary"]["fleet"]["window_seconds"] == WINDOW_SECONDS
    total = sum(own["summary"]["requests"]["total"] for own in rig.own.values())
    assert fleet["requests"]["total"] == total
    assert fleet["source"]["queries"] == REQUESTS_PER_READ
    # The whole fleet as one runtime of agent/service components: the same counts, per service.
    assert fleet["services"]["total"] == sum(own["summary"]["services"]["total"] for own in rig.own.values())
    services = _get(f"{base}/api/fleet/v1/telemetry", view="operational").json()["services"]
    reasons = _get(f"{base}/api/fleet/v1/telemetry", view="health").json()["services"]
    for name, own in rig.own.items():
        for service, state in own["health"]["services"].items():
            assert (reasons[f"{name}/{service}"]["status"], reasons[f"{name}/{service}"]["reason"]) == (
                state["status"],
                state["reason"],
            ), (name, service)
        for service, state in own["operational"]["services"].items():
            copied = services[f"{name}/{service}"]
            assert (copied["requests"], copied["errors"], copied["status"]) == (
                state["requests"],
                state["errors"],
                state["status"],
            ), (name, service)


def test_fleet_over_prometheus_gives_each_agents_own_counts(rig: Rig) -> None:
    fleet = _fleet_after_freeze(rig, rig.fleet_cli.url, lambda: None)
    _check_agents_match(rig, rig.fleet_cli.url, fleet)
    page = _get(f"{rig.fleet_cli.url}/api/fleet/v1/telemetry", format="html")
    assert page.status_code == 200
    assert 'id="agent-fleet-a"' in page.text


def test_every_fleet_route_answers_in_each_format_or_refuses_naming_what_is_allowed(
    rig: Rig, live_server: Callable[..., Any]
) -> None:
    """Past the counts: an agent's and the fleet's other views and formats, their health, and the
    refusals (4xx JSON naming what is allowed, never a 500) once the TSDB answers. The app runs in
    this process (the ``fleet`` command's runs in its own: the counts test)."""
    settings = FleetSettings(window_seconds=WINDOW_SECONDS, down_after_seconds=60)
    base = str(live_server(create_fleet_app(rig.prometheus.url, settings=settings, cache_ttl_seconds=0)).url)
    name = next(iter(AGENTS))
    agent = f"{base}/api/{name}/v1/telemetry"
    fleet = f"{base}/api/fleet/v1/telemetry"
    _fleet_after_freeze(rig, base, lambda: None)
    for url, params, status, kind in (
        (agent, {"format": "html"}, 200, "text/html"),
        (agent, {"format": "prometheus"}, 200, "text/plain"),
        (agent, {"format": "influxdb", "precision": "s"}, 200, "text/plain"),
        (agent, {"view": "operational"}, 200, "application/json"),
        (fleet, {"view": "operational"}, 200, "application/json"),
        (fleet, {"view": "health", "format": "openmetrics"}, 200, "application/openmetrics-text"),
        (fleet, {"format": "html"}, 200, "text/html"),
        (fleet, {"format": "influxdb", "precision": "s"}, 200, "text/plain"),
        (f"{base}/api/fleet/v1/telemetry/health", {}, None, "application/health+json"),
        (f"{agent}/health", {}, 200, "application/health+json"),  # fleet-a warns: 200
        (f"{base}/api/fleet-b/v1/telemetry/health", {}, 503, "application/health+json"),  # it fails
        (f"{base}/health", {}, 200, "application/health+json"),
    ):
        answer = _get(url, **params)
        assert answer.status_code == status if status is not None else answer.status_code in (200, 503)
        assert answer.headers["content-type"].startswith(kind), (url, params, answer.headers)
    for url, params, status, allowed in (
        (f"{base}/api/no-such-agent/v1/telemetry", {}, 404, None),
        (f"{base}/api/no-such-agent/v1/telemetry/health", {}, 404, None),
        (agent, {"precision": "s"}, 400, ["influxdb"]),
        (agent, {"format": "html", "view": "operational"}, 400, ["summary", "health"]),
        (agent, {"category": "no-such-category"}, 400, None),
        (fleet, {"precision": "s"}, 400, ["influxdb"]),
        (fleet, {"view": "operational", "category": "no-such-category"}, 400, None),
        (f"{agent}/health", {"view": "summary"}, 400, []),
        (agent, {"live": "true"}, 400, ["false"]),
        (agent, {"view": "speed"}, 400, None),
        (agent, {"format": "yaml"}, 400, None),
        (fleet, {"format": "html", "view": "health"}, 400, ["summary"]),
        (fleet, {"category": "runtime"}, 400, []),  # the summary covers every agent
        (fleet, {"view": "operational", "service": "no-such/service"}, 400, None),
    ):
        answer = _get(url, **params)
        assert answer.status_code == status, (url, params, answer.text[:300])
        assert "error" in answer.json()
        if allowed is not None:
            assert answer.json()["allowed"] == allowed


def test_fleet_over_victoria_metrics_fed_by_agent_mode_gives_each_agents_own_counts(
    rig: Rig, live_server: Callable[..., Any]
) -> None:
    base = _victoria_fleet(rig, live_server)
    fleet = _fleet_after_freeze(rig, base, rig.victoria.force_flush)
    _check_agents_match(rig, base, fleet)


def _first_failed_scrape(url: str, address: str) -> float | None:
    """The time of the first ``up == 0`` sample of ``address`` after its last ``up == 1``, as the TSDB
    at ``url`` holds it (a raw range selector: every scrape's own start time). It may lie just
    before the kill: a scrape in flight when the agent died."""
    answer = _get(f"{url}/api/v1/query", query=f'up{{instance="{address}"}}[60s]', nocache="1").json()
    samples = sorted(
        (float(at), float(value)) for series in answer["data"]["result"] for at, value in series["values"]
    )
    failed = None
    for at, value in samples:
        if value == 1:
            failed = None
        elif failed is None:
            failed = at
    return failed


def test_a_killed_agent_is_down_within_two_scrapes_and_keeps_its_counts(
    rig: Rig, live_server: Callable[..., Any]
) -> None:
    """What is counted: from the moment just before ``SIGKILL`` is sent (monotonic clock) to the
    arrival of the first fleet summary (``GET /api/fleet/v1/telemetry``, no cache: every request
    reads the TSDB) that shows the agent ``down``; one client per TSDB asks from the kill on, a new
    request 50 ms after each answer. That time holds the wait for the next scrape of the dead
    target (up to one interval: the phase is random), the TSDB's ingestion (Prometheus: none;
    agent mode's remote write, at most ``batch_send_deadline`` = 250 ms, then VictoriaMetrics'
    in-memory buffer, about 1 s, with no ``force_flush``), the fleet's queries and the polling.
    The second interval (3 s) is the budget for all but the scrape wait: on a loaded 2-core machine
    the rest measured well under 2 s. The bound asserted is exactly two scrape intervals."""
    victoria_base = _victoria_fleet(rig, live_server)
    total = sum(own["summary"]["requests"]["total"] for own in rig.own.values())
    victim = "fleet-c"
    bases = {"prometheus": rig.fleet_cli.url, "victoria-metrics": victoria_base}
    engines = {"prometheus": rig.prometheus.url, "victoria-metrics": rig.victoria.http_url}

    def until_down(base: str, killed: float) -> tuple[float, dict[str, Any]]:
        while time.monotonic() - killed < 20:
            fleet = _get(f"{base}/api/fleet/v1/telemetry").json()
            if fleet["by_agent"][victim]["state"] == "down":
                return time.monotonic() - killed, fleet
            time.sleep(0.05)
        raise AssertionError(f"{victim} never shown down over {base}: {fleet['by_agent'][victim]}")

    with ThreadPoolExecutor(len(bases)) as pool:  # each TSDB watched on its own, from the kill on
        killed_unix = time.time()
        killed = time.monotonic()
        rig.agents[victim].kill()
        watches = {tsdb: pool.submit(until_down, base, killed) for tsdb, base in bases.items()}
        seen = {tsdb: watch.result() for tsdb, watch in watches.items()}
    address = rig.agents[victim].address
    scraped = {tsdb: _first_failed_scrape(url, address) for tsdb, url in engines.items()}
    breakdown = {
        tsdb: {
            "shown_down_after_s": round(elapsed, 2),
            "first_failed_scrape_after_s": None
            if scraped[tsdb] is None
            else round(scraped[tsdb] - killed_unix, 2),
        }
        for tsdb, (elapsed, _) in seen.items()
    }
    print(f"killed agent: {breakdown}")
    for tsdb, (elapsed, fleet) in seen.items():
        assert elapsed <= 2 * SCRAPE_SECONDS, (tsdb, breakdown)
        assert fleet["agents"]["down"] == 1
        assert (fleet["agents"]["healthy"], fleet["agents"]["degraded"]) == (0, 2)
        assert fleet["requests"]["total"] == total  # its last counts stay in the totals
        entry = fleet["by_agent"][victim]
        assert entry["requests"]["total"] == rig.own[victim]["summary"]["requests"]["total"]
        assert entry["scrape_up"] is False
        assert entry["down_reason"] == "its scrape target is down (up == 0)"
    services = _get(f"{rig.fleet_cli.url}/api/fleet/v1/telemetry", view="health").json()["services"]
    victims = {name: state for name, state in services.items() if name.startswith(f"{victim}/")}
    assert len(victims) == rig.own[victim]["summary"]["services"]["total"]
    for state in victims.values():  # not the pass it last reported: unknown, saying why
        assert state["status"] == "unknown"
        assert "agent down: its scrape target is down" in state["reason"]
    health = _get(f"{rig.fleet_cli.url}/api/{victim}/v1/telemetry/health")
    assert health.status_code == 503
    assert health.json()["status"] == "fail"


def test_the_query_client_names_why_the_tsdb_gives_no_answer(
    prometheus: Prometheus, free_port: Callable[..., int]
) -> None:
    client = PrometheusClient(TsdbConfig(prometheus.url))
    with pytest.raises(TsdbError, match=r"answered 400: .*parse error"):
        client.query("sum(", time.time())
    assert client.query("vector(1)", time.time())[0].value == 1
    closed = PrometheusClient(TsdbConfig(f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(TsdbError, match=r"cannot reach the TSDB at .*Connection refused"):
        closed.query("up", time.time())
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        slow = PrometheusClient(
            TsdbConfig(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout_seconds=0.5)
        )
        with pytest.raises(TsdbError, match=r"did not answer within 0\.5 s"):
            slow.query("up", time.time())


def test_a_read_is_cached_for_the_ttl_like_a_collection(
    prometheus: Prometheus, live_server: Callable[..., Any]
) -> None:
    app = create_fleet_app(prometheus.url, cache_ttl_seconds=60)
    base = live_server(app).url
    first = _get(f"{base}/api/fleet/v1/telemetry").json()
    second = _get(f"{base}/api/fleet/v1/telemetry").json()
    assert (first["cached"], second["cached"]) == (False, True)
    assert second["timestamp"] == first["timestamp"]  # the same read: no query was sent for it
    assert app.state.fleet.source.client.queries == REQUESTS_PER_READ


def test_a_refresh_costs_the_same_queries_whatever_the_agents(
    start_victoria_metrics: Callable[..., VictoriaMetrics], telemetry: Telemetry
) -> None:
    """One agent, then five: each refresh sends the same requests, :data:`QUERIES` instant queries
    and one ``/api/v1/series`` request (agents and their expected series, from the label index)."""
    victoria = start_victoria_metrics()
    service = instrument_service("llm", category="runtime", telemetry=telemetry)
    service.record_request(0.2)
    text = encode_prometheus_text(label_agent(asyncio.run(telemetry.collect()).metrics))
    now = time.time()
    costs = {}
    for agents in (["one"], ["two", "three", "four", "five"]):
        for agent in agents:
            _import(victoria, agent, text, [now - 15, now], lambda name: True)
        client = PrometheusClient(TsdbConfig(victoria.http_url))
        data = asyncio.run(FleetSource(client).read(now + 1))
        costs[len(data.agents)] = (client.queries, client.series_requests, data.queries)
    assert costs == {
        1: (REQUESTS_PER_READ, 1, REQUESTS_PER_READ),
        5: (REQUESTS_PER_READ, 1, REQUESTS_PER_READ),
    }
    assert len(QUERIES) + 1 == REQUESTS_PER_READ
    found = PrometheusClient(TsdbConfig(victoria.http_url)).series(SERIES_MATCHES, now - 60, now + 1)
    assert {labels["agent"] for labels in found} == {"one", "two", "three", "four", "five"}


def _documented_block(name: str, language: str) -> str:
    text = (Path(__file__).parents[2] / "docs" / "deployment.md").read_text()
    return text.split(f"<!-- fleet-config: {name} -->\n```{language}\n", 1)[1].split("```", 1)[0]


def _documented(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(_documented_block(name, "yaml"))
    return loaded


#: Flags of the harness's VictoriaMetrics that a fleet does not need: the Graphite and Influx
#: listeners (other tests push there) and a quick shutdown.
_TEST_ONLY_VM_FLAGS = {"-graphiteListenAddr", "-influxListenAddr", "-http.maxGracefulShutdownDuration"}


def test_the_deployment_page_shows_the_configurations_the_tests_run(
    backend_support: ModuleType, tmp_path: Path
) -> None:
    targets = ["127.0.0.1:8001", "127.0.0.1:8002", "127.0.0.1:8003"]
    interval = f"{SCRAPE_SECONDS:g}s"
    server = backend_support.Prometheus(
        tmp_path / "p", targets, scrape_interval=interval, job="telemetry-otel"
    )
    agent = backend_support.PrometheusAgent(
        tmp_path / "a",
        targets,
        "http://127.0.0.1:8428/api/v1/write",
        scrape_interval=interval,
        job="telemetry-otel",
        batch_send_deadline=BATCH_SEND_DEADLINE,
    )
    for name, harness in (("prometheus", server), ("prometheus-agent", agent)):
        harness._write_config()
        written = json.loads(harness.config_path.read_text())
        documented = _documented(name)
        assert documented["global"].items() <= written["global"].items(), name
        assert documented["scrape_configs"][0] == written["scrape_configs"][0], name  # the one job
        assert documented.get("remote_write") == written.get("remote_write"), name
    # VictoriaMetrics: the flags the rig runs (its defaults for every query flag), as documented.
    victoria = backend_support.VictoriaMetrics(tmp_path / "vm", search_flags=())
    run = {flag.split("=", 1)[0]: flag for flag in victoria._argv()[1:]}
    command = _documented_block("victoria-metrics", "sh").split()
    assert command[0] == "victoria-metrics"
    shown = {flag.split("=", 1)[0]: flag for flag in command[1:]}
    assert set(shown) == set(run) - _TEST_ONLY_VM_FLAGS
    for flag in ("-retentionPeriod",):
        assert shown[flag] == run[flag]
    assert not any(flag.startswith("-search.") for flag in run)


def _import(
    victoria: VictoriaMetrics, agent: str, text: str, at_unix: Sequence[float], keep: Callable[[str], bool]
) -> None:
    lines = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if family.name == "target_info" or not keep(sample.name):
                continue
            labels = {**sample.labels, "agent": agent, "job": "telemetry-otel", "instance": f"{agent}:8000"}
            rendered = ",".join(f'{key}="{value}"' for key, value in labels.items())
            for at in at_unix:
                value = at if sample.name == "telemetry_collection_timestamp_seconds" else sample.value
                lines.append(f"{sample.name}{{{rendered}}} {value!r} {int(at * 1000)}")
    answer = victoria.http.post("/api/v1/import/prometheus", content="\n".join(lines) + "\n")
    assert answer.status_code == 204, answer.text
    victoria.force_flush()


def test_a_silent_agent_is_down_with_its_age_and_an_incomplete_one_says_what_is_missing(
    start_victoria_metrics: Callable[..., VictoriaMetrics], telemetry: Telemetry
) -> None:
    victoria = start_victoria_metrics()
    service = instrument_service("llm", category="runtime", telemetry=telemetry)
    service.record_request(0.2)
    service.report_health("pass")
    text = encode_prometheus_text(label_agent(asyncio.run(telemetry.collect()).metrics))
    now = time.time()
    _import(victoria, "silent", text, [now - 615, now - 600], lambda name: True)  # no `up`: pushed, say
    _import(victoria, "partial", text, [now - 15, now], lambda name: name != "telemetry_component_info")
    client = PrometheusClient(TsdbConfig(victoria.http_url))
    data = asyncio.run(FleetSource(client, FleetSettings(down_after_seconds=300)).read(now + 1))
    silent, partial = data.agents["silent"], data.agents["partial"]
    assert silent.down_reason is not None
    assert silent.down_reason.startswith("no collection for ")
    assert silent.age_seconds == pytest.approx(601, abs=2)
    assert silent.scrape_up is None  # the TSDB has no `up` for it: the age decides
    assert silent.missing == ()
    assert partial.missing == ("telemetry_component_info",)
    assert not partial.down
    models = {
        name: build_model(ViewInputs(agent.collection, None, Thresholds(), agent.collection.time_unix_nano))
        for name, agent in data.agents.items()
    }
    document = fleet_document(data, models, victoria.http_url)
    assert document["agents"] == {"total": 2, "healthy": 0, "degraded": 0, "down": 1, "unknown": 1}
    # The page reads the same typed summary as the document.
    summary = fleet_model(data, models, victoria.http_url)
    assert fleet_json(summary) == document
    page = render_fleet_html(summary, 30)
    silent_row = page.split('<tr id="agent-silent">', 1)[1].split("</tr>", 1)[0]
    assert '<td class="down">down</td>' in silent_row
    assert "no collection for " in silent_row
    partial_row = page.split('<tr id="agent-partial">', 1)[1].split("</tr>", 1)[0]
    assert "missing: telemetry_component_info" in partial_row
    assert '<strong>1</strong></div><div class="card unknown"' in page.replace("\n", "")
    assert document["by_agent"]["silent"]["requests"]["total"] == 1  # its last count stays
    assert document["by_agent"]["partial"]["missing"] == ["telemetry_component_info"]
    assert client.queries == REQUESTS_PER_READ


#: The moving agent's fixed traffic and the fleet's rate window for it (five scrapes).
MOVING_RATE = 40.0
MOVING_WINDOW_SECONDS = 15.0
#: Relative tolerance between the fleet's rate and the agent's own counts: see the test's docstring.
RATE_TOLERANCE = 0.12


def _unix(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _at(history: Sequence[tuple[float, int]], when: float) -> float:
    """The agent's own request total at ``when``, interpolated between its collections."""
    for (t0, n0), (t1, n1) in itertools.pairwise(history):
        if t0 <= when <= t1:
            return n0 if t1 == t0 else n0 + (n1 - n0) * (when - t0) / (t1 - t0)
    raise AssertionError(f"no collection of the agent around {when}: {history[0]} .. {history[-1]}")


def test_rates_while_traffic_moves_match_the_agents_own_counts(
    start_telemetry_process: Callable[..., TelemetryProcess],
    start_prometheus: Callable[..., Prometheus],
    start_prometheus_agent: Callable[..., PrometheusAgent],
    start_victoria_metrics: Callable[..., VictoriaMetrics],
    free_port: Callable[..., int],
    live_server: Callable[..., Any],
) -> None:
    """An agent whose traffic moves at a fixed 40 requests/s (``--demo-request-rate``), scraped
    every 3 s by Prometheus and by agent mode into VictoriaMetrics. The fleet's
    ``rate_per_second`` (PromQL ``rate`` over 15 s at the read's time T; its ``increase`` is that
    times 15 s) is compared with what the agent's own counts imply over the same window: its own
    request totals, read from its endpoint every 0.5 s with ``--cache-ttl 0`` (each read a fresh
    collection, stamped with its time), interpolated at T - 15 s and at T.

    Tolerance 12 % (relative), from what can differ with a rate that is truly constant:
    the demo adds requests in ticks of 0.25 s (10 requests), so a count read at any instant is up
    to one tick off the straight line: at most two ticks over the own 15 s (3.3 %), and over the
    span of the TSDB's samples inside the window (at least 15 s less one scrape interval and the
    ingestion delay, about 10.5 s: 4.8 %); a sample is stamped at the scrape's start while its
    collection is made a little later (up to about 0.1 s on a loaded machine: 2 % over 10.5 s).
    Together under 10 %; 12 % leaves room for a loaded machine. The known rate itself is checked
    on the agent's own counts (within 5 %), so the comparison is with real moving traffic.
    """
    port = free_port()
    targets = [f"127.0.0.1:{port}"]
    interval = f"{SCRAPE_SECONDS:g}s"
    victoria = start_victoria_metrics(search_flags=())
    prometheus = start_prometheus(targets, scrape_interval=interval, job="telemetry-otel")
    agent_mode = start_prometheus_agent(
        targets,
        f"{victoria.http_url}/api/v1/write",
        scrape_interval=interval,
        job="telemetry-otel",
        batch_send_deadline=BATCH_SEND_DEADLINE,
    )
    name = "fleet-moving"
    agent = start_telemetry_process(
        [
            *("serve", "--demo", "--agent", name, "--seed", "7", "--cache-ttl", "0"),
            *("--demo-request-rate", f"{MOVING_RATE:g}", "--log-level", "warning"),
        ],
        f"/api/{name}/v1/telemetry/health/live",
        port=port,
    )
    settings = FleetSettings(window_seconds=MOVING_WINDOW_SECONDS, down_after_seconds=60)
    bases = {
        tsdb: str(live_server(create_fleet_app(url, settings=settings, cache_ttl_seconds=0)).url)
        for tsdb, url in (("prometheus", prometheus.url), ("victoria-metrics", victoria.http_url))
    }
    history: list[tuple[float, int]] = []
    stop = threading.Event()

    def watch_own_counts() -> None:
        while not stop.is_set():
            summary = _get(f"{agent.url}/api/{name}/v1/telemetry").json()
            history.append((_unix(summary["timestamp"]), summary["requests"]["total"]))
            stop.wait(0.5)

    watcher = threading.Thread(target=watch_own_counts, daemon=True)
    watcher.start()
    try:
        # Until each TSDB has held the agent for the window and two more scrapes.
        deadline = time.monotonic() + 60
        first: dict[str, float] = {}
        while len(first) < len(bases) or time.time() < max(first.values()) + MOVING_WINDOW_SECONDS + 6:
            assert time.monotonic() < deadline, f"the TSDBs never held the moving agent: {first}"
            for tsdb, base in bases.items():
                if tsdb not in first:
                    answer = _get(f"{base}/api/fleet/v1/telemetry")
                    if answer.status_code == 200 and name in answer.json()["by_agent"]:
                        first[tsdb] = time.time()
            time.sleep(0.5)
        compared = {}
        for tsdb, base in bases.items():
            fleet = _get(f"{base}/api/fleet/v1/telemetry").json()
            copy = _get(f"{base}/api/{name}/v1/telemetry").json()
            at = _unix(fleet["timestamp"])
            time.sleep(0.8)  # the agent's own counts past T
            own = (_at(history, at) - _at(history, at - MOVING_WINDOW_SECONDS)) / MOVING_WINDOW_SECONDS
            rate = fleet["by_agent"][name]["requests"]["rate_per_second"]
            compared[tsdb] = {
                "fleet": round(rate, 3),
                "agent_view_over_tsdb": round(copy["requests"]["rate_per_second"], 3),
                "own_counts": round(own, 3),
            }
            assert own == pytest.approx(MOVING_RATE, rel=0.05), compared
            assert rate == pytest.approx(own, rel=RATE_TOLERANCE), (tsdb, compared)
            assert fleet["requests"]["rate_per_second"] == pytest.approx(rate, rel=1e-9)
            assert copy["fleet"]["window_seconds"] == MOVING_WINDOW_SECONDS
        print(f"rates while traffic moves (requests/s): {compared}")
    finally:
        stop.set()
        watcher.join(timeout=10)
        for server in (agent, agent_mode, prometheus, victoria):
            server.stop()
