"""One source of truth per threshold: the view's alerts and the generated Prometheus rules (run by
``promtool test rules``) fire for exactly the same rows of a table of values below, at and above
every threshold."""

from __future__ import annotations

import pathlib
import subprocess
from collections.abc import Iterable

import pytest
import yaml

from telemetry_otel.views import Alert, Thresholds, ViewInputs, prometheus_rules
from telemetry_otel.views._build import build_model
from telemetry_otel.views._rules import ALERT_NAMES
from tests.views._promtool import promtool
from tests.views._rule_rows import EVAL_SECONDS, STEP, Row, Service, collections, input_series

#: Thresholds whose values are exact in binary at the table's values (0.75 = 1.5 CPUs of 2).
BASE = {"cpu_count": 2, "memory_limit_bytes": 1000}
VARIANTS = {
    "defaults": Thresholds.from_mapping(BASE),
    "overridden": Thresholds.from_mapping(
        {
            **BASE,
            "cpu_warn": 0.5,
            "memory_critical": 0.8,
            "error_ratio_warn": 0.25,
            "min_requests": 4,
            "circuit_breaker_open": "warning",
            "service_down": "off",
            "stale_after_seconds": 30,
        }
    ),
}


def _row(**service: object) -> Row:
    return Row([Service("svc", **service)])  # type: ignore[arg-type]


ERROR_COUNTS = ((20, 2), (20, 3), (19, 3), (4, 1), (4, 2), (3, 2), (40, 10), (40, 11), (0, 0))
PROCESS_CPU_STEPS = (7.5, 15.0, 22.5, 24.0, 27.0, 30.0)  # CPU seconds per 15 s, of 2 CPUs
#: Values below, at and above every threshold of both variants.
ROWS: dict[str, Row] = {
    **{f"cpu {cpu}": _row(cpu=cpu) for cpu in (0.9, 1.0, 1.2, 1.5, 1.6, 1.8, 1.9)},  # of 2 CPUs
    **{f"memory {m}": _row(memory=m) for m in (0.4, 0.5, 0.7, 0.75, 0.79, 0.8, 0.9, 0.95)},
    **{f"errors {e}/{r}": _row(requests=r, errors=e) for r, e in ERROR_COUNTS},
    "no errors series": _row(requests=50),
    **{f"breaker {state}": _row(breaker=state) for state in ("closed", "open", "half_open")},
    **{f"health {status}": _row(health=status) for status in ("pass", "warn", "fail")},
    **{f"stale {age}": _row(snapshot_age=age) for age in (29.0, 30.0, 31.0, 119.0, 120.0, 121.0)},
    "provider without category": Row([Service("bus_only", None, cpu=1.9, health="fail", breaker="open")]),
    **{f"process cpu {step}/step": Row(cpu_seconds_per_step=step) for step in PROCESS_CPU_STEPS},
    **{f"process memory {b}": Row(memory_bytes=b) for b in (400, 500, 750, 800, 899, 900, 950)},
    "two services": Row(
        [Service("a", "graph", requests=30, errors=2), Service("b", "runtime", requests=10, errors=4)]
    ),
}


def _expected(alerts: Iterable[Alert], instance: str, row: Row) -> list[dict[str, str]]:
    """The ``ALERTS`` series Prometheus must hold for the view's ``alerts`` of one row."""
    categories = {service.name: service.category for service in row.services}
    found = []
    for alert in alerts:
        labels = {"alertstate": "firing", "job": "agent", "instance": instance}
        labels |= {"severity": alert.severity, "rule": alert.rule}
        kind = {"cpu": "Cpu", "memory": "Memory"}.get(alert.rule.split("_")[0])
        if alert.component in ("process", "runtime"):
            labels["component"] = alert.component
        else:
            labels["service_name"] = alert.component
            if alert.rule != "stale_after_seconds":
                labels["service_category"] = str(categories[alert.component])
        if kind is not None:
            scope = "Process" if alert.component == "process" else ""
            level = "Critical" if alert.rule.endswith("critical") else "Warn"
            name = f"TelemetryOtel{scope}{kind}{level}"
        else:
            name = {
                "error_ratio_warn": "RuntimeErrorRatio" if alert.component == "runtime" else "ErrorRatio",
                "circuit_breaker_open": "CircuitBreakerOpen",
                "service_down": "ServiceDown",
                "stale_after_seconds": "SnapshotStale",
            }[alert.rule]
            name = f"TelemetryOtel{name}"
        labels["alertname"] = name
        found.append(labels)
    return found


def _view_alerts(row: Row, thresholds: Thresholds) -> tuple[Alert, ...]:
    previous, current = collections(row)
    inputs = ViewInputs(current, previous, thresholds, current.time_unix_nano)
    return build_model(inputs).alerts


def _promtool_test(
    tmp_path: pathlib.Path, rules: str, rows: dict[str, Row], expected: list[dict[str, str]]
) -> None:
    (tmp_path / "rules.yml").write_text(rules, encoding="utf-8")
    series = [item for index, row in enumerate(rows.values()) for item in input_series(row, f"row{index}")]
    samples = [
        {"labels": "ALERTS{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}", "value": 1}
        for labels in expected
    ]
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": f"{STEP}s",
        "tests": [
            {
                "interval": f"{STEP}s",
                "input_series": series,
                "promql_expr_test": [
                    {
                        "expr": 'ALERTS{alertstate="firing"}',
                        "eval_time": f"{EVAL_SECONDS}s",
                        "exp_samples": samples,
                    }
                ],
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test, sort_keys=False), encoding="utf-8")
    binary = promtool()
    checked = subprocess.run(
        [binary, "check", "rules", "rules.yml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr + checked.stdout
    result = subprocess.run(
        [binary, "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_the_view_and_promtool_fire_the_same_alerts_for_every_row(
    variant: str, tmp_path: pathlib.Path
) -> None:
    thresholds = VARIANTS[variant]
    expected: list[dict[str, str]] = []
    fired_rows = 0
    for index, row in enumerate(ROWS.values()):
        alerts = _view_alerts(row, thresholds)
        fired_rows += bool(alerts)
        expected += _expected(alerts, f"row{index}", row)
    # The table is not vacuous: rows fire and rows stay quiet, and every alert kind fires somewhere
    # (service_down is switched off in the overridden variant).
    assert 0 < fired_rows < len(ROWS)
    names = {labels["alertname"] for labels in expected}
    assert names == set(ALERT_NAMES) - ({"TelemetryOtelServiceDown"} if variant == "overridden" else set())
    rules = prometheus_rules(thresholds, for_duration=0, rate_window=60)
    _promtool_test(tmp_path, rules, ROWS, expected)


def test_a_disagreement_is_seen(tmp_path: pathlib.Path) -> None:
    """The comparison can fail: rules made from other thresholds than the view's disagree."""
    thresholds = VARIANTS["defaults"]
    rows = {"memory 0.8": ROWS["memory 0.8"]}
    expected = _expected(_view_alerts(rows["memory 0.8"], thresholds), "row0", rows["memory 0.8"])
    assert [labels["alertname"] for labels in expected] == ["TelemetryOtelMemoryWarn"]
    other = prometheus_rules({**BASE, "memory_warn": 0.85}, for_duration=0, rate_window=60)
    with pytest.raises(AssertionError, match="TelemetryOtelMemoryWarn"):
        _promtool_test(tmp_path, other, rows, expected)
