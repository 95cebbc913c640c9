"""gunicorn hooks: one host aggregator for all the workers of a gunicorn server.

Use it as gunicorn's configuration module (or import its names into yours)::

    gunicorn -c python:telemetry_otel.host.gunicorn -w 4 -k uvicorn_worker.UvicornWorker app:app

Loading this module (before gunicorn imports the application, with or without ``--preload``) sets
``TELEMETRY_OTEL_HOST_ENDPOINT`` to a free loopback port unless it is set already, and starts the
host aggregator there as a child process of the gunicorn master; the workers inherit the variable,
so every runtime they set up reports to it and answers for the whole host. ``on_exit`` stops the
aggregator after its final export. No thread is started in the master (gunicorn forks it), and no
per-worker hook is needed: the aggregator notices a worker is gone by its pid (``worker_exit``
never runs with Uvicorn workers). Push exporters run in the aggregator, once per host: set
``OTEL_METRICS_EXPORTER`` in gunicorn's environment.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from typing import Any

__all__ = ["aggregator_process", "on_exit"]

_VARIABLE = "TELEMETRY_OTEL_HOST_ENDPOINT"
_START_SECONDS = 10.0
_STOP_SECONDS = 35.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start() -> subprocess.Popen[bytes]:
    endpoint = os.environ.get(_VARIABLE, "").strip()
    if not endpoint:
        endpoint = os.environ[_VARIABLE] = f"127.0.0.1:{_free_port()}"
    from telemetry_otel.host._link import parse_endpoint

    host, port = parse_endpoint(endpoint)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "telemetry_otel.host",
            "--listen",
            f"{host}:{port}",
            "--exit-when-idle",
            "--supervisor-pid",
            str(os.getpid()),
        ],
        stdin=subprocess.DEVNULL,
        cwd="/",  # "-m" puts the working directory first on sys.path: the installed package runs
    )
    deadline = time.monotonic() + _START_SECONDS
    while time.monotonic() < deadline:
        try:  # ours, or one that already listened there (ours then exits: the port is taken)
            socket.create_connection((host, port), timeout=0.5).close()
            return process
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.05)
    raise RuntimeError(f"the host aggregator did not listen on {host}:{port} within {_START_SECONDS:g} s")


#: The host aggregator process this module started.
aggregator_process = _start()


def on_exit(server: Any) -> None:
    """gunicorn master, at exit: stop the aggregator (it exports a final time)."""
    if aggregator_process.poll() is None:
        aggregator_process.terminate()
        try:
            aggregator_process.wait(_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            aggregator_process.kill()
