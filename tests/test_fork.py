"""A runtime set up before ``fork()`` (``gunicorn --preload``): the child is a new instance from zero.

The child gets its own ``service.instance.id``, none of the parent's counts (SDK instruments,
service vitals, buses, collector series, cached collections), and threads of its own for its cycles;
the parent keeps its counts and identity. The test forks the test process itself: the child reports
what it sees through a pipe and exits with ``os._exit``.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opentelemetry.sdk.metrics.export import MetricsData

from telemetry_otel import SERVICE_INSTANCE_ID, Telemetry, TelemetryConfig
from telemetry_otel.exporters import GraphiteExporter
from telemetry_otel.instrumentation import Bus, instrument_service
from telemetry_otel.instrumentation._asgi import http_server_metrics


def _values(data: MetricsData) -> dict[str, float]:
    """Metric name -> sum of its number points (histograms: their counts)."""
    values: dict[str, float] = {}
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                for point in metric.data.data_points:
                    value = getattr(point, "value", None)
                    value = getattr(point, "count", 0) if value is None else value
                    values[metric.name] = values.get(metric.name, 0) + value
    return values


def _instance(data: MetricsData) -> str:
    return str(data.resource_metrics[0].resource.attributes[SERVICE_INSTANCE_ID])


def _in_child(body: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``body`` in a forked child; its JSON result (or its error) comes back through a pipe."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        os.close(read)
        try:
            result = {"ok": body()}
        except BaseException as exc:
            result = {"error": f"{type(exc).__name__}: {exc}"}
        os.write(write, json.dumps(result).encode())
        os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    outcome = json.loads(b"".join(chunks))
    assert "error" not in outcome, outcome["error"]
    return dict(outcome["ok"])


def test_a_forked_child_counts_from_zero_as_a_new_instance(telemetry: Telemetry) -> None:
    service = instrument_service("svc", category="runtime", telemetry=telemetry)
    bus = Bus("llm", telemetry=telemetry)
    bus.attach(service)
    counter = telemetry.get_meter("fork.test").create_counter("fork.calls", unit="{call}")
    for _ in range(5):
        service.record_request(0.01)
        counter.add(2)
    parent_before = telemetry.cycle.get_blocking(0, 10).collection.metrics
    assert _values(parent_before)["service.requests"] == 5
    assert _values(parent_before)["fork.calls"] == 10
    assert _values(parent_before)["bus.requests"] == 5

    def child() -> dict[str, Any]:
        at_fork = telemetry.read_metrics()
        service.record_request(0.01)
        counter.add(3)
        after = telemetry.cycle.get_blocking(0, 10).collection.metrics  # a cycle on the child's threads
        return {
            "instance_at_fork": _instance(at_fork),
            "resource_instance": str(telemetry.resource.attributes[SERVICE_INSTANCE_ID]),
            "at_fork": _values(at_fork),
            "after": _values(after),
            "instance_after": _instance(after),
        }

    seen = _in_child(child)
    parent_instance = _instance(parent_before)
    assert seen["instance_at_fork"] != parent_instance
    assert seen["instance_after"] == seen["instance_at_fork"] == seen["resource_instance"]
    for name in ("service.requests", "fork.calls", "bus.requests", "telemetry.collections"):
        assert seen["at_fork"].get(name, 0) == 0, f"the child inherited the parent's {name}"
    assert seen["after"]["service.requests"] == 1
    assert seen["after"]["fork.calls"] == 3
    assert seen["after"]["bus.requests"] == 1
    assert seen["after"]["telemetry.collections"] == 1

    # The parent is untouched: its counts, its identity, its cycles.
    service.record_request(0.01)
    parent_after = telemetry.cycle.get_blocking(0, 10).collection.metrics
    assert _instance(parent_after) == parent_instance
    assert _values(parent_after)["service.requests"] == 6
    assert _values(parent_after)["fork.calls"] == 10


def test_a_forked_child_counts_http_requests_from_zero(telemetry: Telemetry) -> None:
    """The HTTP server series (the middleware's own store) start from zero in a forked child."""
    store = http_server_metrics(telemetry)
    key = ("GET", "http", "/items/{id}", 200, None)
    for _ in range(4):
        store.started("GET", "http")
        store.finished(key, 0.01, None)
    assert _values(telemetry.read_metrics())["http.server.request.duration"] == 4

    def child() -> dict[str, Any]:
        at_fork = _values(telemetry.read_metrics())
        store.started("GET", "http")
        store.finished(key, 0.01, None)
        return {"at_fork": at_fork, "after": _values(telemetry.read_metrics())}

    seen = _in_child(child)
    assert seen["at_fork"].get("http.server.request.duration", 0) == 0
    assert seen["after"]["http.server.request.duration"] == 1
    assert _values(telemetry.read_metrics())["http.server.request.duration"] == 4


def test_a_forked_child_pushes_over_a_connection_of_its_own_without_the_parents_spool(
    tmp_path: Path,
) -> None:
    """The child's Graphite exporter opens its own connection (two processes never write into one
    stream) and does not take the parent's spooled batches (they would be delivered twice)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    spool = tmp_path / "spool"
    config = TelemetryConfig(
        service_name="fork-push", export_interval_millis=200, export_spool_dir=str(spool)
    )
    runtime = Telemetry(config, [GraphiteExporter("127.0.0.1", port)])
    try:
        deadline = time.monotonic() + 10
        while not accepted:  # the parent's connection
            assert time.monotonic() < deadline, "the parent never connected"
            time.sleep(0.05)

        def child() -> dict[str, Any]:
            spools = [exporter.policy.spool_directory for exporter in runtime.exports.exporters]
            time.sleep(1.0)  # a few export intervals of the child's own pipeline
            return {"spools": spools}

        seen = _in_child(child)
        assert len(accepted) >= 2, "the child wrote into the parent's connection"
        assert seen["spools"] == [None]
        assert [exporter.policy.spool_directory for exporter in runtime.exports.exporters] == [str(spool)]
    finally:
        runtime.shutdown(2_000)
        listener.close()
        for connection in accepted:
            connection.close()


def test_an_instance_id_set_in_the_environment_is_kept_by_a_single_process_child() -> None:
    config = TelemetryConfig(service_name="fork-id", resource_attributes={SERVICE_INSTANCE_ID: "pinned"})
    runtime = Telemetry(config)
    try:
        seen = _in_child(lambda: {"instance": _instance(runtime.read_metrics())})
        assert seen["instance"] == "pinned"
    finally:
        runtime.shutdown()


def test_a_host_worker_forked_after_set_up_reports_as_a_worker_of_its_own() -> None:
    from telemetry_otel.host import HostAggregator

    aggregator = HostAggregator.start("127.0.0.1", 0)
    endpoint = "{}:{}".format(*aggregator.address)
    runtime = Telemetry(
        TelemetryConfig(service_name="preload", host_endpoint=endpoint, report_interval_millis=60_000)
    )
    try:
        service = instrument_service("svc", category="runtime", telemetry=runtime)
        for _ in range(5):
            service.record_request(0.01)
        assert runtime.report_to_host()

        def child() -> dict[str, Any]:
            service.record_request(0.01)
            service.record_request(0.01)
            reported = runtime.report_to_host()
            host = runtime.cycle.get_blocking(0, 10).collection
            return {"reported": reported, "requests": _values(host.metrics)["service.requests"]}

        seen = _in_child(child)
        assert seen == {"reported": True, "requests": 7}  # 5 of the parent, 2 of the child: none twice
        assert len(aggregator.fold.workers) == 2
    finally:
        runtime.shutdown()
        aggregator.close()
