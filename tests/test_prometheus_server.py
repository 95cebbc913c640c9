"""``OTEL_METRICS_EXPORTER=prometheus`` in a process that does not run ``serve``: a real script serves
``/metrics`` on ``OTEL_EXPORTER_PROMETHEUS_HOST``:``OTEL_EXPORTER_PROMETHEUS_PORT``, as the SDK's
Prometheus exporter does, with this package's encoders; a busy port is logged, not fatal."""

from __future__ import annotations

import gzip
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2 as httpx
import pytest

WORKER = textwrap.dedent(
    """
    import logging
    import sys

    from telemetry_otel import get_meter, setup_telemetry
    from telemetry_otel.instrumentation import gauge, instrument_service

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    jobs = get_meter("worker.module").create_counter("worker.jobs", "{job}", "Jobs done.")
    jobs.add(2)  # a module-level measurement, before the worker's own set-up
    telemetry = setup_telemetry(service_name="worker")
    jobs.add(1)
    queue = instrument_service(
        "queue",
        category="worker",
        snapshot=lambda: {"worker.queue.depth": 5},
        metrics=[gauge("worker.queue.depth", "{item}", "Items waiting.")],
    )
    queue.report_health("pass")
    print("address", telemetry.prometheus_address, flush=True)
    sys.stdin.read()  # runs until the test closes stdin
    telemetry.shutdown()
    print("shut down", flush=True)
    """
)

SCRIPT_ONLY = textwrap.dedent(
    """
    import sys

    from telemetry_otel import current_telemetry, get_meter

    get_meter("script").create_counter("script.runs", "{run}", "Runs.").add(1)  # no set-up call at all
    print("address", current_telemetry().prometheus_address, flush=True)
    sys.stdin.read()
    """
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _running(tmp_path: Path, code: str, **env: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The script ``code`` running with the prometheus exporter configured by ``env``: (process, the
    line it printed with its address)."""
    script = tmp_path / "worker.py"
    script.write_text(code)
    clean = {
        key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "TELEMETRY_OTEL_"))
    }
    process = subprocess.Popen(
        [sys.executable, str(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**clean, "OTEL_METRICS_EXPORTER": "prometheus", **env},
    )
    assert process.stdout is not None
    try:
        line = process.stdout.readline()
        assert line.startswith("address"), line + (process.stderr.read() if process.stderr else "")
        yield process, line.strip()
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=15)
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_a_script_serves_metrics_with_the_explicit_setup_and_the_early_measurements(tmp_path: Path) -> None:
    port = _free_port()
    with _running(
        tmp_path, WORKER, OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1", OTEL_EXPORTER_PROMETHEUS_PORT=str(port)
    ) as (process, line):
        assert line == f"address ('127.0.0.1', {port})"
        base = f"http://127.0.0.1:{port}"
        scrape = httpx.get(f"{base}/metrics", timeout=10)
        assert scrape.status_code == 200
        assert scrape.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        text = scrape.text
        assert 'service_name="worker"' in text  # the explicit set-up won over the environment
        [jobs] = [sample for sample in text.splitlines() if sample.startswith("worker_jobs_total{")]
        assert jobs.endswith(" 3")  # the early measurement was kept
        [depth] = [sample for sample in text.splitlines() if sample.startswith("worker_queue_depth{")]
        assert 'service_name="queue"' in depth
        assert depth.endswith(" 5")
        check = subprocess.run(
            ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, check=False
        )
        assert (check.returncode, check.stdout + check.stderr) == (0, "")

        openmetrics = httpx.get(
            f"{base}/metrics", headers={"Accept": "application/openmetrics-text;version=1.0.0"}, timeout=10
        )
        assert openmetrics.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
        assert openmetrics.text.endswith("# EOF\n")
        with httpx.Client(headers={"Accept-Encoding": "gzip"}) as client:
            raw = client.get(f"{base}/metrics", timeout=10)
        assert raw.headers["content-encoding"] == "gzip"
        assert raw.headers["vary"] == "Accept, Accept-Encoding"

        assert (httpx.get(f"{base}/", timeout=10).status_code, httpx.get(f"{base}/", timeout=10).json()) == (
            404,
            {"error": "no route '/'", "routes": ["/metrics"]},
        )
        refused = httpx.post(f"{base}/metrics", timeout=10)
        assert (refused.status_code, refused.json()["allowed"]) == (405, ["GET"])
        query = httpx.get(f"{base}/metrics?name[]=x", timeout=10)
        assert (query.status_code, query.headers["content-type"]) == (400, "application/json")

        assert process.stdin is not None
        process.stdin.close()
        assert process.wait(timeout=15) == 0
    with pytest.raises(httpx.ConnectError):  # shutdown() released the port
        httpx.get(f"{base}/metrics", timeout=5)


def test_gzip_bodies_decode_to_the_scrape(tmp_path: Path) -> None:
    port = _free_port()
    with (
        _running(
            tmp_path,
            WORKER,
            OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
            OTEL_EXPORTER_PROMETHEUS_PORT=str(port),
        ),
        socket.create_connection(("127.0.0.1", port), timeout=10) as connection,
    ):
        connection.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n")
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"Content-Encoding: gzip" in head
    assert b"worker_jobs_total" in gzip.decompress(body)


def test_a_script_that_never_sets_up_still_serves_metrics(tmp_path: Path) -> None:
    port = _free_port()
    with _running(
        tmp_path,
        SCRIPT_ONLY,
        OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
        OTEL_EXPORTER_PROMETHEUS_PORT=str(port),
    ) as (_, line):
        assert line == f"address ('127.0.0.1', {port})"
        assert "script_runs_total" in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text


def test_a_busy_port_is_logged_and_the_process_runs_on(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with _running(
            tmp_path,
            WORKER,
            OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
            OTEL_EXPORTER_PROMETHEUS_PORT=str(port),
        ) as (process, line):
            assert line == "address None"
            assert process.stdin is not None
            process.stdin.close()
            assert process.wait(timeout=15) == 0
            assert process.stdout is not None
            assert process.stdout.read() == "shut down\n"
            assert process.stderr is not None
            stderr = process.stderr.read()
    assert f"WARNING telemetry_otel.prometheus: cannot serve /metrics on 127.0.0.1:{port}" in stderr
    assert "Traceback" not in stderr


def test_the_default_address_is_localhost_9464(tmp_path: Path) -> None:
    with _running(tmp_path, WORKER) as (process, line):
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=15)
        assert process.stderr is not None
        stderr = process.stderr.read()
    if line == "address None":  # something else holds 9464 on this machine: the warning names it
        assert "cannot serve /metrics on localhost:9464" in stderr
    else:
        assert line == "address ('127.0.0.1', 9464)"
        assert "serving Prometheus /metrics on http://127.0.0.1:9464/metrics" in stderr


def test_a_bad_port_is_a_configuration_error_naming_the_variable(tmp_path: Path) -> None:
    script = tmp_path / "bad.py"
    script.write_text("from telemetry_otel import setup_telemetry\nsetup_telemetry()\n")
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "OTEL_METRICS_EXPORTER": "prometheus", "OTEL_EXPORTER_PROMETHEUS_PORT": "http"},
    )
    assert result.returncode == 1
    assert (
        "ConfigurationError: OTEL_EXPORTER_PROMETHEUS_PORT='http' is not a port number (0-65535)"
        in result.stderr
    )
