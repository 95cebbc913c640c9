"""The generated rule file: names read from a real exposition, labels, ``for:``, runbook links."""

from __future__ import annotations

import asyncio
import pathlib
import re
import subprocess

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from telemetry_otel import Telemetry, TelemetryConfig
from telemetry_otel.formats import encode_prometheus_text
from telemetry_otel.instrumentation.demo import build_demo
from telemetry_otel.views import Thresholds, prometheus_rules
from telemetry_otel.views._promql import READS, format_duration, parse_duration, series
from telemetry_otel.views._rules import ALERT_NAMES, DEFAULT_FOR_SECONDS
from telemetry_otel.views._slo import ALERT_NAME
from tests.views._promtool import promtool


def _rules(text: str) -> list[dict[str, object]]:
    return [rule for group in yaml.safe_load(text)["groups"] for rule in group["rules"]]


def test_every_series_a_rule_reads_is_what_a_real_runtime_exposes() -> None:
    """The names come from the encoder's naming: a demo runtime with the process metrics exposes each."""
    runtime = Telemetry(TelemetryConfig(service_name="demo", process_metrics=True))
    demo = build_demo(runtime, seed=3)
    try:
        collection = asyncio.run(runtime.collect())
        exposed = {
            sample.name
            for family in text_string_to_metric_families(encode_prometheus_text(collection.metrics))
            for sample in family.samples
        }
    finally:
        demo.close()
        runtime.shutdown()
    for name, (_, instrument) in READS.items():
        expected = series(name) + ("_count" if instrument == "histogram" else "")
        assert expected in exposed, name
    expressions = " ".join(str(rule["expr"]) for rule in _rules(prometheus_rules(Thresholds(cpu_count=2))))
    selected = set(re.findall(r"([a-z_][a-z0-9_]*)(?=\{|\[|\))", expressions))
    labels = {"job", "instance", "service_name", "service_category"}
    assert selected - labels
    assert selected - labels <= exposed


def test_every_expression_keeps_job_and_instance_and_every_alert_links_its_runbook() -> None:
    rules = _rules(prometheus_rules(Thresholds(cpu_count=2), runbook_url="https://example.test/alerts"))
    alerts = [rule for rule in rules if "alert" in rule]
    assert sorted(str(rule["alert"]) for rule in alerts) == sorted(ALERT_NAMES)
    for rule in rules:
        assert "job, instance" in str(rule["expr"]) or re.match(r"^[a-z_]+:", str(rule["expr"])), rule
    for rule in alerts:
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        assert isinstance(rule["labels"], dict)
        assert annotations["runbook_url"] == f"https://example.test/alerts#{str(rule['alert']).lower()}"
        assert rule["labels"]["rule"] in annotations["summary"]  # the summary names the threshold
        assert rule["labels"]["severity"] in ("warning", "critical")


def test_thresholds_and_for_reach_the_rules() -> None:
    default = {
        rule["alert"]: rule for rule in _rules(prometheus_rules(Thresholds(cpu_count=2))) if "alert" in rule
    }
    assert (
        default["TelemetryOtelCpuCritical"]["expr"] == "service:telemetry_otel_cpu_utilization:ratio >= 0.9"
    )
    assert default["TelemetryOtelCpuCritical"]["for"] == format_duration(DEFAULT_FOR_SECONDS["resources"])
    assert default["TelemetryOtelServiceDown"]["for"] == "1m"
    changed = {
        rule["alert"]: rule
        for rule in _rules(
            prometheus_rules(
                {
                    "cpu_count": 2,
                    "cpu_critical": 0.95,
                    "service_down": "off",
                    "circuit_breaker_open": "warning",
                },
                for_duration="3s",
            )
        )
        if "alert" in rule
    }
    assert changed["TelemetryOtelCpuCritical"]["expr"].endswith(">= 0.95")  # type: ignore[union-attr]
    assert "TelemetryOtelServiceDown" not in changed
    assert changed["TelemetryOtelCircuitBreakerOpen"]["labels"]["severity"] == "warning"  # type: ignore[index]
    assert {rule["for"] for rule in changed.values()} == {"3s"}
    with pytest.raises(ValueError, match="unknown threshold key"):
        prometheus_rules({"cpu_warning": 0.5})


def test_promtool_checks_the_default_file_clean(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(prometheus_rules(), encoding="utf-8")
    result = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("text", "seconds"), [("5m", 300), ("1h30m", 5400), ("28d", 2419200), ("250ms", 0.25), ("3s", 3)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert format_duration(seconds) == text


@pytest.mark.parametrize("text", ["", "5", "m", "5 m", "-5m", "5mm", "1.5h"])
def test_bad_durations_name_the_units(text: str) -> None:
    with pytest.raises(ValueError, match="ms, s, m, h, d, w, y"):
        parse_duration(text)


def test_every_runbook_link_has_its_section_in_the_docs() -> None:
    page = pathlib.Path(__file__).parent.parent.parent / "docs" / "alerts.md"
    sections = set(re.findall(r"^### (TelemetryOtel\w+)$", page.read_text(encoding="utf-8"), re.M))
    assert sections == {*ALERT_NAMES, ALERT_NAME}
