"""``/metrics`` for a process that does not run ``telemetry-otel serve``: the OTel Prometheus convention.

With ``OTEL_METRICS_EXPORTER=prometheus``, the OpenTelemetry SDK's Prometheus exporter serves a scrape
route on ``OTEL_EXPORTER_PROMETHEUS_HOST``:``OTEL_EXPORTER_PROMETHEUS_PORT`` (default
``localhost:9464``). A script or a worker of another framework gets the same here, from the
runtime's collection cycle and this package's encoders: Prometheus text 0.0.4, or OpenMetrics 1.0
when ``Accept`` asks for it, gzip when ``Accept-Encoding`` allows. A small standard-library
``ThreadingHTTPServer`` on a daemon thread: no event loop, no dependency.

Every answer but the scrape itself is JSON: 404 naming the route, 405 for another method, 400 for a
query string (the route takes none), 503 when no collection can be made.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.sdk.metrics.export import MetricsData

from telemetry_otel._config import ConfigurationError
from telemetry_otel.formats import negotiate_exposition, wants_gzip

__all__ = ["DEFAULT_PROMETHEUS_HOST", "DEFAULT_PROMETHEUS_PORT", "ScrapeServer", "prometheus_address"]

#: ``OTEL_EXPORTER_PROMETHEUS_HOST`` default of the OpenTelemetry specification.
DEFAULT_PROMETHEUS_HOST = "localhost"
#: ``OTEL_EXPORTER_PROMETHEUS_PORT`` default of the OpenTelemetry specification.
DEFAULT_PROMETHEUS_PORT = 9464
ROUTE = "/metrics"
#: How often the serving thread looks for a stop request: the longest ``close()`` waits for it.
_POLL_SECONDS = 0.05

_logger = logging.getLogger("telemetry_otel.prometheus")


def prometheus_address(environ: Mapping[str, str] | None = None) -> tuple[str, int]:
    """``(host, port)`` from ``OTEL_EXPORTER_PROMETHEUS_HOST`` and ``_PORT``; a bad port is refused."""
    env = os.environ if environ is None else environ
    host = env.get("OTEL_EXPORTER_PROMETHEUS_HOST", "").strip() or DEFAULT_PROMETHEUS_HOST
    raw = env.get("OTEL_EXPORTER_PROMETHEUS_PORT", "").strip()
    if not raw:
        return host, DEFAULT_PROMETHEUS_PORT
    if not raw.isdigit() or not 0 <= int(raw) <= 65535:
        raise ConfigurationError(f"OTEL_EXPORTER_PROMETHEUS_PORT={raw!r} is not a port number (0-65535)")
    return host, int(raw)


class ScrapeServer:
    """Serves ``GET /metrics`` from ``source`` on a daemon thread until :meth:`close`; every sample
    carries the ``agent`` label (its resource's ``service.name``, docs/fleet.md)."""

    def __init__(self, server: _Server) -> None:
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(_POLL_SECONDS,), name="telemetry-prometheus", daemon=True
        )
        self._thread.start()
        self._closed = False
        self._lock = threading.Lock()

    @classmethod
    def start(cls, source: Callable[[], MetricsData], host: str, port: int) -> ScrapeServer | None:
        """Listen on ``host:port`` and serve; None (with a warning logged) when that fails."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
            server = _Server(infos[0][0], infos[0][4], source)
        except OSError as exc:
            _logger.warning(
                "cannot serve %s on %s:%d (OTEL_EXPORTER_PROMETHEUS_HOST/_PORT): %s; the process runs on "
                "without a scrape route",
                ROUTE,
                host,
                port,
                exc.strerror or exc,
            )
            return None
        scrape = cls(server)
        bound_host, bound_port = scrape.address
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        _logger.info("serving Prometheus %s on http://%s:%d%s", ROUTE, shown, bound_port, ROUTE)
        return scrape

    @property
    def address(self) -> tuple[str, int]:
        """The address listened on: (host, port)."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def abandon(self) -> None:
        """In a forked child: the serving thread is the parent's; close only this process's copy of
        the listening socket (the parent serves on)."""
        self._closed = True
        self._lock = threading.Lock()
        self._server.socket.close()

    def close(self) -> None:
        """Stop serving and release the port (a second call does nothing)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(1.0)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, family: socket.AddressFamily, address: Any, source: Callable[[], MetricsData]) -> None:
        self.address_family = family  # read by the base class when it makes the socket
        #: Each scrape is answered from what this returns (the runtime's collection cycle).
        self.source = source
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "telemetry-otel"
    error_content_type = "application/json"

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path != ROUTE:
            self._json(404, {"error": f"no route {path!r}", "routes": [ROUTE]})
            return
        if query:
            self._json(400, {"error": f"{ROUTE} takes no query parameters", "allowed": []})
            return
        try:
            data = self.server.source()
        except Exception as exc:  # no collection at all: the scrape fails, the process does not
            _logger.warning("collection for a scrape failed: %s: %s", type(exc).__name__, exc)
            self._json(503, {"error": f"collection failed: {type(exc).__name__}: {exc}"})
            return
        encode, content_type = negotiate_exposition(self.headers.get("Accept"))
        body = encode(data, agent_label=True).encode("utf-8")  # every sample names its agent
        headers = {"Content-Type": content_type, "Vary": "Accept, Accept-Encoding"}
        if wants_gzip(self.headers.get("Accept-Encoding")):
            body = gzip.compress(body, compresslevel=6)
            headers["Content-Encoding"] = "gzip"
        self._send(200, body, headers)

    def do_POST(self) -> None:
        self._refuse_method()

    def do_PUT(self) -> None:
        self._refuse_method()

    def do_DELETE(self) -> None:
        self._refuse_method()

    def do_PATCH(self) -> None:
        self._refuse_method()

    def do_HEAD(self) -> None:
        self._refuse_method()

    def do_OPTIONS(self) -> None:
        self._refuse_method()

    def _refuse_method(self) -> None:
        self._json(405, {"error": f"method {self.command} is not allowed here", "allowed": ["GET"]})

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors the standard library finds (a bad request line, an unknown method) as JSON too."""
        self.close_connection = True
        self._json(code, {"error": message or self.responses.get(code, ("error",))[0]})

    def _json(self, status: int, document: dict[str, Any]) -> None:
        body = json.dumps(document).encode("utf-8")
        self._send(status, body, {"Content-Type": "application/json"})

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        _logger.debug("%s %s", self.address_string(), format % args)
