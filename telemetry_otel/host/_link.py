"""A worker's link to its host aggregator: it reports every interval and fetches the host picture.

The reporter thread makes one local collection every ``interval_seconds`` and sends it as OTLP
(``POST /v1/metrics``, the resource carrying ``service.instance.id`` and ``process.pid``) with the
components' state (``POST /v1/state``). A graceful shutdown sends a final report. When nothing
listens at the endpoint and ``autostart`` is on, the worker starts the aggregator
(``python -m telemetry_otel.host``) in a session of its own; concurrent workers race to bind the
port and the losers exit, so exactly one aggregator serves the host.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from opentelemetry.sdk.metrics.export import MetricsData, ResourceMetrics
from opentelemetry.sdk.resources import Resource

from telemetry_otel._collection import Collection, HostRecord, WorkerRecord
from telemetry_otel.host._otlp import OTLP_CONTENT_TYPE, decode_request, encode_request
from telemetry_otel.host._state import merge_states, state_document
from telemetry_otel.vocabulary import PROCESS_PID, SERVICE_INSTANCE_ID

__all__ = ["HostLink", "HostUnreachableError", "parse_endpoint"]

_logger = logging.getLogger("telemetry_otel.host")
#: Fewest seconds between two attempts of one worker to start an aggregator.
_AUTOSTART_EVERY_SECONDS = 2.0
#: How long a worker waits for the aggregator it started to listen.
_AUTOSTART_WAIT_SECONDS = 5.0
#: How soon a failed report is tried again.
_RETRY_SECONDS = 0.5


class HostUnreachableError(ConnectionError):
    """The host aggregator does not answer at its endpoint."""


def parse_endpoint(text: str) -> tuple[str, int]:
    """``host:port`` or ``http://host:port`` (``TELEMETRY_OTEL_HOST_ENDPOINT``); ``ValueError`` otherwise."""
    raw = text.strip()
    for prefix in ("http://", "https://"):
        if raw.startswith(prefix):
            if prefix == "https://":
                raise ValueError(f"host endpoint {text!r}: the host aggregator speaks plain HTTP on loopback")
            raw = raw[len(prefix) :]
    raw = raw.rstrip("/")
    host, sep, port = raw.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise ValueError(f"host endpoint {text!r} is not host:port (e.g. 127.0.0.1:4319)")
    return host, int(port)


@dataclass(frozen=True)
class _Picture:
    generation: int
    collection: Collection


