"""Many workers, one host picture, under real servers: gunicorn (Uvicorn workers, with and without
``--preload``) and ``uvicorn --workers 4``, each with 4 worker processes on loopback.

A deterministic workload over real HTTP, then exact host totals from every worker (``/metrics`` and
the views); a worker killed with SIGKILL after one report interval, replaced, more traffic, exact
totals again; a real Prometheus scraping the host all along sees no counter reset, and its last
sample is what was sent.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families


def _servers() -> Any:
    module = sys.modules.get("telemetry_otel_tests_host_servers")
    if module is None:
        spec = importlib.util.spec_from_file_location(
            "telemetry_otel_tests_host_servers", Path(__file__).with_name("_servers.py")
        )
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["telemetry_otel_tests_host_servers"] = module
        spec.loader.exec_module(module)
    return module


_s = _servers()
REPORT_INTERVAL_MILLIS: int = _s.REPORT_INTERVAL_MILLIS
WorkerServer = Any
get = _s.get
wait_for = _s.wait_for

pytestmark = pytest.mark.backend

AGENT = "host"
VIEWS = ("summary", "health", "operational", "performance", "reliability", "detailed")
SERVER_KINDS = ("gunicorn", "gunicorn-preload", "uvicorn")


def _drive(server: WorkerServer, requests: int, *, every_error: int = 10) -> set[int]:
    """``requests`` requests of service ``work``, every ``every_error``-th an error; the pids that served."""
    pids = set()
    for number in range(1, requests + 1):
        query = "?error=1" if number % every_error == 0 else ""
        status, body = get(f"{server.url}/work{query}")
        assert status == 200
        pids.add(int(body))
    return pids


def _requests_total(server: WorkerServer) -> tuple[float, float]:
    """(requests, errors) of service ``work`` in one scrape of ``/metrics`` (parsed by prometheus_client)."""
    status, body = get(f"{server.url}/metrics")
    assert status == 200, body
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.labels.get("service_name") == "work" and sample.name in (
                "service_requests_total",
                "service_errors_total",
            ):
                assert sample.name not in values, f"{sample.name} twice in one scrape: not one host series"
                values[sample.name] = sample.value
    return values.get("service_requests_total", 0.0), values.get("service_errors_total", 0.0)


def _assert_host_totals(server: WorkerServer, requests: int, errors: int) -> None:
    wait_for(lambda: _requests_total(server), lambda v: v == (requests, errors), 15, f"{requests} requests")
    # Whichever worker takes the scrape, the host totals are exact.
    for _ in range(12):
        assert _requests_total(server) == (requests, errors)
    status, body = get(f"{server.url}/api/{AGENT}/v1/telemetry?view=summary&format=json")
    summary = json.loads(body)
    assert status == 200
    assert (summary["requests"]["total"], summary["requests"]["errors"]) == (requests, errors)
    for view in VIEWS:
        for format in ("json", "prometheus", "openmetrics"):
            status, body = get(f"{server.url}/api/{AGENT}/v1/telemetry?view={view}&format={format}")
            assert status == 200, (view, format, body[:300])
    status, body = get(f"{server.url}/api/{AGENT}/v1/telemetry/health")
    assert status == 200, body
    detailed = json.loads(get(f"{server.url}/api/{AGENT}/v1/telemetry?view=detailed&format=json")[1])
    assert detailed["host"]["workers"], "the detailed view lists the host's workers"


def _prometheus_value(prometheus: Any, promql: str) -> list[float]:
    return [float(item["value"][1]) for item in prometheus.query(promql)]


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_a_multi_worker_host_counts_exactly_through_a_sigkill(
    kind: str, start_server: Callable[..., WorkerServer], host_prometheus: Any
) -> None:
    server = start_server(kind)
    job = f"host-{kind}-{os.getpid()}-{time.monotonic_ns()}"
    target = f"127.0.0.1:{server.port}"
    host_prometheus.scrape(target, job)
    host_prometheus.wait_for_scrape(target, timeout=20)

    served_by = _drive(server, 400)
    assert len(served_by) > 1, "the workload reached one worker only: not a multi-worker test"
    _assert_host_totals(server, 400, 40)
    detailed = json.loads(get(f"{server.url}/api/{AGENT}/v1/telemetry?view=detailed&format=json")[1])
    per_worker = [worker["counters"].get("service.requests", 0) for worker in detailed["host"]["workers"]]
    assert sum(per_worker) == 400  # the per-worker breakdown adds up to the host total
    assert sum(1 for count in per_worker if count) == len(served_by)

    # One report interval after the last request, every count is reported: SIGKILL loses none.
    time.sleep(2 * REPORT_INTERVAL_MILLIS / 1000)
    before = server.host_document()
    victim = next(pid for pid in sorted(server.worker_pids()) if pid != server.process.pid)
    os.kill(victim, signal.SIGKILL)
    expected = len(before["workers"])
    wait_for(
        server.host_document,
        lambda d: (
            d["retired_workers"] >= before["retired_workers"] + 1
            and len(d["workers"]) == expected
            and victim not in {w["pid"] for w in d["workers"]}
        ),
        30,
        f"worker {victim} retired and replaced",
    )
    _assert_host_totals(server, 400, 40)

    _drive(server, 100)
    _assert_host_totals(server, 500, 50)

    # Prometheus scraped all along: its last sample is what was sent, and no counter ever reset.
    selector = f'service_requests_total{{job="{job}",service_name="work"}}'
    wait_for(lambda: _prometheus_value(host_prometheus, selector), lambda v: v == [500.0], 20, "sample 500")
    listed = host_prometheus.query(f'{{job="{job}",__name__=~".+_total"}}')
    counters = {item["metric"]["__name__"] for item in listed}
    assert "service_requests_total" in counters
    for name in sorted(counters):
        resets = _prometheus_value(host_prometheus, f'resets({name}{{job="{job}"}}[10m])')
        assert resets, name
        assert set(resets) == {0.0}, f"{name} went backwards {max(resets):g} times"
    host_prometheus.drop_target(target)
