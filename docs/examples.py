"""Regenerate the examples in ``docs/`` from the demo: ``python docs/examples.py [--check]``.

Every block of a document between ``<!-- generated: NAME -->`` and ``<!-- /generated -->`` is the
output of ``EXAMPLES[NAME]()`` below, run against the installed package: the JSON views of the demo
runtime (``DemoRuntime(seed=4)``), the answers of the real endpoint, the bus series of a real run.
``tests/test_docs_examples.py`` runs this and fails on any difference, so an example cannot drift
from the code; ``--check`` does the same from the command line (exit 1 and a diff).

The demo is seeded and simulates its ticks instantly, so its numbers are the same on every run. What
is not seeded is fixed here, the same way every time, and the docs say so:

* time: the current collection is stamped ``2026-01-01T00:00:00Z``, the previous one 5 s earlier
  (the simulated time between them), and views are rendered at ``now`` = collection + 0.5 s;
  snapshot durations are 1 ms, a collection's duration 5 ms, and every uptime is the simulated
  time since the runtime started (``0.25 s`` per tick);
* the process's real readings of ``resource_monitor`` (CPU, memory, threads) are replaced by fixed
  values, and ``HOST`` (``Thresholds(cpu_count=4, memory_limit_bytes=8 GiB)``) stands for the host;
* ``service.instance.id`` is ``00000000-0000-4000-8000-000000000000``.

Maps of services and buses are trimmed to the entries a section talks about, the rest counted as
``"…": "N more"``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import difflib
import json
import logging
import re
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource
from starlette.testclient import TestClient

from telemetry_otel import DEFAULT_CACHE_TTL_SECONDS, Collection, Snapshot, Telemetry, TelemetryConfig
from telemetry_otel._config import DEFAULT_COLLECTION_TIMEOUT_MILLIS, DEFAULT_SERVICE_TIMEOUT_MILLIS
from telemetry_otel.formats import encode_prometheus_text
from telemetry_otel.instrumentation import Bus, gauge, instrument_service
from telemetry_otel.instrumentation.demo import DemoRuntime
from telemetry_otel.views import Thresholds, ViewInputs, create_app, prometheus_rules, render_view
from telemetry_otel.views._render import DERIVED_SCOPE

DOCS = Path(__file__).resolve().parent
#: The thresholds standing for the host (its CPUs and memory are not the same on every machine).
HOST = Thresholds(cpu_count=4, memory_limit_bytes=8 * 2**30)
GENERATED = re.compile(r"(<!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /generated -->)", re.S)
REGENERATE = "python docs/examples.py"

#: The fixed time of the current collection: 2026-01-01T00:00:00Z.
NOW_NS = 1_767_225_600 * 10**9
TICK_SECONDS = 0.25
INSTANCE_ID = "00000000-0000-4000-8000-000000000000"
#: What this process's resource_monitor readings are replaced by (they are real measurements).
FIXED_READINGS: Mapping[str, float | int] = {
    "process.cpu.utilization": 0.3,
    "process.memory.usage": 50_331_648,
    "process.memory.virtual": 419_430_400,
    "process.threads": 6,
    "system.memory.utilization": 0.32,
    "telemetry.collection.duration": 0.005,
    "telemetry.collection.snapshot.age": 0.0,
}
WIDTH = 100
_ELLIPSIS = "…"
_MINUS, _TIMES = "\u2212", "\u00d7"


# -- the runs ------------------------------------------------------------------------------------


@contextmanager
def _runtime(name: str) -> Iterator[Telemetry]:
    telemetry = Telemetry(
        TelemetryConfig(
            service_name=name,
            resource_attributes={"service.instance.id": INSTANCE_ID},
            live_min_interval_millis=0,
        )
    )
    try:
        yield telemetry
    finally:
        telemetry.shutdown()


def _fixed(collection: Collection, time_unix_nano: int, uptime_seconds: float) -> Collection:
    """``collection`` with every reading that is not seeded replaced by the fixed values above."""
    outcomes = {
        name: dataclasses.replace(
            outcome,
            duration_seconds=0.001 if outcome.outcome != "none" else 0.0,
            last_success_unix_nano=None if outcome.last_success_unix_nano is None else time_unix_nano,
        )
        for name, outcome in collection.outcomes.items()
    }
    components = tuple(
        dataclasses.replace(
            record,
            health=None
            if record.health is None
            else dataclasses.replace(record.health, time_unix_nano=time_unix_nano),
            started_unix_nano=time_unix_nano - round(uptime_seconds * 1e9),
        )
        for record in collection.components
    )
    return Collection(
        metrics=_fixed_metrics(collection.metrics, time_unix_nano, uptime_seconds),
        outcomes=outcomes,
        time_unix_nano=time_unix_nano,
        duration_seconds=0.005,
        sdk_disabled=collection.sdk_disabled,
        components=components,
        buses=collection.buses,
        start_unix_nano=time_unix_nano - 5_000_000,
    )


def _fixed_metrics(data: MetricsData, time_unix_nano: int, uptime_seconds: float) -> MetricsData:
    def point(metric: Metric, original: Any) -> Any:
        value: float | int | None = FIXED_READINGS.get(metric.name)
        if metric.name == "service.uptime":
            value = uptime_seconds
        changes: dict[str, Any] = {"time_unix_nano": time_unix_nano}
        if value is not None and isinstance(original, NumberDataPoint):
            changes["value"] = value
        return dataclasses.replace(original, **changes)

    def metric(original: Metric) -> Metric:
        data: Any = original.data  # Sum, Gauge or Histogram: each has data_points
        points = [point(original, item) for item in data.data_points]
        return dataclasses.replace(original, data=dataclasses.replace(data, data_points=points))

    return MetricsData(
        [
            ResourceMetrics(
                resource_metrics.resource,
                [
                    ScopeMetrics(scope.scope, [metric(item) for item in scope.metrics], scope.schema_url)
                    for scope in resource_metrics.scope_metrics
                ],
                resource_metrics.schema_url,
            )
            for resource_metrics in data.resource_metrics
        ]
    )


@dataclasses.dataclass(frozen=True)
class _DemoRun:
    previous: Collection
    current: Collection
    telemetry: Telemetry

    def inputs(self, category: str | None = None, service: str | None = None) -> ViewInputs:
        return ViewInputs(
            collection=self.current,
            previous=self.previous,
            thresholds=HOST,
            now_unix_nano=NOW_NS + 500_000_000,
            category=category,
            service=service,
        )

    def view(self, name: str, **filters: str) -> dict[str, Any]:
        return render_view(name, self.inputs(**filters)).document


@contextmanager
def _demo() -> Iterator[_DemoRun]:
    """The demo after 180 ticks (the previous collection) and 20 more (the current one)."""
    with _runtime("demo") as telemetry:
        demo = DemoRuntime(telemetry, seed=4)  # registers everything and runs a start-up tick
        try:
            for _ in range(180):
                demo.step()
            previous = asyncio.run(telemetry.collect())
            for _ in range(20):
                demo.step()
            current = asyncio.run(telemetry.collect())
            yield _DemoRun(
                previous=_fixed(previous, NOW_NS - 5 * 10**9, 181 * TICK_SECONDS),
                current=_fixed(current, NOW_NS, 201 * TICK_SECONDS),
                telemetry=telemetry,
            )
        finally:
            demo.close()


@contextmanager
def _silenced(logger: logging.Logger) -> Iterator[None]:
    """The failing example fails on purpose: its warning is not news here."""
    disabled, logger.disabled = logger.disabled, True
    try:
        yield
    finally:
        logger.disabled = disabled


# -- formatting ----------------------------------------------------------------------------------


def dump(value: Any, indent: int = 0, prefix: str = "") -> str:
    """JSON with two-space indents, a container on one line when it fits in ``WIDTH`` columns."""
    one_line = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    if not isinstance(value, dict | list) or not value or indent + len(prefix) + len(one_line) < WIDTH:
        return one_line
    pad = " " * (indent + 2)
    if isinstance(value, dict):
        items = [
            f"{pad}{json.dumps(key, ensure_ascii=False)}: "
            + dump(item, indent + 2, json.dumps(key, ensure_ascii=False) + ": ")
            for key, item in value.items()
        ]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    items = [pad + dump(item, indent + 2) for item in value]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"


def _paragraph(text: str) -> str:
    """``text`` wrapped at ``WIDTH`` columns, never inside a word."""
    return textwrap.fill(text, WIDTH, break_long_words=False, break_on_hyphens=False) + "\n"


def _json_block(value: Any) -> str:
    return "```json\n" + dump(value) + "\n```\n"


def _trim(mapping: Mapping[str, Any], keep: Sequence[str]) -> dict[str, Any]:
    """The entries ``keep`` of ``mapping``, in that order, and how many others there are."""
    kept: dict[str, Any] = {name: mapping[name] for name in keep}
    if len(mapping) > len(kept):
        kept[_ELLIPSIS] = f"{len(mapping) - len(kept)} more"
    return kept


def _pick(document: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    return {key: document[key] for key in keys}


# -- docs/views.md -------------------------------------------------------------------------------


def _summary(run: _DemoRun) -> str:
    return _json_block(run.view("summary"))


def _score_paragraph(document: Mapping[str, Any], thresholds: Thresholds, opening: str) -> str:
    """The score of ``document`` (a summary) worked out in words, from its own inputs."""
    inputs = document["health_score"]["inputs"]
    present = {name: item for name, item in inputs.items() if item["score"] is not None}
    steps: list[str] = []
    for name, item in present.items():
        value, score = item["value"], item["score"]
        if name == "availability":
            steps.append(f"availability {value:g} → {score:g}")
        elif name == "error_ratio":
            warn = thresholds.error_ratio_warn
            steps.append(f"error ratio {value:.6f} → `1 {_MINUS} {value:.6f} / {warn:.2f} = {score:.5f}`")
        elif name == "latency":
            objective = thresholds.latency_objective_seconds
            if value <= objective:
                steps.append(f"p95 {value:.3g} s ≤ {objective:g} s → 1")
            else:
                steps.append(
                    f"p95 {value:.3g} s > {objective:g} s → `{objective:g} / {value:.3g} = {score:.5f}`"
                )
        elif name == "resource_pressure":
            warn = min(thresholds.cpu_warn, thresholds.memory_warn)
            below = f"< {warn:g}" if score == 1 else "is above its warn threshold"
            steps.append(f"resource pressure {value:.3g} {below} → {score:.5g}")
        else:
            steps.append(f"breakers open: {value:.0%} of the services reporting one → {score:g}")
    weights = sum(item["weight"] for item in present.values())
    terms = " + ".join(f"{item['weight']}·{item['score']:.5g}" for item in present.values())
    total = 100 * sum(item["weight"] * item["score"] for item in present.values()) / weights
    missing = document["health_score"]["missing_inputs"]
    missing_text = f" `missing_inputs` is `{json.dumps(missing)}`." if missing else ""
    worked = "; ".join(steps)
    score = f"`100 {_TIMES} ({terms}) / {weights} = {total:.2f}` → **{document['health_score']['score']:g}**"
    text = f"{opening}{missing_text} {worked[:1].upper()}{worked[1:]}. Score = {score}."
    return _paragraph(text)


def _score_example(run: _DemoRun) -> str:
    thresholds = HOST
    full = _score_paragraph(
        run.view("summary"), thresholds, "**Worked example** (the summary example below):"
    )
    graph = _score_paragraph(
        run.view("summary", category="graph"),
        thresholds,
        "**With missing inputs** (the same run, `category=graph`): no graph service reports CPU, "
        "memory or a breaker.",
    )
    return full + "\n" + graph


def _zero_services() -> str:
    with _runtime("empty") as telemetry:
        collection = _fixed(asyncio.run(telemetry.collect()), NOW_NS, 0.0)
    inputs = ViewInputs(collection, None, HOST, NOW_NS + 500_000_000)
    document = render_view("summary", inputs).document
    return _json_block(_pick(document, ["status", "reason", "health_score", "services"]))


def _health(run: _DemoRun) -> str:
    document = run.view("health")
    document["categories"] = _trim(document["categories"], ["governance"])
    document["services"] = _trim(document["services"], ["wise_authority", "llm"])
    document["buses"] = _trim(document["buses"], ["llm"])
    return _json_block(document)


def _failing_run() -> tuple[dict[str, Any], dict[str, Any]]:
    """One service whose snapshot succeeded once, then raised; rendered 150 s after that success."""
    state = {"fail": False}

    def snapshot() -> Snapshot:
        if state["fail"]:
            raise ConnectionError("graph store unreachable")
        return {"service.queue.depth": 3}

    quiet = logging.getLogger("telemetry_otel.collection")
    with _runtime("failing") as telemetry, _silenced(quiet):
        memory = instrument_service(
            "memory",
            category="graph",
            snapshot=snapshot,
            metrics=[gauge("service.queue.depth", "{item}", "Requests waiting.")],
            telemetry=telemetry,
        )
        memory.report_health("pass")
        first = _fixed(asyncio.run(telemetry.collect()), NOW_NS - 149 * 10**9, 1.0)
        state["fail"] = True
        second = _fixed(asyncio.run(telemetry.collect()), NOW_NS, 150.0)
    # The failed snapshot kept the time of its last success: 150 s before ``now``.
    outcome = second.outcomes["memory"]
    outcomes = {"memory": dataclasses.replace(outcome, last_success_unix_nano=first.time_unix_nano - 10**9)}
    second = dataclasses.replace(second, outcomes=outcomes)
    inputs = ViewInputs(second, None, HOST, NOW_NS)
    return render_view("health", inputs).document, render_view("operational", inputs).document


def _failing_health() -> str:
    health, _ = _failing_run()
    return _json_block({**_pick(health, ["status", "reason"]), "services": health["services"]})


def _failing_operational() -> str:
    _, operational = _failing_run()
    depth = operational["services"]["memory"]["queue_depth"]
    [alert] = operational["alerts"]
    return _paragraph(
        f'The same run\'s operational view keeps `"queue_depth": {depth}` (the last good value) and '
        f"lists the alert `{json.dumps(alert, ensure_ascii=False)}`."
    )


def _operational(run: _DemoRun) -> str:
    document = run.view("operational")
    document["services"] = _trim(document["services"], ["llm", "resource_monitor"])
    document["buses"] = _trim(document["buses"], ["llm"])
    return _json_block(document)


def _performance(run: _DemoRun) -> str:
    document = run.view("performance")
    document["services"] = _trim(document["services"], ["llm"])
    document["buses"] = _trim(document["buses"], ["llm"])
    return _json_block(document)


def _reliability(run: _DemoRun) -> str:
    document = run.view("reliability")
    document["services"] = _trim(document["services"], ["resource_monitor", "time"])
    document["buses"] = _trim(document["buses"], ["llm"])
    return _json_block(document)


def _detailed(run: _DemoRun) -> str:
    document = run.view("detailed", category="runtime")

    def component(entry: Mapping[str, Any]) -> dict[str, Any]:
        snapshot = entry["snapshot"]
        return {
            "category": entry["category"],
            "health": entry["health"],
            "snapshot": None if snapshot is None else {"outcome": snapshot["outcome"], _ELLIPSIS: "…"},
            "metrics": f"[{len(entry['metrics'])} metrics]",
        }

    services = {name: component(entry) for name, entry in document["services"].items()}
    shown = {
        "view": document["view"],
        "totals": document["totals"],
        "categories": document["categories"],
        "services": _trim(services, list(services)[:1]),
        "buses": {
            name: {"providers_total": bus["providers_total"], "requests": bus["requests"], _ELLIPSIS: "…"}
            for name, bus in document["buses"].items()
        },
        "providers": {name: component(entry) for name, entry in document["providers"].items()},
        "other_metrics": document["other_metrics"],
        "filter": document["filter"],
    }
    return _json_block(shown)


def _summary_series(run: _DemoRun) -> str:
    derived = render_view("summary", run.inputs()).derived
    data = MetricsData([ResourceMetrics(Resource({}), [ScopeMetrics(DERIVED_SCOPE, derived, "")], "")])
    return "```\n" + encode_prometheus_text(data) + "```\n"


def _provider_filter(run: _DemoRun) -> str:
    with TestClient(create_app(run.telemetry, agent="demo")) as client:
        response = client.get("/api/demo/v1/telemetry", params={"service": "openai_primary"})
    return f"HTTP {response.status_code}\n\n" + _json_block(response.json())


# -- docs/buses.md ---------------------------------------------------------------------------------


def _bus_run() -> tuple[MetricsData, MetricsData, dict[str, Any]]:
    """The worked example of docs/buses.md: (series after attach, after detach, the JSON section)."""
    with _runtime("buses") as telemetry:
        primary = instrument_service("openai_primary", telemetry=telemetry)
        fallback = instrument_service("openai_fallback", telemetry=telemetry)
        for _ in range(3):
            primary.record_request(0.2)  # before it joins: not the bus's
        llm = Bus("llm", telemetry=telemetry)
        llm.attach(primary)
        llm.attach(fallback)
        primary.report_health("pass")
        primary.record_request(1.0)
        primary.record_request(1.1, error=True)
        fallback.record_request(1.0)
        attached = asyncio.run(telemetry.collect())
        inputs = ViewInputs(attached, None, HOST, NOW_NS)
        section = render_view("detailed", inputs).document["buses"]["llm"]
        llm.detach("openai_fallback")
        fallback.record_request(0.5)
        detached = asyncio.run(telemetry.collect())
    return attached.metrics, detached.metrics, section


def _series_lines(data: MetricsData, names: Sequence[str]) -> list[str]:
    lines: list[str] = []
    points: dict[str, list[Any]] = {}
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                points.setdefault(metric.name, []).extend(metric.data.data_points)
    for name in names:
        for point in points.get(name, []):
            attributes = dict(point.attributes or {})
            if isinstance(point, HistogramDataPoint):
                value = f"count={point.count} sum={point.sum:g}"
            else:
                value = f"{point.value:g}"
            lines.append(f"{name:<29} {attributes!s:<54} {value}")
    return lines


_ATTACHED_SERIES = (
    "bus.requests",
    "bus.failures",
    "bus.processed",
    "bus.request.duration",
    "bus.provider.requests",
    "bus.provider.failures",
    "bus.providers",
    "bus.providers.healthy",
    "bus.providers.unknown",
)
_DETACHED_SERIES = ("bus.requests", "bus.request.duration", "bus.provider.requests", "bus.providers")


def _bus_series() -> str:
    attached, detached, _ = _bus_run()
    lines = ["## after attach + 3 requests", *_series_lines(attached, _ATTACHED_SERIES)]
    lines += ["## after detach + 1 request of openai_fallback", *_series_lines(detached, _DETACHED_SERIES)]
    return "```\n" + "\n".join(lines) + "\n```\n"


def _bus_section() -> str:
    _, _, section = _bus_run()
    latency = section["latency"]
    shown = {
        **section,
        "latency": {**latency, "buckets": [latency["buckets"][0], _ELLIPSIS]},
        "metrics": f"[{len(section['metrics'])} bus.* metrics, as in the detailed view]",
    }
    return '```json\n"llm": ' + dump(shown, 0, '"llm": ') + "\n```\n"


# -- docs/grafana.md --------------------------------------------------------------------------------


def _grafana_timing() -> str:
    ttl = DEFAULT_CACHE_TTL_SECONDS
    service, read = DEFAULT_SERVICE_TIMEOUT_MILLIS, DEFAULT_COLLECTION_TIMEOUT_MILLIS
    rows = [
        ("cache TTL", "`serve --cache-ttl`, `create_app(cache_ttl_seconds=)`", f"{ttl:g} s"),
        (
            "service timeout",
            "`serve --service-timeout-millis`, `TELEMETRY_OTEL_SERVICE_TIMEOUT_MILLIS`",
            f"{service:g} ms",
        ),
        (
            "collection timeout",
            "`serve --collection-timeout-millis`, `TELEMETRY_OTEL_COLLECTION_TIMEOUT_MILLIS`",
            f"{read:g} ms",
        ),
        ("longest cycle", "service timeout + collection timeout", f"{(service + read) / 1000:g} s"),
    ]
    lines = ["| setting | set with | default |", "|---|---|---|"]
    lines += [f"| {name} | {where} | {default} |" for name, where, default in rows]
    return "\n".join(lines) + "\n"


# -- alerts.md: the generated Prometheus rules ------------------------------------------------------

#: The SLO file of the shipped promtool tests, shown in docs/alerts.md.
SLO_EXAMPLE = DOCS.parent / "tests" / "rules" / "slos.yaml"


def _alert_rules() -> list[dict[str, Any]]:
    text = prometheus_rules(HOST)
    return [rule for group in yaml.safe_load(text)["groups"] for rule in group["rules"]]


def _alerts_table() -> str:
    """Every threshold alert with the defaults (4 CPUs, 8 GiB): severity, condition, ``for:``."""
    lines = ["| alert | severity | fires when | for |", "|---|---|---|---|"]
    for rule in _alert_rules():
        if "alert" in rule:
            name, labels = rule["alert"], rule["labels"]
            where = f"[`{name}`](#{name.lower()})"
            lines.append(f"| {where} | {labels['severity']} | `{rule['expr']}` | {rule['for']} |")
    return "\n".join(lines) + "\n"


def _alerts_excerpt() -> str:
    """The recording rule and the alert of a service's critical CPU, as the file has them."""
    rules = _alert_rules()
    chosen = [next(r for r in rules if r.get("record") == "service:telemetry_otel_cpu_utilization:ratio")]
    chosen += [next(r for r in rules if r.get("alert") == "TelemetryOtelCpuCritical")]
    body = yaml.safe_dump(chosen, sort_keys=False, width=1_000_000)
    return "```yaml\n" + body + "```\n"


