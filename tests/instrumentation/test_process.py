"""Process and CPython runtime metrics: names, units and kinds of the conventions, values checked
against ``/proc/self`` (Linux) within stated tolerances, enabled by one call or by the set-up."""

from __future__ import annotations

import gc
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx2 as httpx
import psutil
import pytest
from opentelemetry.sdk.metrics.export import NumberDataPoint, Sum
from prometheus_client.parser import text_string_to_metric_families

from telemetry_otel import ConfigurationError, Telemetry, TelemetryConfig, __version__, setup_telemetry
from telemetry_otel.instrumentation import instrument_process
from telemetry_otel.vocabulary import PROCESS_SCOPE_NAME

TICKS = os.sysconf("SC_CLK_TCK")
MiB = 1024 * 1024

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc (Linux)")


def _process_metrics(telemetry: Telemetry) -> dict[str, tuple[str, Sum]]:
    data = telemetry.read_metrics()
    found: dict[str, tuple[str, Sum]] = {}
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            if scope_metrics.scope.name != PROCESS_SCOPE_NAME:
                continue
            for metric in scope_metrics.metrics:
                assert isinstance(metric.data, Sum)
                found[metric.name] = (metric.unit or "", metric.data)
    return found


def _values(data: Sum, key: str | None = None) -> dict[object, float]:
    points = [point for point in data.data_points if isinstance(point, NumberDataPoint)]
    return {(dict(point.attributes or {}).get(key) if key else None): point.value for point in points}


def _status() -> dict[str, str]:
    with open("/proc/self/status", encoding="ascii") as status:
        return dict(line.split(":", 1) for line in status.read().splitlines() if ":" in line)


def _kib(field: str) -> int:
    return int(_status()[field].split()[0]) * 1024


