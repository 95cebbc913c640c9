"""``serve`` as a new user runs it: the console script, an app module in the working directory, the
timeouts as flags, a token read from a file, and the requests the HTTP server refuses itself."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2 as httpx
import pytest

#: The console script, as a user runs it (unlike ``python -m``, it has no working directory on the
#: import path).
SCRIPT = str(Path(sys.executable).with_name("telemetry-otel"))
BASE = "/api/demo/v1/telemetry"

AGENT_APP = textwrap.dedent(
    """
    import sys
    import time

    from telemetry_otel.instrumentation import gauge, instrument_service

    DEPTH = gauge("agent.queue.depth", "{item}", "Requests waiting.")


    def factory(telemetry):
        core = instrument_service(
            "agent_core", category="runtime", snapshot=lambda: {"agent.queue.depth": 3}, metrics=[DEPTH],
            telemetry=telemetry,
        )
        core.report_health("pass")


    def slow_factory(telemetry):
        config = telemetry.config
        timeouts = (config.service_timeout_millis, config.collection_timeout_millis)
        print("timeouts %g %g" % timeouts, file=sys.stderr)

        def slow():
            time.sleep(0.5)
            return {"agent.queue.depth": 1}

        instrument_service(
            "slow_service", category="runtime", snapshot=slow, metrics=[DEPTH], telemetry=telemetry
        )
    """
)


def _env(**extra: str) -> dict[str, str]:
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "TELEMETRY_OTEL_"))
    }
    return {**env, **extra}


@contextmanager
def _serving(
    args: list[str], cwd: Path | str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, list[str]]]:
    """``telemetry-otel serve ARGS --port 0`` in ``cwd``: (base URL, the stderr lines until it served)."""
    process = subprocess.Popen(
        [SCRIPT, "serve", *args, "--port", "0"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        cwd=cwd,
        env=env or _env(),
    )
    assert process.stderr is not None
    lines: list[str] = []
    base = None
    deadline = time.monotonic() + 30
    while base is None and time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        lines.append(line)
        found = re.search(r"(http://127\.0\.0\.1:\d+)/metrics", line)
        base = found.group(1) if found else None
    try:
        if base is None:
            process.kill()
            process.wait(timeout=15)
            raise AssertionError(
                "serve never printed its address:\n" + "".join(lines) + process.stderr.read()
            )
        yield base, lines
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=15)
        process.stderr.close()


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "agentapp.py").write_text(AGENT_APP)
    return tmp_path


def test_an_app_module_in_the_working_directory_is_found_as_uvicorn_finds_it(app_dir: Path) -> None:
    with _serving(["--app", "agentapp:factory"], cwd=app_dir) as (base, _):
        health = httpx.get(f"{base}{BASE}", params={"view": "health"}, timeout=10).json()
    assert health["services"]["agent_core"]["status"] == "pass"


def test_app_dir_puts_another_directory_first_on_the_import_path(
    app_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    with _serving(["--app", "agentapp:factory", "--app-dir", str(app_dir)], cwd=elsewhere) as (base, _):
        scrape = httpx.get(f"{base}/metrics", timeout=10).text
    [sample] = [line for line in scrape.splitlines() if line.startswith("agent_queue_depth{")]
    assert 'service_name="agent_core"' in sample


def test_coverage_finds_an_app_module_in_the_working_directory(app_dir: Path) -> None:
    result = subprocess.run(
        [SCRIPT, "coverage", "--app", "agentapp:factory", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=app_dir,
        env=_env(),
    )
    assert "cannot import" not in result.stderr
    assert '"agent.queue.depth"' in result.stdout  # emitted, and undeclared in the demo catalog


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--app", "agentapp:factory", "--app-dir", "/no/such/dir"],
            "--app-dir '/no/such/dir' is not a directory",
        ),
        (["--demo", "--app-dir", "."], "--app-dir applies to --app only"),
        (["--app", "missing_module:factory"], "cannot import 'missing_module'"),
        (["--demo", "--service-timeout-millis", "0"], "'0' must be a positive number of milliseconds"),
        (["--demo", "--collection-timeout-millis", "soon"], "'soon' is not a number of milliseconds"),
        (["--demo", "--workers", "0"], "'0' is not a number of workers (1 or more)"),
    ],
)
def test_bad_serve_options_are_usage_errors(app_dir: Path, args: list[str], message: str) -> None:
    result = subprocess.run(
        [SCRIPT, "serve", *args, "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=app_dir,
        env=_env(),
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_the_timeouts_are_serve_flags_and_beat_the_environment(app_dir: Path) -> None:
    env = _env(TELEMETRY_OTEL_SERVICE_TIMEOUT_MILLIS="5000", TELEMETRY_OTEL_COLLECTION_TIMEOUT_MILLIS="9000")
    args = [
        "--app",
        "agentapp:slow_factory",
        "--service-timeout-millis",
        "100",
        "--collection-timeout-millis",
        "700",
    ]
    with _serving([*args, "--cache-ttl", "0"], cwd=app_dir, env=env) as (base, lines):
        health = httpx.get(f"{base}{BASE}", params={"view": "health"}, timeout=10).json()
    assert "timeouts 100 700\n" in lines
    slow = health["services"]["slow_service"]
    assert slow["status"] == "unknown"
    assert slow["snapshot_error"] == "snapshot timed out after 100 ms"


def test_a_token_read_from_a_file_with_its_final_newline_is_refused_at_start_up(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("cli-s3cret-token\n")  # as `echo token > file` writes it
    result = subprocess.run(
        [SCRIPT, "serve", "--demo", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
        env=_env(TELEMETRY_OTEL_API_TOKEN=secret.read_text()),
    )
    assert result.returncode == 2
    assert "TELEMETRY_OTEL_API_TOKEN has leading or trailing whitespace" in result.stderr
    assert "cli-s3cret-token" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def _raw(base: str, request: bytes) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize(
    "request_line",
    [b"GET /metrics\x00 HTTP/1.1", "GET /métrics HTTP/1.1".encode()],
    ids=["NUL in the target", "raw UTF-8 in the target"],
)
def test_requests_the_http_server_refuses_itself_get_its_plain_text_400(
    tmp_path: Path, request_line: bytes
) -> None:
    """The one place a 4xx is not JSON (README): uvicorn answers before the app sees the request."""
    with _serving(["--demo", "--seed", "1"], cwd=tmp_path) as (base, _):
        answer = _raw(base, request_line + b"\r\nHost: localhost\r\n\r\n")
        assert httpx.get(f"{base}{BASE}/health/live", timeout=10).status_code == 200  # still serving
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"content-type: text/plain; charset=utf-8" in head.lower()
    assert body == b"Invalid HTTP request received."


def test_serve_opens_no_second_scrape_port_for_otel_metrics_exporter_prometheus(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = _env(
        OTEL_METRICS_EXPORTER="prometheus",
        OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
        OTEL_EXPORTER_PROMETHEUS_PORT=str(port),
    )
    with _serving(["--demo", "--seed", "1"], cwd=tmp_path, env=env) as (base, _):
        assert httpx.get(f"{base}/metrics", timeout=10).status_code == 200  # its own /metrics
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