def _slo_file() -> str:
    return "```yaml\n" + SLO_EXAMPLE.read_text(encoding="utf-8") + "```\n"


def _slo_rules() -> str:
    """The rules of the first objective of the example SLO file: error ratios, budget, alerts."""
    text = prometheus_rules(HOST, slo_file=SLO_EXAMPLE)
    group = next(
        g for g in yaml.safe_load(text)["groups"] if g["name"] == "telemetry-otel.slo.llm-availability"
    )
    rules = [r for r in group["rules"] if r.get("record", "").endswith(("rate5m", "rate1h"))]
    rules += [r for r in group["rules"] if "alert" in r or "budget" in r.get("record", "")]
    body = yaml.safe_dump(rules, sort_keys=False, width=1_000_000)
    return "```yaml\n" + body + "```\n"


# -- the registry and the rewriting ----------------------------------------------------------------

#: Every generated block by name, and the document it lives in.
EXAMPLES: Mapping[str, tuple[str, Callable[..., str], bool]] = {
    # name: (document, generator, needs the demo run)
    "views-provider-filter": ("views.md", _provider_filter, True),
    "views-score": ("views.md", _score_example, True),
    "views-summary": ("views.md", _summary, True),
    "views-zero-services": ("views.md", lambda: _zero_services(), False),
    "views-health": ("views.md", _health, True),
    "views-failing-health": ("views.md", lambda: _failing_health(), False),
    "views-failing-operational": ("views.md", lambda: _failing_operational(), False),
    "views-operational": ("views.md", _operational, True),
    "views-performance": ("views.md", _performance, True),
    "views-reliability": ("views.md", _reliability, True),
    "views-detailed": ("views.md", _detailed, True),
    "views-summary-series": ("views.md", _summary_series, True),
    "grafana-timing": ("grafana.md", lambda: _grafana_timing(), False),
    "buses-series": ("buses.md", lambda: _bus_series(), False),
    "alerts-table": ("alerts.md", lambda: _alerts_table(), False),
    "alerts-excerpt": ("alerts.md", lambda: _alerts_excerpt(), False),
    "alerts-slo-file": ("alerts.md", lambda: _slo_file(), False),
    "alerts-slo-rules": ("alerts.md", lambda: _slo_rules(), False),
    "buses-section": ("buses.md", lambda: _bus_section(), False),
}


