"""The shipped Grafana dashboards have the structure Grafana imports, and query names the package emits.

Checked per dashboard: the top-level keys of Grafana's dashboard model (integer ``schemaVersion``,
``title``, ``uid``, ``panels``, ``templating``...), every panel's ``type``, ``title``, ``gridPos`` (on
the 24-column grid, no overlap), Prometheus data source through the ``${datasource}`` variable, and
``targets`` each with an ``expr`` and a unique ``refId``; the template variables (a ``datasource``
variable of type ``datasource`` for Prometheus, ``label_values(...)`` query variables, every ``$var``
used is defined). Every metric name a panel queries is one the demo really serves, in ``/metrics``
or in a view's Prometheus output (the real Prometheus round trip is tests/backends/test_grafana_queries.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from telemetry_otel import Telemetry
from telemetry_otel.instrumentation.demo import DemoRuntime
from telemetry_otel.views import create_app, prometheus_rules
from telemetry_otel.views._dashboards import dashboard_paths, load_dashboard

REPO_DASHBOARDS = Path(__file__).resolve().parents[2] / "views" / "dashboards"
NAMES = ("buses", "collector", "llm", "overview", "service", "slo")
#: The SLO file the SLO dashboard is tested with (the rules it reads come from it).
SLO_FILE = Path(__file__).resolve().parents[1] / "rules" / "slos.yaml"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
PANEL_TYPES = {"stat", "gauge", "timeseries", "bargauge", "piechart", "table"}
GRAFANA_VARIABLES = {"__rate_interval", "__interval", "__range"}
#: Series Prometheus itself adds per scraped target.
PROMETHEUS_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
PROMQL_WORDS = {
    "sum",
    "max",
    "min",
    "count",
    "topk",
    "rate",
    "histogram_quantile",
    "count_over_time",
    "vector",
    "by",
    "or",
    "and",
    "le",
    "on",
    "group_left",
}
_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")
_LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>[a-zA-Z_][a-zA-Z0-9_]*)\)$")


def _dashboards() -> list[tuple[str, dict[str, Any]]]:
    return [(name, load_dashboard(name)) for name in dashboard_paths()]


def _targets(dashboard: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            yield panel, target


def test_the_package_ships_the_repository_dashboards_unchanged() -> None:
    paths = dashboard_paths()
    assert tuple(paths) == NAMES
    assert sorted(path.stem for path in REPO_DASHBOARDS.glob("*.json")) == list(NAMES)
    for name, path in paths.items():
        assert path.read_text(encoding="utf-8") == (REPO_DASHBOARDS / f"{name}.json").read_text(
            encoding="utf-8"
        )
    with pytest.raises(ValueError, match="unknown dashboard 'nope'; dashboards: buses, collector, llm"):
        load_dashboard("nope")


@pytest.mark.parametrize("name", NAMES)
def test_dashboard_has_the_structure_grafana_imports(name: str) -> None:
    dashboard = load_dashboard(name)
    assert json.loads(json.dumps(dashboard, allow_nan=False)) == dashboard  # plain JSON, no NaN
    assert isinstance(dashboard["schemaVersion"], int)
    assert not isinstance(dashboard["schemaVersion"], bool)
    assert dashboard["schemaVersion"] >= 36  # data source references as {type, uid} objects
    assert isinstance(dashboard["title"], str)
    assert dashboard["title"].startswith("telemetry-otel / ")
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", dashboard["uid"]), dashboard["uid"]
    assert dashboard["id"] is None  # Grafana assigns the id on import
    assert "__inputs" not in dashboard  # the data source is the ${datasource} variable, not an input
    assert "telemetry-otel" in dashboard["tags"]
    assert set(dashboard["time"]) == {"from", "to"}
    assert isinstance(dashboard["panels"], list)
    assert dashboard["panels"]

    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(set(ids)) == len(ids)
    assert all(isinstance(panel_id, int) for panel_id in ids)
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        assert panel["type"] in PANEL_TYPES, panel["type"]
        assert isinstance(panel["title"], str)
        assert panel["title"]
        assert panel["datasource"] == DATASOURCE, panel["title"]
        grid = panel["gridPos"]
        assert set(grid) == {"h", "w", "x", "y"}, panel["title"]
        assert all(isinstance(grid[key], int) and grid[key] >= 0 for key in grid), panel["title"]
        assert grid["w"] >= 1
        assert grid["h"] >= 1
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]
        assert isinstance(panel["fieldConfig"]["defaults"], dict)
        assert isinstance(panel["options"], dict)
        targets = panel["targets"]
        assert targets, panel["title"]
        ref_ids = [target["refId"] for target in targets]
        assert len(set(ref_ids)) == len(ref_ids), panel["title"]
        for target in targets:
            assert re.fullmatch(r"[A-Z]", target["refId"])
            assert isinstance(target["expr"], str)
            assert target["expr"].strip()
            assert target["datasource"] == DATASOURCE
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]
            assert target["expr"].count("{") == target["expr"].count("}"), target["expr"]
            assert 'instance=~"$instance"' in target["expr"], target["expr"]


@pytest.mark.parametrize("name", NAMES)
def test_templating_has_a_prometheus_datasource_variable_and_label_values_queries(name: str) -> None:
    dashboard = load_dashboard(name)
    variables = dashboard["templating"]["list"]
    by_name = {variable["name"]: variable for variable in variables}
    assert len(by_name) == len(variables)
    source = variables[0]
    assert (source["name"], source["type"], source["query"]) == ("datasource", "datasource", "prometheus")
    defined = {"datasource"}
    for variable in variables[1:]:
        assert variable["type"] == "query", variable["name"]
        assert variable["datasource"] == DATASOURCE
        match = _LABEL_VALUES.match(variable["definition"])
        assert match, variable["definition"]
        assert variable["query"] == variable["definition"]  # the string form every Grafana reads
        assert isinstance(variable["refresh"], int)
        assert variable["refresh"] in (1, 2)  # on load / on time range change
        used = set(_VARIABLE.findall(match["selector"]))
        assert used <= defined, f"${variable['name']} uses {used - defined} before it is defined"
        if variable.get("includeAll"):
            assert variable["allValue"] == ".+"
        defined.add(variable["name"])
    assert "instance" in by_name
    for panel, target in _targets(dashboard):
        used = set(_VARIABLE.findall(target["expr"])) - GRAFANA_VARIABLES
        assert used <= defined, f"{panel['title']}: undefined {used - defined}"


def test_the_service_drill_down_has_category_and_service_variables() -> None:
    variables = {variable["name"]: variable for variable in load_dashboard("service")["templating"]["list"]}
    category, service = variables["category"], variables["service"]
    assert category["definition"].startswith("label_values(service_requests_total{")
    assert category["definition"].endswith(", service_category)")
    assert service["definition"].startswith("label_values(service_requests_total{")
    assert 'service_category=~"$category"' in service["definition"]
    assert service["definition"].endswith(", service_name)")
    assert service["multi"]
    assert service["includeAll"]
    for panel, target in _targets(load_dashboard("service")):
        assert 'service_name=~"$service"' in target["expr"], panel["title"]
    bus = {variable["name"]: variable for variable in load_dashboard("buses")["templating"]["list"]}["bus"]
    assert bus["definition"] == 'label_values(bus_requests_total{instance=~"$instance"}, bus_name)'


def test_the_dashboards_have_the_panels_the_issue_asks_for() -> None:
    titles = {name: {panel["title"] for panel in dashboard["panels"]} for name, dashboard in _dashboards()}
    assert {
        "Status",
        "Health score",
        "Services by status",
        "Request rate",
        "Error ratio",
        "Latency p50 / p95 / p99",
    } <= titles["overview"]
    assert {"Status", "Request rate", "Error ratio", "Latency p50 / p95 / p99"} <= titles["service"]
    assert {"Providers healthy", "Throughput", "Failure ratio"} <= titles["buses"]
    assert {"Tokens in", "Tokens out", "Cost", "Token rate", "Cost rate"} <= titles["llm"]
    assert {"Collection rate", "Collection duration", "Snapshots failing"} <= titles["collector"]
    assert {
        "Error budget remaining",
        "Burn rate, page windows",
        "Burn rate, ticket windows",
        "Firing alerts",
    } <= (titles["slo"])
    exprs = {name: " ".join(t["expr"] for _, t in _targets(dashboard)) for name, dashboard in _dashboards()}
    assert "telemetry_health_score" in exprs["overview"]
    assert 'telemetry_status{instance=~"$instance", status="fail"}' in exprs["overview"]
    assert (
        "histogram_quantile(0.99, sum by (le) (rate(service_request_duration_seconds_bucket"
        in exprs["overview"]
    )


@pytest.fixture
def served_names(telemetry: Telemetry) -> set[str]:
    """Every sample name the demo serves: ``/metrics`` and each view's Prometheus output."""
    demo = DemoRuntime(telemetry, seed=3)
    try:
        demo.step()
        with TestClient(create_app(telemetry, agent="demo", cache_ttl_seconds=0)) as client:
            bodies = [client.get("/metrics").text]
            for view in ("summary", "health", "operational", "performance", "reliability"):
                response = client.get("/api/demo/v1/telemetry", params={"view": view, "format": "prometheus"})
                assert response.status_code == 200
                bodies.append(response.text)
    finally:
        demo.close()
    served = {
        sample.name
        for body in bodies
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }
    # What Prometheus makes of the rules `telemetry-otel rules --slo` generates: their records, ALERTS.
    rules = yaml.safe_load(prometheus_rules(slo_file=SLO_FILE))
    return (
        served
        | {"ALERTS"}
        | {rule["record"] for g in rules["groups"] for rule in g["rules"] if "record" in rule}
    )


def test_every_metric_a_panel_queries_is_one_the_package_serves(served_names: set[str]) -> None:
    unknown: set[str] = set()
    for name, dashboard in _dashboards():
        texts = [target["expr"] for _, target in _targets(dashboard)]
        texts += [variable["definition"] for variable in dashboard["templating"]["list"][1:]]
        for text in texts:
            without_strings = re.sub(r'"[^"]*"', '""', text)
            without_labels = re.sub(r"\{[^}]*\}|\[[^\]]*\]|by \([^)]*\)", "", without_strings)
            for word in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_labels):
                if word in PROMQL_WORDS or word in {"label_values", "instance", "service_category"}:
                    continue
                if word in {"service_name", "bus_name", "slo"} or word in PROMETHEUS_SERIES:
                    continue
                if word not in served_names:
                    unknown.add(f"{name}: {word}")
    assert not unknown, sorted(unknown)
