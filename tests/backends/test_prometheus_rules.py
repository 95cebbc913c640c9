"""A real Prometheus loaded with the generated rules scrapes ``telemetry-otel serve --demo``, whose
failure switch makes ``llm`` fail: the alert goes pending, fires and resolves after the recovery,
and while it fires the view endpoint shows the same alert."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx2 as httpx
import pytest

if TYPE_CHECKING:
    from _support import Prometheus

LOOPBACK = "127.0.0.1"
COMMAND = [sys.executable, "-m", "telemetry_otel"]
ALERT = "TelemetryOtelCircuitBreakerOpen"


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yml"
    done = subprocess.run(
        [*COMMAND, "rules", "--for", "2s", "--output", str(path)], cwd="/", capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return path


@pytest.fixture
def failing_demo(free_port: Callable[..., int]) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``serve --demo`` on a fixed port; ``llm`` fails from 4 s to 6 s of its simulated time."""
    port = free_port()
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "TELEMETRY_OTEL_"))
    }
    process = subprocess.Popen(
        [*COMMAND, "serve", "--demo", "--port", str(port), "--seed", "5", "--cache-ttl", "0.5",
         "--demo-fail", "llm", "--demo-fail-after", "4", "--demo-fail-for", "2"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env, cwd="/",
    )  # fmt: skip
    try:
        yield f"{LOOPBACK}:{port}", process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        finally:
            if process.poll() is None:
                process.kill()
            assert process.stderr is not None
            process.stderr.close()


def _llm_alert(alerts: list[dict[str, Any]]) -> dict[str, Any] | None:
    for alert in alerts:
        labels = alert["labels"]
        if labels.get("alertname") == ALERT and labels.get("service_name") == "llm":
            return alert
    return None


def _view_rules(target: str) -> set[str]:
    body = httpx.get(
        f"http://{target}/api/demo/v1/telemetry", params={"view": "operational"}, timeout=10
    ).json()
    return {alert["rule"] for alert in body["alerts"] if alert["component"] == "llm"}


def test_a_failing_demo_service_raises_a_real_alert_that_fires_and_resolves(
    start_prometheus: Callable[..., Prometheus],
    rules_file: Path,
    failing_demo: tuple[str, subprocess.Popen[str]],
) -> None:
    target, process = failing_demo
    started = time.monotonic()
    prometheus = start_prometheus([target], job="demo", rule_files=[str(rules_file)])
    states: list[tuple[float, str]] = []
    seen_in_view: set[str] | None = None
    resolved_in_view: set[str] | None = None
    fired_labels: dict[str, str] | None = None
    deadline = started + 40
    while time.monotonic() < deadline:
        assert process.poll() is None, "the demo server exited"
        alert = _llm_alert(prometheus.alerts())
        state = "inactive" if alert is None else str(alert["state"])
        if not states or states[-1][1] != state:
            states.append((round(time.monotonic() - started, 1), state))
        if state == "firing" and seen_in_view is None:
            seen_in_view = _view_rules(target)
            fired_labels = alert["labels"] if alert is not None else None
        if state == "inactive" and any(s == "firing" for _, s in states):
            resolved_in_view = _view_rules(target)
            break
        time.sleep(0.25)
    print("alert states (s after start):", states)
    assert [state for _, state in states][-3:] == ["pending", "firing", "inactive"], states
    # While Prometheus fires, the view raises the same alert (and the service is down there too).
    assert seen_in_view is not None
    assert {"circuit_breaker_open", "service_down"} <= seen_in_view
    assert resolved_in_view is not None
    assert "circuit_breaker_open" not in resolved_in_view
    assert prometheus.query(f'ALERTS{{alertname="{ALERT}",service_name="llm"}}') == []  # resolved
    assert fired_labels is not None
    assert {
        key: fired_labels[key] for key in ("job", "instance", "severity", "rule", "service_category")
    } == {
        "job": "demo",
        "instance": target,
        "severity": "critical",
        "rule": "circuit_breaker_open",
        "service_category": "runtime",
    }