def _stat_cpu_seconds() -> tuple[float, float]:
    with open("/proc/self/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS  # utime, stime (fields 14, 15)


@pytest.fixture
def with_process() -> Iterator[Telemetry]:
    runtime = Telemetry(TelemetryConfig(service_name="p", process_metrics=True, live_min_interval_millis=0))
    yield runtime
    runtime.shutdown()


def test_the_conventions_names_units_and_kinds(with_process: Telemetry) -> None:
    metrics = _process_metrics(with_process)
    kinds = {name: (unit, data.is_monotonic) for name, (unit, data) in metrics.items()}
    assert kinds == {
        "process.cpu.time": ("s", True),
        "process.memory.usage": ("By", False),
        "process.memory.virtual": ("By", False),
        "process.thread.count": ("{thread}", False),
        "process.open_file_descriptor.count": ("{file_descriptor}", False),
        "process.context_switches": ("{context_switch}", True),
        "cpython.gc.collections": ("{collection}", True),
        "cpython.gc.collected_objects": ("{object}", True),
        "cpython.gc.uncollectable_objects": ("{object}", True),
    }
    started = int(psutil.Process().create_time() * 1e9)
    for _, data in metrics.values():
        for point in data.data_points:
            # Cumulative from the process's start (psutil's creation time, to the clock tick).
            assert abs(point.start_time_unix_nano - started) < 0.05 * 1e9


def test_values_match_proc_self_within_tolerances(with_process: Telemetry) -> None:
    threads_before = int(_status()["Threads"])
    user_before, system_before = _stat_cpu_seconds()
    metrics = _process_metrics(with_process)
    user_after, system_after = _stat_cpu_seconds()
    cpu = _values(metrics["process.cpu.time"][1], "cpu.mode")
    # CPU time is read between the two /proc readings: within them, to one clock tick.
    tick = 1 / TICKS
    assert user_before - tick <= cpu["user"] <= user_after + tick
    assert system_before - tick <= cpu["system"] <= system_after + tick
    # Memory: the resident size may move while the read runs; 16 MiB covers that, not a wrong field.
    assert abs(_values(metrics["process.memory.usage"][1])[None] - _kib("VmRSS")) < 16 * MiB
    assert abs(_values(metrics["process.memory.virtual"][1])[None] - _kib("VmSize")) < 64 * MiB
    # Threads and descriptors: the read may start a pool thread or open a file; 2 either way.
    assert abs(_values(metrics["process.thread.count"][1])[None] - threads_before) <= 2
    descriptors = _values(metrics["process.open_file_descriptor.count"][1])[None]
    assert abs(descriptors - (len(os.listdir("/proc/self/fd")) - 1)) <= 2  # listdir holds one itself
    switches = _values(metrics["process.context_switches"][1], "process.context_switch.type")
    status = _status()
    assert 0 < switches["voluntary"] <= int(status["voluntary_ctxt_switches"])
    assert 0 <= switches["involuntary"] <= int(status["nonvoluntary_ctxt_switches"])


def test_counters_grow_with_the_process(with_process: Telemetry) -> None:
    first = _process_metrics(with_process)
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:  # burn CPU
        pass
    gc.collect()
    second = _process_metrics(with_process)
    cpu_first = sum(_values(first["process.cpu.time"][1], "cpu.mode").values())
    cpu_second = sum(_values(second["process.cpu.time"][1], "cpu.mode").values())
    assert cpu_second - cpu_first >= 0.25
    gen_first = _values(first["cpython.gc.collections"][1], "cpython.gc.generation")
    gen_second = _values(second["cpython.gc.collections"][1], "cpython.gc.generation")
    assert set(gen_second) == {0, 1, 2}
    assert gen_second[2] >= gen_first[2] + 1  # gc.collect() is a full (generation 2) collection
    for generation, count in gen_second.items():
        assert count == gc.get_stats()[generation]["collections"] or generation == 0


def test_one_call_enables_them_once(telemetry: Telemetry) -> None:
    assert _process_metrics(telemetry) == {}
    assert instrument_process(telemetry) is True
    assert instrument_process(telemetry) is False
    assert "process.cpu.time" in _process_metrics(telemetry)


def test_disabled_sdk_has_none() -> None:
    runtime = Telemetry(TelemetryConfig(disabled=True, process_metrics=True))
    try:
        assert instrument_process(runtime) is False
        assert runtime.read_metrics().resource_metrics == []
    finally:
        runtime.shutdown()


def test_setup_and_environment_enable_them(shared: None) -> None:
    telemetry = setup_telemetry(service_name="p", process_metrics=True, set_global=False)
    assert "process.memory.usage" in _process_metrics(telemetry)
    assert TelemetryConfig.resolve(environ={"TELEMETRY_OTEL_PROCESS_METRICS": "true"}).process_metrics
    assert not TelemetryConfig.resolve(environ={}).process_metrics
    with pytest.raises(ConfigurationError, match="TELEMETRY_OTEL_PROCESS_METRICS='maybe' is not a boolean"):
        TelemetryConfig.resolve(environ={"TELEMETRY_OTEL_PROCESS_METRICS": "maybe"})


SCRIPT = """
import sys
from telemetry_otel import setup_telemetry
setup_telemetry(service_name="proc-check")
print("ready", flush=True)
sys.stdin.readline()
"""


def test_a_process_serves_its_own_metrics_over_http() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "TELEMETRY_OTEL_"))
    }
    env.update(
        OTEL_METRICS_EXPORTER="prometheus",
        OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
        OTEL_EXPORTER_PROMETHEUS_PORT=str(port),
        TELEMETRY_OTEL_PROCESS_METRICS="true",
    )
    child = subprocess.Popen(
        [sys.executable, "-c", SCRIPT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd="/",
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        with open(f"/proc/{child.pid}/status", encoding="ascii") as status:
            fields = dict(line.split(":", 1) for line in status.read().splitlines() if ":" in line)
        samples = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(body)
            for sample in family.samples
        }
        # Every sample of /metrics names its agent (docs/fleet.md), here the runtime's service.name.
        scope = (
            ("agent", "proc-check"),
            ("otel_scope_name", "telemetry_otel.process"),
            ("otel_scope_version", __version__),
        )
        rss = samples[("process_memory_usage_bytes", scope)]
        assert abs(rss - int(fields["VmRSS"].split()[0]) * 1024) < 16 * MiB
        assert samples[("process_thread_count", scope)] >= 1
        assert ("process_cpu_time_seconds_total", tuple(sorted((("cpu_mode", "user"), *scope)))) in samples
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=15)
        if child.stdout is not None:
            child.stdout.close()