class HostLink:
    """One worker's reports to, and reads from, the host aggregator at ``endpoint``."""

    def __init__(
        self,
        endpoint: tuple[str, int],
        *,
        collect_local: Callable[[float], Collection],
        resource: Callable[[], Resource],
        interval_seconds: float,
        timeout_seconds: float,
        autostart: bool = True,
    ) -> None:
        self.endpoint = endpoint
        self.interval_seconds = interval_seconds
        self.timeout_seconds = timeout_seconds
        self.autostart = autostart
        self._collect_local = collect_local
        self._resource = resource
        self._connections = threading.local()
        self._open: set[http.client.HTTPConnection] = set()
        self._open_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._running = False
        self._report_lock = threading.Lock()
        self._last_autostart = 0.0
        self._closed = False
        #: Reports sent, and reports that failed (logged).
        self.reports = 0
        self.failed_reports = 0
        self._failing = False

    # -- the reporter ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the reporter thread (reports at once, then every interval)."""
        if self._closed or (self._thread is not None and self._thread.is_alive()):
            return
        self._stop = threading.Event()
        self._running = True
        self._thread = threading.Thread(target=self._run, name="telemetry-host-report", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # At a fixed rate: a report that took long does not push every later one back, so a count
        # reaches the host at most one interval plus one collection after it was recorded.
        stop = self._stop
        due = time.monotonic()
        while True:
            reported = self.report_now()
            # A failed report (the aggregator is still starting) is tried again soon, not an interval later.
            due += self.interval_seconds if reported else min(self.interval_seconds, _RETRY_SECONDS)
            now = time.monotonic()
            if due < now:  # more than an interval behind: the next report is now, no catching up
                due = now
            if stop.wait(due - now):
                return

    def report_now(self) -> bool:
        """One local collection, sent to the host now; False when it could not be (counted; logged as
        a warning when reports start failing and again when they recover, not on every retry)."""
        with self._report_lock:
            try:
                collection = self._collect_local(self.timeout_seconds)
                self._send(collection)
            except Exception as exc:
                self.failed_reports += 1
                log = _logger.debug if self._failing else _logger.warning
                log("report to the host aggregator failed: %s: %s", type(exc).__name__, exc)
                self._failing = True
                return False
            if self._failing:
                _logger.warning("reports to the host aggregator at %s succeed again", self._where())
                self._failing = False
            self.reports += 1
            return True

    def _send(self, collection: Collection) -> None:
        metrics = _with_pid(collection.metrics, self._resource(), os.getpid())
        instance = _instance_of(metrics)
        body = encode_request(metrics)
        state = {"instance_id": instance, **state_document(collection)}
        # The state first: the metrics that follow make the new picture, state included.
        self._request("POST", "/v1/state", json.dumps(state).encode("utf-8"), "application/json")
        self._request("POST", "/v1/metrics", body, OTLP_CONTENT_TYPE)

    def stop(self, join_seconds: float = 1.0) -> None:
        """Stop the reporter thread (before a fork; :meth:`start` resumes it)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(join_seconds)
        self._thread = None

    def close(self, *, final_report: bool = True) -> None:
        """Stop reporting; with ``final_report``, send the worker's final counts first."""
        if self._closed:
            return
        running = self._running
        self.stop()
        self._closed = True
        if final_report and running:
            self.report_now()
        self.close_connections()

    def after_fork_in_child(self) -> None:
        """A forked child: no reporter thread, no connections, locks re-made; report as itself."""
        self._connections = threading.local()
        self._open = set()  # the parent's sockets stay the parent's
        self._open_lock = threading.Lock()
        self._report_lock = threading.Lock()
        self._thread = None
        self._stop = threading.Event()
        if self._running and not self._closed:
            self.start()

    # -- the host picture --------------------------------------------------------------------------

    def fetch(self, known: int | None) -> _Picture | None:
        """The host picture, or None while it is still generation ``known``."""
        path = "/v1/host" if known is None else f"/v1/host?generation={known}"
        started = time.perf_counter()
        status, body = self._request("GET", path, None, None)
        if status == 304:
            return None
        document = json.loads(body)
        metrics = decode_request(base64.b64decode(document["metrics"]))
        components, outcomes, buses = merge_states(document.get("states", ()))
        host = HostRecord(
            workers=tuple(
                WorkerRecord(
                    w["instance_id"],
                    w.get("pid"),
                    int(w["reports"]),
                    int(w["last_report_unix_nano"]),
                    {str(name): float(value) for name, value in (w.get("counters") or {}).items()},
                )
                for w in document.get("workers", ())
            ),
            retired_workers=int(document.get("retired_workers", 0)),
            generation=int(document["generation"]),
            aggregator_pid=document.get("aggregator_pid"),
        )
        collection = Collection(
            metrics=metrics,
            outcomes=outcomes,
            time_unix_nano=int(document["time_unix_nano"]),
            duration_seconds=time.perf_counter() - started,
            sdk_disabled=False,
            components=components,
            buses=buses,
            start_unix_nano=int(document["time_unix_nano"]),
            host=host,
        )
        return _Picture(host.generation, collection)

    # -- HTTP --------------------------------------------------------------------------------------

    def _request(
        self, method: str, path: str, body: bytes | None, content_type: str | None
    ) -> tuple[int, bytes]:
        headers = {} if content_type is None else {"Content-Type": content_type}
        for attempt in range(2):
            connection = self._connection()
            try:
                connection.request(method, path, body, headers)
                response = connection.getresponse()
                data = response.read()
            except ConnectionRefusedError:
                self.drop_connection()
                if attempt == 0 and self.autostart and self._start_aggregator():
                    continue
                raise HostUnreachableError(f"no host aggregator answers at {self._where()}") from None
            except (OSError, http.client.HTTPException):
                self.drop_connection()  # a kept-alive connection the aggregator closed: once more
                if attempt == 0:
                    continue
                raise HostUnreachableError(f"the host aggregator at {self._where()} did not answer") from None
            if response.status >= 400:
                raise HostUnreachableError(
                    f"the host aggregator at {self._where()} answered {response.status}: {data[:200]!r}"
                )
            return response.status, data
        raise HostUnreachableError(f"no host aggregator answers at {self._where()}")  # pragma: no cover

    def _where(self) -> str:
        return f"{self.endpoint[0]}:{self.endpoint[1]}"

    def _connection(self) -> http.client.HTTPConnection:
        """This thread's kept-alive connection to the aggregator (one per thread, all closed by
        :meth:`close_connections`)."""
        connection: http.client.HTTPConnection | None = getattr(self._connections, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(*self.endpoint, timeout=self.timeout_seconds)
            self._connections.connection = connection
            with self._open_lock:
                self._open.add(connection)
        return connection

    def drop_connection(self) -> None:
        """Close this thread's connection (a thread about to end, or a connection that failed)."""
        connection = getattr(self._connections, "connection", None)
        if connection is not None:
            connection.close()
            self._connections.connection = None
            with self._open_lock:
                self._open.discard(connection)

    def close_connections(self) -> None:
        """Close every thread's connection (a later request opens a new one)."""
        with self._open_lock:
            connections, self._open = list(self._open), set()
        for connection in connections:
            connection.close()

    def _start_aggregator(self) -> bool:
        """Start an aggregator listening at the endpoint, and wait until something listens there."""
        now = time.monotonic()
        if now - self._last_autostart < _AUTOSTART_EVERY_SECONDS:
            return False
        self._last_autostart = now
        host, port = self.endpoint
        command = [
            sys.executable,
            "-m",
            "telemetry_otel.host",
            "--listen",
            f"{host}:{port}",
            "--exit-when-idle",
        ]
        _logger.info("no host aggregator at %s:%d: starting one (%s)", host, port, " ".join(command))
        subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,  # not in the worker's process group: it outlives any one worker
            close_fds=True,
            # "-m" puts the working directory first on sys.path: run from "/" so the aggregator is
            # the installed package, never a telemetry_otel folder that happens to be here.
            cwd="/",
        )
        deadline = time.monotonic() + _AUTOSTART_WAIT_SECONDS
        while time.monotonic() < deadline:
            try:
                with _socket_to(host, port):
                    return True
            except OSError:
                time.sleep(0.05)
        return False


def _socket_to(host: str, port: int) -> socket.socket:
    return socket.create_connection((host, port), timeout=0.5)


def _with_pid(data: MetricsData, resource: Resource, pid: int) -> MetricsData:
    """``data`` with ``process.pid`` on every resource (the host checks liveness by it); a read with
    nothing in it still names the worker."""
    extra = Resource({PROCESS_PID: pid})
    if not data.resource_metrics:
        return MetricsData([ResourceMetrics(resource.merge(extra), [], "")])
    return MetricsData(
        [
            ResourceMetrics(rm.resource.merge(extra), rm.scope_metrics, rm.schema_url)
            for rm in data.resource_metrics
        ]
    )


def _instance_of(data: MetricsData) -> str:
    for rm in data.resource_metrics:
        instance = rm.resource.attributes.get(SERVICE_INSTANCE_ID)
        if instance:
            return str(instance)
    return ""