def generate() -> dict[str, str]:
    """Every example, by name, freshly generated."""
    generated: dict[str, str] = {}
    with _demo() as run:
        for name, (_, make, needs_demo) in EXAMPLES.items():
            generated[name] = make(run) if needs_demo else make()
    return generated


def rewrite(text: str, generated: Mapping[str, str]) -> str:
    """``text`` with every generated block replaced by its fresh content; an unknown name is an error."""

    def replace(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in generated:
            raise KeyError(f"no example named {name!r}; known: {', '.join(generated)}")
        return match.group(1) + generated[name] + match.group(4)

    return GENERATED.sub(replace, text)


def differences(docs: Path = DOCS) -> list[str]:
    """A unified diff per document whose generated blocks differ from a fresh run (none: all match)."""
    generated = generate()
    diffs: list[str] = []
    used = {
        match.group("name") for path in docs.glob("*.md") for match in GENERATED.finditer(path.read_text())
    }
    missing = sorted(set(EXAMPLES) - used)
    if missing:
        diffs.append(f"examples no document shows: {', '.join(missing)}")
    for path in sorted(docs.glob("*.md")):
        text = path.read_text()
        fresh = rewrite(text, generated)
        if fresh != text:
            diffs.append(
                "".join(
                    difflib.unified_diff(
                        text.splitlines(keepends=True),
                        fresh.splitlines(keepends=True),
                        f"docs/{path.name} (committed)",
                        f"docs/{path.name} (generated)",
                    )
                )
            )
    return diffs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 and print the diff")
    args = parser.parse_args(argv)
    if args.check:
        diffs = differences()
        for diff in diffs:
            print(diff)
        return 1 if diffs else 0
    generated = generate()
    for path in sorted(DOCS.glob("*.md")):
        text = path.read_text()
        fresh = rewrite(text, generated)
        if fresh != text:
            path.write_text(fresh)
            print(f"rewrote docs/{path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
