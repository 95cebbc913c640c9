"""The host aggregator: an OTLP/HTTP receiver on loopback that owns the host picture.

Routes (HTTP/1.1, keep-alive):

* ``POST /v1/metrics``: a standard OTLP/HTTP protobuf ``ExportMetricsServiceRequest`` (gzip
  allowed), the cumulative state of one worker, named by its resource's ``service.instance.id``
  and ``process.pid``. Answered with an empty ``ExportMetricsServiceResponse``, 400 for a body
  that is not one, 415 for another content type. An OpenTelemetry Collector accepts the same.
* ``POST /v1/state``: the worker's components, health and snapshot outcomes as JSON (OTLP has no
  place for them).
* ``GET /v1/host[?generation=N]``: the host picture as JSON: the folded metrics (OTLP protobuf,
  base64), every live worker's state, the workers and the retired count. ``304`` when the picture
  is still generation ``N``.

A worker is retired (its counts folded into the retired totals) when its process is gone: checked
by pid (and process start time, so a reused pid is not mistaken for the worker) at least every
``SWEEP_SECONDS``; a sender without ``process.pid`` is retired after ``retire_after_seconds``
without a report. The push exporters of the host run here, once per host, fed the host picture.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.sdk.metrics.export import MetricsData

from telemetry_otel._config import (
    DEFAULT_EXPORT_INTERVAL_MILLIS,
    DEFAULT_EXPORT_TIMEOUT_MILLIS,
    TelemetryConfig,
)
from telemetry_otel._export_hooks import build_pipeline
from telemetry_otel.exporters import ExportDemand, ExportPipeline, PushExporter
from telemetry_otel.host._fold import DEFAULT_HOST_GAUGE_RULE, HostFold, HostGaugeRule
from telemetry_otel.host._otlp import OTLP_CONTENT_TYPE, decode_request, encode_request
from telemetry_otel.vocabulary import PROCESS_PID, SERVICE_INSTANCE_ID

__all__ = ["DEFAULT_RETIRE_AFTER_SECONDS", "SWEEP_SECONDS", "HostAggregator", "process_alive"]

_logger = logging.getLogger("telemetry_otel.host")
#: How often the aggregator looks for workers that are gone.
SWEEP_SECONDS = 0.25
#: A sender that gives no pid is retired after this long without a report.
DEFAULT_RETIRE_AFTER_SECONDS = 60.0
_MAX_BODY = 64 * 1024 * 1024


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks (Linux ``/proc``), or None where unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] in (b"Z", b"X"):  # a zombie has exited: only its exit status is left
        return -1
    return int(fields[19])


def process_alive(pid: int, start_ticks: int | None = None) -> bool:
    """True while process ``pid`` runs (and, with ``start_ticks``, is the same process)."""
    ticks = _start_ticks(pid)
    if ticks is not None:
        return ticks != -1 and (start_ticks is None or ticks == start_ticks)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class HostAggregator:
    """Owns one host's picture: folds workers' reports, serves the picture, runs the host's exporters.

    Start it with :meth:`start` (a daemon thread serves HTTP); stop it with :meth:`close`, which
    runs the exporters' final export. ``idle_exit_seconds``: close by itself once no live worker has
    been seen for that long (an aggregator a worker started must not outlive the workers).
    """

    def __init__(
        self,
        *,
        gauge_rules: Mapping[str, HostGaugeRule] | None = None,
        default_gauge_rule: HostGaugeRule = DEFAULT_HOST_GAUGE_RULE,
        exporters: Sequence[PushExporter] = (),
        export_interval_millis: float = DEFAULT_EXPORT_INTERVAL_MILLIS,
        export_timeout_millis: float = DEFAULT_EXPORT_TIMEOUT_MILLIS,
        retire_after_seconds: float = DEFAULT_RETIRE_AFTER_SECONDS,
        idle_exit_seconds: float | None = None,
        alive: Callable[[int, int | None], bool] = process_alive,
        config: TelemetryConfig | None = None,
    ) -> None:
        self.instance_id = str(uuid.uuid4())
        self.fold = HostFold(
            instance_id=self.instance_id,
            start_unix_nano=time.time_ns(),
            gauge_rules=gauge_rules,
            default_gauge_rule=default_gauge_rule,
        )
        self._lock = threading.Lock()
        self._alive = alive
        self._retire_after = retire_after_seconds
        self._idle_exit = idle_exit_seconds
        self._generation = 0
        self._states: dict[str, dict[str, Any]] = {}
        self._ticks: dict[str, int | None] = {}
        self._last_seen: dict[str, float] = {}
        self._picture: tuple[int, MetricsData, bytes] | None = None
        self._document: tuple[int, bytes] | None = None
        self._idle_since = time.monotonic()
        self._closed = threading.Event()
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        #: Reports received, and reports refused (not OTLP, wrong content type).
        self.reports = 0
        self.refused = 0
        # With the runtime's settings, the exporters keep its retry policy, buffers and spool.
        self.exports = (
            ExportPipeline(
                self._export_source,
                exporters,
                interval_millis=export_interval_millis,
                timeout_millis=export_timeout_millis,
            )
            if config is None
            else build_pipeline(config, self._export_source, exporters)
        )

    @classmethod
    def start(cls, host: str, port: int, **options: Any) -> HostAggregator:
        """Listen on ``host:port`` (0: any free port) and serve; ``OSError`` when the port is taken."""
        aggregator = cls(**options)
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        aggregator._server = _Server(infos[0][0], infos[0][4], aggregator)
        serve = threading.Thread(
            target=aggregator._server.serve_forever, args=(0.05,), name="telemetry-host-http", daemon=True
        )
        sweep = threading.Thread(target=aggregator._sweep_loop, name="telemetry-host-sweep", daemon=True)
        aggregator._threads = [serve, sweep]
        for thread in aggregator._threads:
            thread.start()
        aggregator.exports.start()
        _logger.info("host aggregator listening on %s:%d", *aggregator.address)
        return aggregator

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) listened on."""
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def generation(self) -> int:
        """The picture number: it grows with every report and every retirement."""
        return self._generation

    # -- what the routes do ----------------------------------------------------------------------

    def receive(self, body: bytes) -> list[str]:
        """Fold one OTLP report in; returns the problems found (``ValueError``: not OTLP)."""
        data = decode_request(body)
        now = time.time_ns()
        problems: list[str] = []
        with self._lock:
            for resource_metrics in data.resource_metrics:
                attributes = resource_metrics.resource.attributes
                instance = str(attributes.get(SERVICE_INSTANCE_ID, ""))
                raw_pid = attributes.get(PROCESS_PID)
                pid = int(raw_pid) if isinstance(raw_pid, int) and not isinstance(raw_pid, bool) else None
                if instance and instance not in self._ticks:
                    self._ticks[instance] = None if pid is None else _start_ticks(pid)
                problems += self.fold.report(MetricsData([resource_metrics]), pid=pid, now_unix_nano=now)
                self._last_seen[instance] = time.monotonic()
            self._generation += 1
            self.reports += 1
        for problem in problems:
            _logger.warning("host report: %s", problem)
        return problems

    def receive_state(self, document: Mapping[str, Any]) -> None:
        """Keep one worker's components, health and outcomes (``ValueError`` without an instance id).

        It shows in the picture from the worker's next metrics report (sent right after it): one new
        picture per report, not two."""
        instance = document.get("instance_id")
        if not isinstance(instance, str) or not instance:
            raise ValueError("a state document names its worker in 'instance_id'")
        with self._lock:
            self._states[instance] = dict(document)

    def picture(self) -> MetricsData:
        """The host totals now (the same object while nothing changed)."""
        return self._current()[1]

    def document(self, known_generation: int | None) -> bytes | None:
        """The host picture as JSON, or None when it is still ``known_generation``."""
        generation, _, encoded = self._current()
        if known_generation == generation:
            return None
        cached = self._document
        if cached is not None and cached[0] == generation:
            return cached[1]
        with self._lock:
            workers = self.fold.workers
            states = [self._states[w.instance_id] for w in workers if w.instance_id in self._states]
            retired = self.fold.retired_workers
        body = {
            "generation": generation,
            "time_unix_nano": time.time_ns(),
            "start_unix_nano": self.fold.start_unix_nano,
            "aggregator_pid": os.getpid(),
            "retired_workers": retired,
            "workers": [
                {
                    "instance_id": w.instance_id,
                    "pid": w.pid,
                    "reports": w.reports,
                    "last_report_unix_nano": w.last_report_unix_nano,
                    "counters": dict(w.counters),
                }
                for w in workers
            ],
            "states": states,
            "metrics": base64.b64encode(encoded).decode("ascii"),
        }
        document = json.dumps(body, separators=(",", ":")).encode("utf-8")
        self._document = (generation, document)  # every worker asks for the same one
        return document

    def _current(self) -> tuple[int, MetricsData, bytes]:
        with self._lock:
            cached = self._picture
            if cached is not None and cached[0] == self._generation:
                return cached
            generation = self._generation
            data = self.fold.picture(time.time_ns())
            self._picture = (generation, data, encode_request(data))
            return self._picture

    def _export_source(self, demand: ExportDemand) -> MetricsData:
        return self.picture()

    # -- retirement and lifetime -----------------------------------------------------------------

    def sweep(self) -> int:
        """Retire the workers that are gone; returns how many were retired."""
        now = time.monotonic()
        retired = 0
        with self._lock:
            for instance, pid in self.fold.worker_pids().items():
                if pid is not None:
                    gone = not self._alive(pid, self._ticks.get(instance))
                else:
                    gone = now - self._last_seen.get(instance, now) > self._retire_after
                if gone and self.fold.retire(instance):
                    retired += 1
                    self._states.pop(instance, None)
                    self._ticks.pop(instance, None)
                    self._last_seen.pop(instance, None)
                    _logger.info(
                        "worker %s (pid %s) is gone: its counts are in the retired total", instance, pid
                    )
            if retired:
                self._generation += 1
            if self.fold.worker_pids():
                self._idle_since = now
        return retired

    def _sweep_loop(self) -> None:
        while not self._closed.wait(SWEEP_SECONDS):
            try:
                self.sweep()
            except Exception:  # never let the sweeper die: the picture would keep dead workers
                _logger.exception("host sweep failed")
            if self._idle_exit is not None and time.monotonic() - self._idle_since > self._idle_exit:
                _logger.info("no worker for %.0f s: the host aggregator stops", self._idle_exit)
                threading.Thread(target=self.close, name="telemetry-host-close", daemon=True).start()
                return

    def drain(self, timeout_seconds: float, *, supervisor_pid: int | None = None) -> bool:
        """Wait until every live worker is gone (their final reports in), at most ``timeout_seconds``;
        True when none is left. A stop signal often reaches the workers and the aggregator at once.
        ``supervisor_pid`` (the gunicorn master, which reports too with ``--preload``) is not waited
        for: it waits for the aggregator."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            self.sweep()
            with self._lock:
                if not set(self.fold.worker_pids().values()) - {supervisor_pid}:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the aggregator is closed; True if it is."""
        return self._closed.wait(timeout)

    def close(self, timeout_millis: float = DEFAULT_EXPORT_TIMEOUT_MILLIS) -> None:
        """Final export of the host picture, then stop serving (a second call does nothing)."""
        with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()
        self.sweep()  # workers that exited gracefully are in the final export as retired
        self.exports.shutdown(timeout_millis)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(1.0)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False  # a second aggregator on the same port must fail to bind

    def __init__(self, family: socket.AddressFamily, address: Any, aggregator: HostAggregator) -> None:
        self.address_family = family
        self.aggregator = aggregator
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "telemetry-otel-host"

    def _closed(self) -> bool:
        """A connection kept alive past :meth:`HostAggregator.close` is answered 503 and closed."""
        if not self.server.aggregator.closed:
            return False
        self.close_connection = True
        self._json(503, {"error": "the host aggregator is stopping"})
        return True

    def do_POST(self) -> None:
        if self._closed():
            return
        path = self.path.partition("?")[0]
        body = self._body()
        if body is None:
            return
        aggregator = self.server.aggregator
        if path == "/v1/metrics":
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            if content_type != OTLP_CONTENT_TYPE:
                aggregator.refused += 1
                self._json(415, {"error": f"content type {content_type!r}", "allowed": [OTLP_CONTENT_TYPE]})
                return
            try:
                aggregator.receive(body)
            except ValueError as exc:
                aggregator.refused += 1
                self._json(400, {"error": str(exc)})
                return
            response = ExportMetricsServiceResponse().SerializeToString()
            self._send(200, response, OTLP_CONTENT_TYPE)
        elif path == "/v1/state":
            try:
                document = json.loads(body)
                aggregator.receive_state(document)
            except (ValueError, AttributeError) as exc:
                self._json(400, {"error": f"not a state document: {exc}"})
                return
            self._json(200, {})
        else:
            self._json(
                404, {"error": f"no route {path!r}", "routes": ["/v1/metrics", "/v1/state", "/v1/host"]}
            )

    def do_GET(self) -> None:
        if self._closed():
            return
        path, _, query = self.path.partition("?")
        if path != "/v1/host":
            self._json(
                404, {"error": f"no route {path!r}", "routes": ["/v1/metrics", "/v1/state", "/v1/host"]}
            )
            return
        raw = parse_qs(query).get("generation", [None])[0]
        known = int(raw) if raw is not None and raw.isdigit() else None
        document = self.server.aggregator.document(known)
        if document is None:
            self._send(304, b"", "application/json")
            return
        self._send(200, document, "application/json")

    def _body(self) -> bytes | None:
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 <= length <= _MAX_BODY:
            self._json(413, {"error": f"a body of at most {_MAX_BODY} bytes"})
            return None
        body = self.rfile.read(length)
        if (self.headers.get("Content-Encoding") or "").strip() == "gzip":
            try:
                body = gzip.decompress(body)
            except OSError:
                self._json(400, {"error": "the gzip body does not decompress"})
                return None
        return body

    def _json(self, status: int, document: dict[str, Any]) -> None:
        self._send(status, json.dumps(document).encode("utf-8"), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        _logger.debug("%s %s", self.address_string(), format % args)
