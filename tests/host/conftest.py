"""Fixtures for the host tests: real multi-worker servers and a real Prometheus (see ``_servers.py``)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

HERE = Path(__file__).parent


def load(name: str, path: Path) -> ModuleType:
    """A module of the tests directory, loaded by path once per session."""
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module


servers = load("telemetry_otel_tests_host_servers", HERE / "_servers.py")


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """``start_server(kind, **env) -> WorkerServer`` with 4 workers all reporting; stopped at the end."""
    started: list[Any] = []
    aggregators: list[int] = []

    def start(kind: str, **extra: str) -> Any:
        port, endpoint_port = servers.free_port(), servers.free_port()
        env = servers.server_env(endpoint_port, **extra)
        if kind == "uvicorn":
            argv = servers.uvicorn_argv(port)
        else:
            argv = servers.gunicorn_argv(port, preload=kind == "gunicorn-preload")
        server = servers.WorkerServer(argv, port, env, tmp_path)
        started.append(server)
        expected = 5 if kind == "gunicorn-preload" else 4  # --preload: the master reports too
        try:
            servers.wait_for(
                lambda: servers.get(f"{server.url}/metrics")[0],
                lambda s: s == 200,
                30,
                "the server to answer",
            )
            servers.wait_for(
                server.worker_pids, lambda p: len(p) == expected, 30, f"{expected} reporting processes"
            )
            aggregators.append(int(server.host_document()["aggregator_pid"]))
        except AssertionError as exc:
            with contextlib.suppress(Exception):  # an aggregator that started must not outlive the test
                aggregators.append(int(server.host_document()["aggregator_pid"]))
            raise AssertionError(f"{exc}\n--- server log ---\n{server.tail()}") from None
        return server

    yield start
    for server in reversed(started):
        server.stop()
    for pid in aggregators:  # one started by a worker (uvicorn) lives in its own session
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


@pytest.fixture(scope="session")
def host_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real Prometheus (1 s scrapes); add a target with ``host_prometheus.scrape(host_port, job)``."""
    support = load("telemetry_otel_tests_backends_support", HERE.parent / "backends" / "_support.py")
    server = support.Prometheus(tmp_path_factory.mktemp("prometheus"), [])
    server.start()
    yield server
    server.stop()
