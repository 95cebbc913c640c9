"""The command line, run as a real process: the demo server end to end and every usage error."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx2 as httpx
import pytest

COMMAND = [sys.executable, "-m", "telemetry_otel"]
#: ``python -m`` puts the working directory first on sys.path: run outside the source tree so the
#: installed package is the one under test.
NEUTRAL_CWD = "/"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args], capture_output=True, text=True, timeout=60, check=False, cwd=NEUTRAL_CWD
    )


@pytest.fixture(scope="module")
def demo_server() -> Iterator[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    process = subprocess.Popen(
        [*COMMAND, "serve", "--demo", "--port", "0", "--seed", "11", "--cache-ttl", "0.5"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=NEUTRAL_CWD,
    )
    assert process.stderr is not None
    base = None
    deadline = time.monotonic() + 30
    while base is None and time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        found = re.search(r"(http://127\.0\.0\.1:\d+)/metrics", line)
        if found:
            base = found.group(1)
    assert base is not None, "the server never printed its address"
    try:
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0
        process.stderr.close()


def test_demo_server_shows_21_services_and_6_buses_with_activity(demo_server: str) -> None:
    time.sleep(1.0)  # let the simulation run a few ticks past the first collection
    body = httpx.get(f"{demo_server}/api/demo/v1/telemetry", params={"view": "detailed"}, timeout=10).json()
    assert body["totals"]["services"] == 21
    assert body["totals"]["categories"] == 4
    assert len(body["buses"]) == 6
    for name, service in body["services"].items():
        requests = {metric["name"]: metric for metric in service["metrics"]}["service.requests"]
        assert requests["points"][0]["value"] > 0, name
    for bus, section in body["buses"].items():
        assert section["providers_total"] >= 1, bus
        assert section["requests"] > 0, bus
    assert body["buses"]["llm"]["providers_total"] == 2
    assert body["buses"]["memory"]["providers_total"] == 2


def test_demo_metrics_pass_promtool_without_findings(demo_server: str) -> None:
    text = httpx.get(f"{demo_server}/metrics", timeout=10).text
    assert "service_requests_total" in text
    check = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert (check.returncode, check.stdout + check.stderr) == (0, "")


def test_serve_needs_a_source() -> None:
    result = _run("serve")
    assert result.returncode == 2
    assert "one of the arguments --demo --app is required" in result.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("serve", "--demo", "--port", "99999"), 2, "99999 is not a port number (0-65535)"),
        (("serve", "--demo", "--agent", "a/b"), 2, "'a/b' is not an agent id"),
        (("serve", "--demo", "--cache-ttl", "-1"), 2, "'-1' must be zero or more seconds"),
        (("serve", "--app", "no_such_module_xyz:build"), 2, "cannot import 'no_such_module_xyz'"),
        (("serve", "--app", "telemetry_otel"), 2, "'telemetry_otel' is not of the form MODULE:FACTORY"),
        (("serve", "--app", "telemetry_otel:nothing_here"), 2, "has no attribute 'nothing_here'"),
        (("frobnicate",), 2, "invalid choice: 'frobnicate'"),
        (("serve", "--app", "x:y", "--seed", "3"), 2, "--seed applies to --demo only"),
        (
            ("serve", "--app", "x:y", "--stop-after-requests", "3"),
            2,
            "--stop-after-requests applies to --demo only",
        ),
        (("serve", "--demo", "--stop-after-requests", "0"), 2, "0 must be 1 or more"),
        (("serve", "--demo", "--port", "0", "--threshold", "cpu_warn"), 2, "is not of the form KEY=VALUE"),
        (("serve", "--demo", "--port", "0", "--threshold", "speed=9"), 2, "unknown threshold key(s) 'speed'"),
        (("serve", "--demo", "--port", "0", "--threshold", "cpu_warn=2"), 2, "cpu_warn"),
    ],
)
def test_usage_errors_name_what_is_allowed_without_a_traceback(
    args: tuple[str, ...], code: int, message: str
) -> None:
    result = _run(*args)
    assert result.returncode == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = _run("serve", "--demo", "--port", str(port))
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_otel_environment_is_a_usage_error() -> None:
    result = subprocess.run(
        [*COMMAND, "serve", "--demo", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "OTEL_SDK_DISABLED": "perhaps"},
        cwd=NEUTRAL_CWD,
    )
    assert result.returncode == 2
    assert "OTEL_SDK_DISABLED='perhaps' is not a boolean; use true or false" in result.stderr


def test_version() -> None:
    result = _run("--version")
    assert result.returncode == 0
    assert re.fullmatch(r"telemetry-otel \d+\.\d+\.\d+.*\n", result.stdout)


def test_a_token_from_the_environment_guards_the_server_and_is_never_printed() -> None:
    secret = "cli-s3cret-token"
    env = {**os.environ, "TELEMETRY_OTEL_API_TOKEN": secret}
    process = subprocess.Popen(
        [*COMMAND, "serve", "--demo", "--port", "0", "--log-level", "debug"],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=NEUTRAL_CWD,
    )
    assert process.stderr is not None
    printed: list[str] = []
    base = None
    while base is None:
        line = process.stderr.readline()
        if not line:
            break
        printed.append(line)
        found = re.search(r"(http://127\.0\.0\.1:\d+)/metrics", line)
        base = found.group(1) if found else None
    try:
        assert base is not None
        assert httpx.get(f"{base}/metrics", timeout=10).status_code == 401
        assert httpx.get(f"{base}/api/demo/v1/telemetry/health/live", timeout=10).status_code == 200
        authorized = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {secret}"}, timeout=10)
        assert authorized.status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=15)
    assert secret not in "".join(printed) + out + err


def test_the_demo_serves_its_own_http_api_through_the_middleware(demo_server: str) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    services = httpx.get(f"{demo_server}/demo/services", timeout=10)
    assert services.status_code == 200
    assert len(services.json()) >= 21
    assert httpx.get(f"{demo_server}/demo/services/llm", timeout=10).json()["name"] == "llm"
    assert httpx.get(f"{demo_server}/demo/services/nobody", timeout=10).status_code == 404

    def counts() -> dict[tuple[str, str, str], float]:
        body = httpx.get(f"{demo_server}/metrics?live=true", timeout=10).text
        return {
            (
                s.labels["http_request_method"],
                s.labels.get("http_route", ""),
                s.labels["http_response_status_code"],
            ): s.value
            for family in text_string_to_metric_families(body)
            for s in family.samples
            if s.name == "http_server_request_duration_seconds_count"
        }

    deadline = time.monotonic() + 10
    while ("GET", "/demo/services/{name}", "200") not in counts() and time.monotonic() < deadline:
        time.sleep(0.2)
    seen = counts()
    assert seen[("GET", "/demo/services", "200")] >= 1
    assert seen[("GET", "/demo/services/{name}", "200")] >= 1
    # A 404 carries no route, whatever the path was.
    assert all(route == "" for _, route, status in seen if status == "404")
    assert not any("nobody" in route for _, route, _ in seen)
