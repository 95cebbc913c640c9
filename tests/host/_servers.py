"""Real multi-process servers (gunicorn, uvicorn --workers) serving ``host_workers_app`` on loopback.

Loaded by path (the tests directory is not a package): ``conftest.py`` and the tests share it.

Each server runs in a session of its own and is stopped by its process group (SIGTERM, then SIGKILL
after a timeout), whatever the test did. The host aggregator's endpoint is chosen by the test, so
that the test can read the host document (``GET /v1/host``) to find the workers.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

HERE = Path(__file__).parent
BIN = Path(sys.executable).parent
#: Milliseconds between two reports of a worker in these tests: the bound of the host's lag.
REPORT_INTERVAL_MILLIS = 200
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(fetch: Callable[[], T], done: Callable[[T], bool], timeout: float, what: str) -> T:
    """Call ``fetch`` until ``done`` accepts its result; AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = fetch()
            if done(last):
                return last
        except (OSError, urllib.error.URLError, ValueError) as exc:
            last = exc
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}: {last!r}")


def get(url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    """One GET on a new connection (so that requests spread over the workers)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


class WorkerServer:
    """A multi-worker server process group serving the test app on 127.0.0.1:``port``."""

    def __init__(self, argv: list[str], port: int, env: dict[str, str], cwd: Path) -> None:
        self.port = port
        self.env = env
        self.endpoint = env["TELEMETRY_OTEL_HOST_ENDPOINT"]
        self.log = cwd / "server.log"
        self._log_file = self.log.open("wb")
        self.process = subprocess.Popen(
            argv, env=env, cwd=cwd, stdout=self._log_file, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def host_document(self) -> dict[str, Any]:
        """The aggregator's host document (workers, retired count, generation)."""
        status, body = get(f"http://{self.endpoint}/v1/host")
        assert status == 200, body
        document: dict[str, Any] = json.loads(body)
        return document

    def worker_pids(self) -> set[int]:
        """Pids of the live workers that report (the gunicorn master too, with ``--preload``)."""
        return {int(w["pid"]) for w in self.host_document()["workers"]}

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM the process group, then SIGKILL what is left; returns the main process's status."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            status: int | None = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            status = None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(5)
        self._log_file.close()
        return status


def server_env(endpoint_port: int, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OTEL_", "TELEMETRY_OTEL_")) and key != "PYTHONPATH"
    }
    env.update(
        PYTHONPATH=str(HERE),
        TELEMETRY_OTEL_HOST_ENDPOINT=f"127.0.0.1:{endpoint_port}",
        TELEMETRY_OTEL_REPORT_INTERVAL_MILLIS=str(REPORT_INTERVAL_MILLIS),
        PATH=f"{BIN}:{os.environ.get('PATH', '')}",
    )
    env.update(extra)
    return env


def gunicorn_argv(port: int, *, preload: bool, workers: int = 4) -> list[str]:
    argv = [
        str(BIN / "gunicorn"),
        "-c",
        "python:telemetry_otel.host.gunicorn",
        "-w",
        str(workers),
        "-k",
        "uvicorn_worker.UvicornWorker",
        "--no-control-socket",
        "-b",
        f"127.0.0.1:{port}",
        "--graceful-timeout",
        "10",
    ]
    if preload:
        argv.append("--preload")
    return [*argv, "host_workers_app:app"]


def uvicorn_argv(port: int, workers: int = 4) -> list[str]:
    return [
        str(BIN / "uvicorn"),
        "host_workers_app:app",
        "--workers",
        str(workers),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
