"""Fixtures starting REAL metric backends on 127.0.0.1 for the tests under tests/backends.

The implementation lives in ``_support.py`` next to this file, loaded by path (the tests directory is
not a package and pytest runs with ``--import-mode=importlib``). Every server is session-scoped and
stopped at the end of the session; the ``start_*`` factories start extra, independent instances.
A missing backend binary fails the test with a message naming ``./dev test``: never a skip.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from _support import Carbon, InfluxDB, Prometheus, Promtool, Server, VictoriaMetrics

_SUPPORT_MODULE = "telemetry_otel_tests_backends_support"


def _load_support() -> ModuleType:
    module = sys.modules.get(_SUPPORT_MODULE)
    if module is None:
        spec = importlib.util.spec_from_file_location(
            _SUPPORT_MODULE, Path(__file__).with_name("_support.py")
        )
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[_SUPPORT_MODULE] = module
        spec.loader.exec_module(module)
    return module


support = _load_support()


def _factory(
    tmp_path_factory: pytest.TempPathFactory, make: Callable[..., Server]
) -> Iterator[Callable[..., Any]]:
    started: list[Server] = []

    def start(*args: Any, **kwargs: Any) -> Server:
        server = make(tmp_path_factory.mktemp(make.__name__.lower()), *args, **kwargs)
        started.append(server)
        return server.start()

    yield start
    for server in reversed(started):
        server.stop()


@pytest.fixture(scope="session")
def start_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Prometheus]]:
    """``start_prometheus(targets: list[str], scrape_interval="1s", job="static") -> Prometheus``."""
    yield from _factory(tmp_path_factory, support.Prometheus)


@pytest.fixture(scope="session")
def start_victoria_metrics(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., VictoriaMetrics]]:
    """``start_victoria_metrics() -> VictoriaMetrics``: a fresh, independent instance."""
    yield from _factory(tmp_path_factory, support.VictoriaMetrics)


@pytest.fixture(scope="session")
def start_influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., InfluxDB]]:
    """``start_influxdb() -> InfluxDB``: a fresh, independent instance."""
    yield from _factory(tmp_path_factory, support.InfluxDB)


@pytest.fixture(scope="session")
def start_carbon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Carbon]]:
    """``start_carbon() -> Carbon``: a fresh, independent instance."""
    yield from _factory(tmp_path_factory, support.Carbon)


@pytest.fixture(scope="session")
def prometheus(start_prometheus: Callable[..., Prometheus]) -> Prometheus:
    """The shared Prometheus (no static targets): add targets with ``prometheus.scrape(host_port, job)``."""
    return start_prometheus([])


@pytest.fixture(scope="session")
def prometheus_exemplars(start_prometheus: Callable[..., Prometheus]) -> Prometheus:
    """A Prometheus storing exemplars (``--enable-feature=exemplar-storage``); add targets with
    ``prometheus_exemplars.scrape(host_port, job)``."""
    return start_prometheus([], features=["exemplar-storage"])


@pytest.fixture(scope="session")
def victoria_metrics(start_victoria_metrics: Callable[..., VictoriaMetrics]) -> VictoriaMetrics:
    """The shared VictoriaMetrics."""
    return start_victoria_metrics()


@pytest.fixture(scope="session")
def influxdb(start_influxdb: Callable[..., InfluxDB]) -> InfluxDB:
    """The shared InfluxDB; a test that stops it should use ``with influxdb.stopped(): ...``."""
    return start_influxdb()


@pytest.fixture(scope="session")
def carbon(start_carbon: Callable[..., Carbon]) -> Carbon:
    """The shared carbon-cache; a test that stops it should use ``with carbon.stopped(): ...``."""
    return start_carbon()


@pytest.fixture(scope="session")
def promtool() -> Promtool:
    """``promtool.check_metrics(text) -> (exit_code, output)``."""
    return support.Promtool()


@pytest.fixture(scope="session")
def free_port() -> Callable[..., int]:
    """``free_port(udp=False) -> int``: a port free on 127.0.0.1 now (declare first, bind later)."""
    return support.free_port


@pytest.fixture
def serve_text() -> Iterator[Callable[..., str]]:
    """``serve_text(body: bytes, content_type=...) -> "127.0.0.1:PORT"``: a scrape target serving ``body``."""
    servers: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def serve(body: bytes, content_type: str = "text/plain; version=0.0.4; charset=utf-8") -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"127.0.0.1:{server.server_address[1]}"

    yield serve
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="session")
def start_prometheus_agent(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., Any]]:
    """``start_prometheus_agent(targets, remote_write_url, scrape_interval="1s") -> PrometheusAgent``."""
    yield from _factory(tmp_path_factory, support.PrometheusAgent)


@pytest.fixture(scope="session")
def start_telemetry_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Any]]:
    """``start_telemetry_process(args, probe_path, port=0)``: ``python -m telemetry_otel`` as a process."""
    yield from _factory(tmp_path_factory, support.TelemetryProcess)


@pytest.fixture(scope="session")
def backend_support() -> ModuleType:
    """The harness module itself (its server classes write the configurations the docs show)."""
    return support
