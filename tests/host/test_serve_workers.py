"""``telemetry-otel serve --workers 2`` as users run it: one host picture from either worker, a
worker killed with SIGKILL replaced without a reset, and SIGTERM a clean stop."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.backend

HERE = Path(__file__).parent


def _servers() -> Any:
    name = "telemetry_otel_tests_host_servers"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, HERE / "_servers.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module


servers = _servers()


def _requests(url: str) -> float:
    status, body = servers.get(f"{url}/metrics")
    assert status == 200
    lines = [line for line in body.decode().splitlines() if line.startswith("service_requests_total{")]
    assert len(lines) <= 1, lines  # one host series, whichever worker answered
    return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0


def _host(url: str) -> dict[str, Any]:
    status, body = servers.get(f"{url}/api/demo/v1/telemetry?view=detailed")
    assert status == 200
    host: dict[str, Any] = json.loads(body)["host"]
    return host


def test_serve_with_two_workers_answers_for_the_host_through_a_sigkill(tmp_path: Path) -> None:
    port = servers.free_port()
    env = servers.server_env(servers.free_port())
    argv = [sys.executable, "-m", "telemetry_otel", "serve", "--app", "serve_workers_app:build"]
    argv += ["--app-dir", str(HERE), "--workers", "2", "--port", str(port), "--log-level", "warning"]
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        argv, env=env, cwd="/", stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        servers.wait_for(lambda: _requests(url), lambda v: v == 20, 30, "20 requests from 2 workers")
        for _ in range(8):
            assert _requests(url) == 20
        host = servers.wait_for(
            lambda: _host(url), lambda h: all(w["reports"] >= 2 for w in h["workers"]), 10, "reports"
        )
        assert len(host["workers"]) == 2
        retired_before = host["retired_workers"]  # 0, or a worker that died at start was retired
        victim = host["workers"][0]["pid"]
        os.kill(victim, signal.SIGKILL)
        servers.wait_for(lambda: _requests(url), lambda v: v == 30, 30, "the replacement's 10 requests added")
        host = _host(url)
        assert host["retired_workers"] == retired_before + 1  # the victim, and only it
        assert victim not in {worker["pid"] for worker in host["workers"]}
        assert len(host["workers"]) == 2
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            status = process.wait(30)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            log.close()
    assert status == 0, (tmp_path / "serve.log").read_text()[-2000:]
    time.sleep(0.1)
