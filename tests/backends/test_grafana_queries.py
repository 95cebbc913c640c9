"""Every panel query of every shipped Grafana dashboard answers, through a real Prometheus.

A real Prometheus on 127.0.0.1 is given the scrape configuration of docs/grafana.md (the target
replaced by the demo app served with uvicorn, the interval set to 1 s) and scrapes the demo while it
runs. Then each dashboard's template variables are resolved the way Grafana does it (``label_values``
through the label values API) and every panel expression is run through ``/api/v1/query``: an
error, an empty result or a result with no finite value fails the test.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import uvicorn
from starlette.applications import Starlette

from telemetry_otel import Telemetry, TelemetryConfig
from telemetry_otel.instrumentation.demo import DemoRuntime
from telemetry_otel.views import create_app, prometheus_rules
from telemetry_otel.views._dashboards import dashboard_paths, load_dashboard

if TYPE_CHECKING:
    from _support import Prometheus, Promtool

pytestmark = pytest.mark.backend

DOCS = Path(__file__).resolve().parents[2] / "docs" / "grafana.md"
SLO_FILE = Path(__file__).resolve().parents[1] / "rules" / "slos.yaml"
DOCUMENTED_TARGET = "localhost:8000"
DOCUMENTED_INTERVAL = "scrape_interval: 15s"
JOBS = ("telemetry-otel", "telemetry-otel-summary", "telemetry-otel-health")
#: Grafana's ``$__rate_interval`` is at least four scrape intervals; 10 s holds ~10 scrapes here.
RATE_INTERVAL = "10s"
#: The value picked for each drill-down variable when Prometheus offers it (else the first offered).
PREFERRED = {"category": "runtime", "service": "llm", "bus": "memory"}
_LABEL_VALUES = re.compile(
    r"^\s*label_values\((?P<selector>.*),\s*(?P<label>[a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$"
)


def _wait(fetch: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = fetch()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        time.sleep(0.1)


@contextlib.contextmanager
def _serving(app: Starlette, port: int) -> Iterator[None]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn-grafana-queries", daemon=True)
    thread.start()
    try:
        _wait(lambda: server.started or not thread.is_alive(), 10.0, "uvicorn to start")
        assert server.started, "uvicorn exited before it started"
        yield
    finally:
        server.should_exit = True
        thread.join(10.0)
        assert not thread.is_alive(), "uvicorn did not stop"


def documented_scrape_config() -> str:
    """The ``prometheus.yml`` block of docs/grafana.md, exactly as documented."""
    blocks = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.S)
    [config] = [block for block in blocks if "scrape_configs:" in block]
    return str(config)


def _api(prometheus: Prometheus, path: str, params: dict[str, str]) -> Any:
    response = prometheus.http.get(path, params=params)
    body = response.json()
    assert response.status_code == 200, (path, params, body)
    assert body.get("status") == "success", (path, params, body)
    return body["data"]


def _substitute(text: str, values: dict[str, str]) -> str:
    text = text.replace("$__rate_interval", RATE_INTERVAL)
    for name in sorted(values, key=len, reverse=True):  # $service before a hypothetical $serv
        text = text.replace("${" + name + "}", values[name]).replace("$" + name, values[name])
    return text


def _resolve_variables(
    prometheus: Prometheus, dashboard: dict[str, Any], instance: str, *, everything: bool
) -> dict[str, str]:
    """Each query variable's value, from its ``label_values(...)`` asked of Prometheus like Grafana.

    ``everything``: a variable with *All* takes its ``allValue`` (Grafana's default selection);
    otherwise one offered value (the ``PREFERRED`` one when offered).
    """
    values: dict[str, str] = {}
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        match = _LABEL_VALUES.match(variable["definition"])
        assert match, f"{dashboard['uid']}: ${variable['name']} is not a label_values(...) query"
        selector = _substitute(match["selector"], values)
        offered = _api(prometheus, f"/api/v1/label/{match['label']}/values", {"match[]": selector})
        assert offered, f"{dashboard['uid']}: ${variable['name']} = {variable['definition']} offers nothing"
        if variable["name"] == "instance":
            assert instance in offered, offered
            values["instance"] = instance
        elif everything and variable.get("includeAll"):
            values[variable["name"]] = variable["allValue"]
        else:
            preferred = PREFERRED.get(variable["name"])
            values[variable["name"]] = preferred if preferred in offered else offered[0]
    return values


def _problem(prometheus: Prometheus, expr: str) -> str | None:
    response = prometheus.http.get("/api/v1/query", params={"query": expr})
    body = response.json()
    if response.status_code != 200 or body.get("status") != "success":
        return f"error {response.status_code}: {body.get('error')}"
    data = body["data"]
    samples = data["result"] if data["resultType"] == "vector" else [{"value": data["result"]}]
    if not samples:
        return "no data"
    if not any(math.isfinite(float(sample["value"][1])) for sample in samples):
        return f"no finite value: {samples[:3]}"
    return None


def test_every_panel_query_of_every_dashboard_returns_data(
    start_prometheus: Callable[..., Prometheus],
    free_port: Callable[..., int],
    promtool: Promtool,
    tmp_path: Path,
) -> None:
    config = documented_scrape_config()
    assert config.count(DOCUMENTED_TARGET) == len(JOBS)
    assert DOCUMENTED_INTERVAL in config
    for job in JOBS:
        assert f"job_name: {job}\n" in config

    telemetry = Telemetry(TelemetryConfig(service_name="grafana-queries"))
    demo = DemoRuntime(telemetry, seed=11, tick_seconds=0.1)
    try:
        port = free_port()
        target = f"127.0.0.1:{port}"
        app = create_app(telemetry, agent="demo", cache_ttl_seconds=0.5, background=[demo.run])
        with _serving(app, port):
            prometheus = start_prometheus([])
            tested = config.replace(DOCUMENTED_TARGET, target).replace(
                DOCUMENTED_INTERVAL, "scrape_interval: 1s"
            )
            # The SLO dashboard reads the rules `telemetry-otel rules --slo` writes (windows 60 times
            # shorter, so that 5 m is 5 s): load them beside the documented scrape configuration.
            rules_file = tmp_path / "rules.yml"
            rules_file.write_text(prometheus_rules(slo_file=SLO_FILE, slo_window_scale=1 / 60))
            tested += f"rule_files:\n  - {rules_file}\n"
            tested = tested.replace(
                "scrape_interval: 1s", "scrape_interval: 1s\n  evaluation_interval: 1s", 1
            )
            config_file = tmp_path / "prometheus.yml"
            config_file.write_text(tested)
            checked = subprocess.run(
                [promtool.executable, "check", "config", str(config_file)],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            assert checked.returncode == 0, checked.stdout + checked.stderr
            prometheus.config_path.write_text(tested)
            reload = prometheus.http.post("/-/reload")
            assert reload.status_code == 200, reload.text

            def scraped_jobs() -> bool:
                active = [
                    t
                    for t in prometheus.targets()
                    if t["labels"].get("instance") == target and t["health"] == "up"
                ]
                return {t["labels"]["job"] for t in active} == set(JOBS)

            _wait(scraped_jobs, 20.0, f"the jobs {JOBS} to scrape {target}")
            # A few scrapes of every job, so that a rate over RATE_INTERVAL has at least two samples.
            for job in JOBS:
                enough = f'count_over_time(up{{job="{job}", instance="{target}"}}[{RATE_INTERVAL}]) >= 3'
                _wait(lambda query=enough: prometheus.query(query), 20.0, enough)

            _wait(
                lambda: prometheus.query(f'slo:telemetry_otel_error_budget:remaining{{instance="{target}"}}'),
                20.0,
                "the SLO rules' first evaluation",
            )
            problems: list[str] = []
            queries = 0
            assert set(dashboard_paths()) == {"overview", "service", "buses", "llm", "collector", "slo"}
            for name, everything in itertools.product(dashboard_paths(), (True, False)):
                dashboard = load_dashboard(name)
                values = _resolve_variables(prometheus, dashboard, target, everything=everything)
                for panel in dashboard["panels"]:
                    for panel_target in panel["targets"]:
                        expr = _substitute(panel_target["expr"], values)
                        assert "$" not in expr, f"{name}/{panel['title']}: unresolved variable in {expr}"
                        queries += 1
                        problem = _problem(prometheus, expr)
                        if problem is not None:
                            problems.append(
                                f"{name} / {panel['title']} / {panel_target['refId']}: {problem}: {expr}"
                            )
            assert not problems, "\n".join(problems)
            assert queries >= 80
    finally:
        demo.close()
        telemetry.shutdown()
