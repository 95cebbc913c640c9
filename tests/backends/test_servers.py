"""The backend harness itself: each real server starts, is ready, stores what its native protocol
sends (pushed here with the standard library only), gives it back exactly, and leaves no process."""

from __future__ import annotations

import ctypes
import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from _support import Carbon, InfluxDB, Prometheus, Promtool, Server, VictoriaMetrics

pytestmark = pytest.mark.backend

VALID_EXPOSITION = b"""# HELP harness_value A fixed value.
# TYPE harness_value gauge
harness_value{kind="fixed"} 42.5
# HELP harness_events_total Events seen.
# TYPE harness_events_total counter
harness_events_total 7
"""
INVALID_EXPOSITION = b"# TYPE harness_broken gauge\nharness_broken not-a-number\n"
# promtool rejects this, but Prometheus 2.42 scrapes it without complaint.
NO_FINAL_NEWLINE = b"# TYPE harness_unterminated gauge\nharness_unterminated 1"


def _post(address: str, path: str, body: bytes) -> tuple[int, bytes]:
    host, port = address.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "text/plain"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _send_tcp(address: tuple[str, int], payload: bytes) -> None:
    with socket.create_connection(address, timeout=5) as connection:
        connection.sendall(payload)


def _send_udp(address: tuple[str, int], payload: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as dgram:
        dgram.sendto(payload, address)


def _is_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie holds nothing
    except FileNotFoundError:
        return True


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def _assert_stopped(server: Server, pid: int, watchdog: int | None) -> None:
    assert not server.running
    assert not Path(f"/proc/{pid}").exists(), f"{server.name} pid {pid} still exists"
    assert _group_gone(pid)
    assert watchdog is not None
    assert not Path(f"/proc/{watchdog}").exists(), "the watchdog was not reaped"


# -- Prometheus ----------------------------------------------------------------------------------


def test_prometheus_scrapes_static_targets_and_marks_an_invalid_exposition_down(
    start_prometheus: Callable[..., Prometheus], serve_text: Callable[..., str]
) -> None:
    good, bad = serve_text(VALID_EXPOSITION), serve_text(INVALID_EXPOSITION)
    unterminated = serve_text(NO_FINAL_NEWLINE)
    server = start_prometheus([good, bad, unterminated], scrape_interval="1s", job="static")
    assert good in server.config_path.read_text()

    up = server.wait_for_scrape(good)
    assert (up["health"], up["lastError"]) == ("up", ""), up
    down = server.wait_for_scrape(bad)
    assert down["health"] == "down"
    # Only the shape of the message is stable: Prometheus 2.42 quotes the bad token from a pooled
    # scrape buffer that later scrapes (of other targets) overwrite.
    assert down["lastError"].startswith("strconv.ParseFloat: parsing "), down
    assert down["lastError"].endswith(": invalid syntax"), down
    assert server.wait_for_scrape(unterminated)["health"] == "up"

    [sample] = server.wait_for_query('harness_value{job="static"}')
    assert sample["metric"] == {
        "__name__": "harness_value",
        "instance": good,
        "job": "static",
        "kind": "fixed",
    }
    assert float(sample["value"][1]) == 42.5
    assert server.query("harness_broken") == []

    pid, watchdog = server.pid, server.watchdog_pid
    server.stop()
    _assert_stopped(server, pid, watchdog)


def test_prometheus_scrapes_a_target_added_while_it_runs(
    prometheus: Prometheus, serve_text: Callable[..., str]
) -> None:
    target = serve_text(VALID_EXPOSITION)
    prometheus.scrape(target, job="added")
    try:
        assert prometheus.wait_for_scrape(target)["health"] == "up"
        [sample] = prometheus.wait_for_query('harness_events_total{job="added"}')
        assert sample["metric"]["instance"] == target
        assert sample["value"][1] == "7"
    finally:
        prometheus.drop_target(target)


def test_promtool_accepts_clean_text_and_rejects_a_missing_final_newline(promtool: Promtool) -> None:
    code, output = promtool.check_metrics(VALID_EXPOSITION.decode())
    assert (code, output) == (0, "")
    code, output = promtool.check_metrics(VALID_EXPOSITION.decode().rstrip("\n"))
    assert code == 1, output
    assert output


# -- VictoriaMetrics -----------------------------------------------------------------------------


def test_victoria_metrics_stores_graphite_plaintext(victoria_metrics: VictoriaMetrics) -> None:
    now = int(time.time())
    _send_tcp(victoria_metrics.graphite_address, f"harness.vm.graphite;env=test 12.5 {now}\n".encode())
    [series] = victoria_metrics.wait_for_export('{__name__="harness.vm.graphite"}')
    assert series["metric"] == {"__name__": "harness.vm.graphite", "env": "test"}
    assert series["values"] == [12.5]
    assert series["timestamps"] == [now * 1000]


def test_victoria_metrics_stores_influx_line_protocol(victoria_metrics: VictoriaMetrics) -> None:
    now = int(time.time())
    line = f"harness_vm,host=a value=3i,ratio=0.25 {now}\n".encode()
    status, body = _post(victoria_metrics.influx_url, "/write?db=harness&precision=s", line)
    assert status == 204, body
    found = victoria_metrics.wait_for_export('{__name__=~"harness_vm_.*"}', series=2)
    by_name = {series["metric"]["__name__"]: series for series in found}
    assert by_name["harness_vm_value"]["metric"] == {
        "__name__": "harness_vm_value",
        "host": "a",
        "db": "harness",
    }
    assert by_name["harness_vm_value"]["values"] == [3]
    assert by_name["harness_vm_ratio"]["values"] == [0.25]
    assert by_name["harness_vm_ratio"]["timestamps"] == [now * 1000]


def test_victoria_metrics_imports_prometheus_text(victoria_metrics: VictoriaMetrics) -> None:
    now_ms = int(time.time()) * 1000
    text = f'harness_vm_prom{{kind="imported"}} 9.75 {now_ms}\n'.encode()
    status, body = _post(victoria_metrics.http_url, "/api/v1/import/prometheus", text)
    assert status == 204, body
    [series] = victoria_metrics.wait_for_export("harness_vm_prom")
    assert series["metric"] == {"__name__": "harness_vm_prom", "kind": "imported"}
    assert (series["values"], series["timestamps"]) == ([9.75], [now_ms])
    [sample] = victoria_metrics.wait_for_query("harness_vm_prom")
    assert float(sample["value"][1]) == 9.75


# -- InfluxDB ------------------------------------------------------------------------------------


def test_influxdb_keeps_values_and_types_and_rejects_a_malformed_line(influxdb: InfluxDB) -> None:
    influxdb.create_database("harness")
    now = int(time.time())
    lines = f'cpu,host=a usage=0.5,count=3i,ok=true,label="x y" {now}\n'.encode()
    status, body = _post(influxdb.url, "/write?db=harness&precision=s", lines)
    assert (status, body) == (204, b"")

    status, text = influxdb.write("harness", "cpu,host=a usage= 1\n")
    assert status == 400
    assert "unable to parse" in text
    assert influxdb.write("no_such_db", f"cpu usage=1 {now}\n")[0] == 404

    answer = influxdb.query("harness", "SELECT * FROM cpu")
    [series] = answer["results"][0]["series"]
    assert series["columns"] == ["time", "count", "host", "label", "ok", "usage"]
    assert series["values"] == [[now, 3, "a", "x y", True, 0.5]]
    assert influxdb.rows("harness", "SELECT usage FROM cpu GROUP BY host") == [
        {"host": "a", "time": now, "usage": 0.5}
    ]


def test_influxdb_restarts_on_the_same_port_with_its_data(influxdb: InfluxDB) -> None:
    influxdb.create_database("restart")
    now = int(time.time())
    assert influxdb.write("restart", f"m v=1 {now - 1}\n") == (204, "")
    port, pid, watchdog = influxdb.port, influxdb.pid, influxdb.watchdog_pid
    with influxdb.stopped():
        _assert_stopped(influxdb, pid, watchdog)
        with pytest.raises(ConnectionError):
            _post(influxdb.url, "/write?db=restart&precision=s", b"m v=9\n")
    assert influxdb.running
    assert (influxdb.port, influxdb.pid != pid) == (port, True)
    assert influxdb.write("restart", f"m v=2 {now}\n") == (204, "")
    assert [row["v"] for row in influxdb.rows("restart", "SELECT v FROM m")] == [1, 2]


# -- carbon --------------------------------------------------------------------------------------


def test_carbon_stores_plain_and_tagged_series(carbon: Carbon) -> None:
    now = int(time.time())
    payload = f"harness.carbon.plain 1.5 {now - 2}\nharness.carbon.plain 2.5 {now - 1}\n"
    payload += f"harness.carbon.tagged;zone=b;app=a 7 {now - 1}\n"
    _send_tcp(carbon.line_address, payload.encode())
    _send_udp(carbon.udp_address, f"harness.carbon.udp 3.25 {now - 1}\n".encode())

    assert carbon.wait_for_series("harness.carbon.plain", points=2) == [(now - 2, 1.5), (now - 1, 2.5)]
    assert carbon.series_path("harness.carbon.plain") == carbon.whisper_dir / "harness/carbon/plain.wsp"
    assert carbon.wait_for_series("harness.carbon.tagged;app=a;zone=b") == [(now - 1, 7.0)]
    tagged = carbon.series_path("harness.carbon.tagged;zone=b;app=a")
    assert tagged.relative_to(carbon.whisper_dir).parts[0] == "_tagged"
    assert tagged.exists()
    assert carbon.wait_for_series("harness.carbon.udp") == [(now - 1, 3.25)]


def test_carbon_restarts_on_the_same_port_with_its_data(carbon: Carbon) -> None:
    now = int(time.time())
    _send_tcp(carbon.line_address, f"harness.carbon.restart 1 {now - 2}\n".encode())
    assert carbon.wait_for_series("harness.carbon.restart") == [(now - 2, 1.0)]
    port, pid, watchdog = carbon.line_port, carbon.pid, carbon.watchdog_pid
    with carbon.stopped():
        _assert_stopped(carbon, pid, watchdog)
        with pytest.raises(ConnectionRefusedError):
            _send_tcp(carbon.line_address, b"harness.carbon.lost 1 1\n")
    assert carbon.line_port == port
    assert carbon.pid != pid
    _send_tcp(carbon.line_address, f"harness.carbon.restart 2 {now - 1}\n".encode())
    assert carbon.wait_for_series("harness.carbon.restart", points=2) == [(now - 2, 1.0), (now - 1, 2.0)]


# -- lifecycle -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["prometheus", "victoria_metrics", "influxdb", "carbon"])
def test_stop_leaves_no_process(kind: str, request: pytest.FixtureRequest) -> None:
    start: Callable[..., Server] = request.getfixturevalue(f"start_{kind}")
    server = start([]) if kind == "prometheus" else start()
    assert server.running
    pid, watchdog = server.pid, server.watchdog_pid
    assert os.getpgid(pid) == os.getsid(pid) == pid
    server.stop()
    _assert_stopped(server, pid, watchdog)
    server.stop()  # idempotent


def test_a_failed_start_names_the_cause_from_the_server_log(start_influxdb: Callable[..., InfluxDB]) -> None:
    server = start_influxdb()
    server.stop()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", server.port))
        squatter.listen()
        with pytest.raises(RuntimeError, match="exited with status") as failure:
            server.start()  # a restart keeps its ports: no retry on another one
    assert "address already in use" in str(failure.value)
    assert str(server.log_path) in str(failure.value)
    assert not server.running
    assert server.start().running  # the port is free again


def test_a_missing_binary_is_an_error_not_a_skip(start_influxdb: Callable[..., InfluxDB]) -> None:
    with pytest.raises(RuntimeError, match=r"influxdb not found: run \./dev test, which installs"):
        start_influxdb(binary="influxd-which-is-not-installed")


_CRASHING_RUNNER = """
import importlib.util, pathlib, sys, time
spec = importlib.util.spec_from_file_location("harness_support", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["harness_support"] = module
spec.loader.exec_module(module)
server = module.InfluxDB(pathlib.Path(sys.argv[2])).start()
print(server.pid, server.watchdog_pid, flush=True)
time.sleep(60)
"""


def test_a_killed_test_process_leaves_no_server_behind(tmp_path: Path) -> None:
    """SIGKILL the process that started a server (no atexit runs): its watchdog ends the server."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_child_subreaper = 36  # adopt the orphans so that this test can reap them
    assert libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0) == 0
    try:
        support = Path(__file__).with_name("_support.py")
        runner = subprocess.Popen(
            [sys.executable, "-c", _CRASHING_RUNNER, str(support), str(tmp_path)],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        try:
            assert runner.stdout is not None
            server_pid, watchdog_pid = map(int, runner.stdout.readline().split())
            assert not _is_gone(server_pid)
        finally:
            runner.kill()  # SIGKILL: no atexit handler, no fixture teardown runs in the runner
            runner.wait()
            if runner.stdout is not None:
                runner.stdout.close()

        deadline = time.monotonic() + 10
        pending = {server_pid, watchdog_pid}
        while pending and time.monotonic() < deadline:
            for pid in list(pending):
                try:
                    if os.waitpid(pid, os.WNOHANG)[0] == pid:
                        pending.discard(pid)
                except ChildProcessError:  # reaped elsewhere
                    pending.discard(pid)
            time.sleep(0.05)
        assert not pending, f"still running: {pending}"
        assert _group_gone(server_pid)
    finally:
        libc.prctl(pr_set_child_subreaper, 0, 0, 0, 0)
