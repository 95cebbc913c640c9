"""Real metric backends on 127.0.0.1 for the integration tests: start, probe, query, stop.

Loaded by ``tests/backends/conftest.py`` from its path (the tests directory is not a package). Each
server is a plain foreground process in its own session with all its state in a fresh directory and
every port on 127.0.0.1, picked free at start. It is ready when the process is alive, its own PID holds
every port (checked in ``/proc``), every TCP port accepts a connection and its readiness probe answers.
Stopping sends SIGTERM to the process group, then SIGKILL after 5 s. An ``atexit`` handler and a
watchdog process per server make sure a crashed test run leaves no server behind.

A missing binary is an error (never a skip): ``./dev test`` installs the Debian packages.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Self, TypeVar

import httpx2 as httpx

LOOPBACK = "127.0.0.1"
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
BIND_ATTEMPTS = 3
SYSTEM_PYTHON = "/usr/bin/python3"
SYSTEM_SITE = Path("/usr/lib/python3/dist-packages")
INSTALL_HINT = "run ./dev test, which installs the Debian packages"
CARBON_RETENTIONS = "1s:6h,1m:7d"

T = TypeVar("T")


class BackendError(RuntimeError):
    """A backend binary is missing, or a server failed to start, answer or stop."""


class _BindRaceError(BackendError):
    """The server exited because one of its freshly picked ports was taken meanwhile."""


def find_binary(binary: str, name: str | None = None) -> str:
    """The absolute path of ``binary`` (PATH, then /usr/bin), else a BackendError naming the fix."""
    found = shutil.which(binary) or shutil.which(binary, path="/usr/bin:/usr/sbin")
    if found is None:
        raise BackendError(f"{name or binary} not found: {INSTALL_HINT} (looked for {binary!r})")
    return found


def free_port(*, udp: bool = False) -> int:
    """A port free on 127.0.0.1 right now (for TCP, and for UDP too if ``udp``); racy by nature."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((LOOPBACK, 0))
            port: int = tcp.getsockname()[1]
            if not udp:
                return port
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as dgram:
                try:
                    dgram.bind((LOOPBACK, port))
                except OSError:
                    continue
                return port
    raise BackendError("no port free for both TCP and UDP on 127.0.0.1")


def poll(fetch: Callable[[], T], done: Callable[[T], bool], timeout: float, what: str) -> T:
    """Call ``fetch`` every 0.1 s until ``done`` accepts its result; BackendError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = fetch()
        if done(result):
            return result
        if time.monotonic() > deadline:
            raise BackendError(f"timed out after {timeout:g} s waiting for {what}; last result: {result!r}")
        time.sleep(0.1)


def scrubbed_env(*, system_python: bool = False) -> dict[str, str]:
    """This process's environment without settings that would reconfigure a backend behind our back."""
    dropped = ("INFLUXDB_", "GRAPHITE_")
    if system_python:
        dropped += ("PYTHON", "VIRTUAL_ENV")
    env = {key: value for key, value in os.environ.items() if not key.startswith(dropped)}
    venv_bins = {os.path.join(sys.prefix, "bin")} if sys.prefix != sys.base_prefix else set()
    if "VIRTUAL_ENV" in os.environ:
        venv_bins.add(os.path.join(os.environ["VIRTUAL_ENV"], "bin"))
    path = [entry for entry in env.get("PATH", "").split(os.pathsep) if entry and entry not in venv_bins]
    env["PATH"] = os.pathsep.join([*path, "/usr/bin", "/bin"])
    return env


def _socket_inodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    with os.scandir(f"/proc/{pid}/fd") as entries:
        for entry in entries:
            with contextlib.suppress(OSError):
                target = os.readlink(entry.path)
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
    return inodes


def bound_ports(pid: int) -> tuple[set[int], set[int]]:
    """(TCP ports listening, UDP ports bound) by sockets of process ``pid``, read from /proc."""
    inodes = _socket_inodes(pid)
    tcp: set[int] = set()
    udp: set[int] = set()
    for table, state, ports in (
        ("tcp", "0A", tcp),
        ("tcp6", "0A", tcp),
        ("udp", "07", udp),
        ("udp6", "07", udp),
    ):
        with contextlib.suppress(FileNotFoundError), open(f"/proc/net/{table}", encoding="ascii") as rows:
            next(rows)
            for row in rows:
                fields = row.split()
                if fields[3] == state and int(fields[9]) in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return tcp, udp


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1.0):
            return True
    except OSError:
        return False


def pid_exists(pid: int) -> bool:
    """Whether a process (zombies included) with this PID exists."""
    return Path(f"/proc/{pid}").exists()


def group_exists(pgid: int) -> bool:
    """Whether any process is left in process group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# Runs as its own session: when pytest (its parent) disappears, it ends the server's process group.
_WATCHDOG = """
import os, signal, sys, time
parent, pgid = int(sys.argv[1]), int(sys.argv[2])
def alive():
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
while os.getppid() == parent and alive():
    time.sleep(0.5)
for sig, grace in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 0.0)):
    deadline = time.monotonic() + grace
    if alive():
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
    while alive() and time.monotonic() < deadline:
        time.sleep(0.1)
"""

_LIVE: dict[int, Server] = {}


def _stop_all() -> None:
    for server in list(_LIVE.values()):
        with contextlib.suppress(Exception):
            server.stop()


atexit.register(_stop_all)


class Server:
    """One backend process: subclasses pick ports, write config, build the command line and probe."""

    name = "server"
    binary = ""

    def __init__(self, root: Path, *, binary: str | None = None) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.log_path = root / f"{self.name}.log"
        self.executable = find_binary(binary or self.binary, self.name)
        self._proc: subprocess.Popen[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._ports_fixed = False
        self._client: httpx.Client | None = None
        self.starts = 0

    # -- what subclasses provide -------------------------------------------------------------
    def _pick_ports(self) -> None:
        raise NotImplementedError

    def _write_config(self) -> None:
        raise NotImplementedError

    def _argv(self) -> list[str]:
        raise NotImplementedError

    def _env(self) -> dict[str, str]:
        return scrubbed_env()

    def _tcp_ports(self) -> list[int]:
        raise NotImplementedError

    def _udp_ports(self) -> list[int]:
        return []

    def _base_url(self) -> str | None:
        return None

    def _probe(self) -> bool:
        return True

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def pid(self) -> int:
        """The server's PID (also its process group and session id); BackendError if not started."""
        if self._proc is None:
            raise BackendError(f"{self.name} is not running")
        return self._proc.pid

    @property
    def running(self) -> bool:
        """Whether the server process is started and still alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def watchdog_pid(self) -> int | None:
        """PID of the watchdog that kills the server if pytest dies (None when stopped)."""
        return None if self._watchdog is None else self._watchdog.pid

    @property
    def http(self) -> httpx.Client:
        """An HTTP client bound to the server's base URL (valid while it runs)."""
        if self._client is None:
            raise BackendError(f"{self.name} is not running")
        return self._client

    def start(self) -> Self:
        """Start (or restart, on the same ports and state) and wait until ready; no-op if running."""
        if self.running:
            return self
        fresh = not self._ports_fixed
        for attempt in range(1, BIND_ATTEMPTS + 1):
            if fresh:
                self._pick_ports()
            self._write_config()
            try:
                self._launch()
            except _BindRaceError:
                if fresh and attempt < BIND_ATTEMPTS:
                    continue
                raise
            self._ports_fixed = True
            return self
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL it after 5 s, reap the server and its watchdog."""
        if self._client is not None:
            self._client.close()
            self._client = None
        proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            if group_exists(proc.pid):  # children that outlived the leader
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            _LIVE.pop(id(self), None)
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.kill()
            watchdog.wait()

    @contextlib.contextmanager
    def stopped(self) -> Iterator[None]:
        """Stop the server for the ``with`` body and start it again (same ports, same data) after."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    def log_tail(self, lines: int = 40, *, since: int = 0) -> str:
        """The last ``lines`` lines of the server's log (from byte offset ``since``)."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(since)
                text = log.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return "(no log file)"
        return "\n".join(text.splitlines()[-lines:])

    def _launch(self) -> None:
        self.starts += 1
        argv = self._argv()
        with open(self.log_path, "ab") as log:
            log.write(f"==== start {self.starts} at {time.ctime()}: {' '.join(argv)}\n".encode())
            log.flush()
            offset = log.tell()
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                env=self._env(),
                start_new_session=True,
            )
        _LIVE[id(self)] = self
        self._watchdog = subprocess.Popen(
            [sys.executable, "-I", "-c", _WATCHDOG, str(os.getpid()), str(self._proc.pid)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        base_url = self._base_url()
        if base_url is not None:
            self._client = httpx.Client(base_url=base_url, timeout=10.0, trust_env=False)
        try:
            self._wait_ready(offset)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, offset: int) -> None:
        proc = self._proc
        assert proc is not None
        deadline = time.monotonic() + READY_TIMEOUT
        tcp_ports, udp_ports = set(self._tcp_ports()), set(self._udp_ports())
        while True:
            code = proc.poll()
            if code is not None:
                self.stop()
                tail = self.log_tail(since=offset)
                error = _BindRaceError if "address already in use" in tail.lower() else BackendError
                raise error(
                    f"{self.name} exited with status {code} during start; log {self.log_path}:\n{tail}"
                )
            with contextlib.suppress(OSError):
                tcp, udp = bound_ports(proc.pid)
                if tcp_ports <= tcp and udp_ports <= udp and all(map(_accepts, tcp_ports)) and self._probe():
                    return
            if time.monotonic() > deadline:
                raise BackendError(
                    f"{self.name} not ready after {READY_TIMEOUT:g} s (ports {sorted(tcp_ports)} tcp,"
                    f" {sorted(udp_ports)} udp); log {self.log_path}:\n{self.log_tail(since=offset)}"
                )
            time.sleep(0.05)

    def _http_probe(self, path: str, check: Callable[[httpx.Response], bool]) -> bool:
        try:
            return check(self.http.get(path, timeout=2.0))
        except httpx.TransportError:
            return False

    def __repr__(self) -> str:
        state = f"pid {self._proc.pid}" if self.running and self._proc else "stopped"
        return f"<{type(self).__name__} {state} in {self.root}>"


def _json(response: httpx.Response) -> Any:
    if response.status_code >= 300:
        raise BackendError(f"{response.request.url} answered {response.status_code}: {response.text[:500]}")
    return response.json()


class Prometheus(Server):
    """Prometheus scraping static targets (fixed before start) and file-SD targets added by scrape()."""

    name = "prometheus"
    binary = "prometheus"

    def __init__(
        self,
        root: Path,
        targets: Sequence[str] = (),
        *,
        scrape_interval: str = "1s",
        job: str = "static",
        binary: str | None = None,
        features: Sequence[str] = (),
        rule_files: Sequence[str] = (),
    ) -> None:
        super().__init__(root, binary=binary)
        self.features = tuple(features)
        self.static_targets = list(targets)
        self.rule_files = list(rule_files)
        self.scrape_interval = scrape_interval
        self.job = job
        self.config_path = root / "prometheus.yml"
        self.sd_dir = root / "file_sd"
        self.sd_dir.mkdir(exist_ok=True)
        self.port = 0
        self._sd_targets: dict[str, list[str]] = {}

    @property
    def url(self) -> str:
        """Base URL of the web UI and API, ``http://127.0.0.1:PORT``."""
        return f"http://{LOOPBACK}:{self.port}"

    def _pick_ports(self) -> None:
        self.port = free_port()

    def _tcp_ports(self) -> list[int]:
        return [self.port]

    def _base_url(self) -> str:
        return self.url

    def _write_config(self) -> None:
        timing = {"scrape_interval": self.scrape_interval, "scrape_timeout": self.scrape_interval}
        scrape_configs: list[dict[str, Any]] = [
            {"job_name": "file_sd", "file_sd_configs": [{"files": [str(self.sd_dir / "*.json")]}]}
        ]
        if self.static_targets:
            scrape_configs.insert(
                0, {"job_name": self.job, "static_configs": [{"targets": self.static_targets}]}
            )
        config: dict[str, Any] = {
            "global": {**timing, "evaluation_interval": self.scrape_interval},
            "scrape_configs": scrape_configs,
        }
        if self.rule_files:
            config["rule_files"] = self.rule_files
        self.config_path.write_text(json.dumps(config, indent=2) + "\n")  # JSON is YAML

    def _argv(self) -> list[str]:
        return [
            self.executable,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.root / 'data'}",
            f"--web.listen-address={LOOPBACK}:{self.port}",
            "--web.enable-lifecycle",
            "--web.enable-admin-api",
            *(f"--enable-feature={feature}" for feature in self.features),
        ]

    def _probe(self) -> bool:
        return self._http_probe("/-/ready", lambda response: response.status_code == 200)

    def scrape(self, target: str, job: str) -> None:
        """Add ``host:port`` to the scraped targets under label ``job`` (file SD: first scrape <= ~6 s)."""
        self._sd_targets.setdefault(job, []).append(target)
        self._write_sd(job)

    def drop_target(self, target: str) -> None:
        """Stop scraping a target added by ``scrape`` (under every job)."""
        for job, targets in self._sd_targets.items():
            if target in targets:
                targets.remove(target)
                self._write_sd(job)

    def _write_sd(self, job: str) -> None:
        groups = [{"targets": self._sd_targets[job], "labels": {"job": job}}]
        staging = self.sd_dir / f".{job}.json.tmp"
        staging.write_text(json.dumps(groups))
        staging.replace(self.sd_dir / f"{job}.json")

    def query(self, promql: str) -> list[dict[str, Any]]:
        """``data.result`` of an instant query (``/api/v1/query``)."""
        body = _json(self.http.get("/api/v1/query", params={"query": promql}))
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def query_exemplars(self, promql: str, start: float, end: float) -> list[dict[str, Any]]:
        """``data`` of ``/api/v1/query_exemplars`` (needs ``features=["exemplar-storage"]``): series
        with their exemplars whose own timestamps lie in [start, end] (seconds)."""
        params = {"query": promql, "start": str(start), "end": str(end)}
        body = _json(self.http.get("/api/v1/query_exemplars", params=params))
        result: list[dict[str, Any]] = body["data"]
        return result

    def targets(self) -> list[dict[str, Any]]:
        """The active targets of ``/api/v1/targets`` (``scrapeUrl``, ``health``, ``lastError``, ...)."""
        body = _json(self.http.get("/api/v1/targets", params={"state": "active"}))
        active: list[dict[str, Any]] = body["data"]["activeTargets"]
        return active

    def wait_for_scrape(self, target: str, timeout: float = 15.0) -> dict[str, Any]:
        """The active target for ``host:port`` once scraped at least once (health ``up`` or ``down``)."""

        def scraped() -> list[dict[str, Any]]:
            return [
                t
                for t in self.targets()
                if t["labels"].get("instance") == target and t["health"] != "unknown"
            ]

        return poll(scraped, bool, timeout, f"a scrape of {target}")[0]

    def alerts(self) -> list[dict[str, Any]]:
        """The pending and firing alerts of ``/api/v1/alerts`` (``labels``, ``state``, ``activeAt``)."""
        body = _json(self.http.get("/api/v1/alerts"))
        found: list[dict[str, Any]] = body["data"]["alerts"]
        return found

    def wait_for_query(self, promql: str, timeout: float = 15.0) -> list[dict[str, Any]]:
        """The first non-empty result of ``promql``."""
        return poll(lambda: self.query(promql), bool, timeout, f"a result for {promql}")


class VictoriaMetrics(Server):
    """Single-node VictoriaMetrics with HTTP, Graphite (TCP+UDP) and Influx (TCP+UDP) listeners."""

    name = "victoria-metrics"
    binary = "victoria-metrics"

    #: The query flags of the session's instance: no latency offset, no response cache.
    TEST_SEARCH_FLAGS = ("-search.latencyOffset=0s", "-search.disableCache")

    def __init__(
        self, root: Path, *, binary: str | None = None, search_flags: Sequence[str] = TEST_SEARCH_FLAGS
    ) -> None:
        super().__init__(root, binary=binary)
        self.http_port = self.graphite_port = self.influx_port = 0
        #: Query flags; ``()`` runs VictoriaMetrics' defaults, as a production instance does.
        self.search_flags = tuple(search_flags)

    @property
    def http_url(self) -> str:
        """Base URL of the HTTP API (queries, ``/api/v1/import/prometheus``, Influx ``/write``)."""
        return f"http://{LOOPBACK}:{self.http_port}"

    @property
    def influx_url(self) -> str:
        """Base URL accepting Influx line protocol at ``/write`` (same as ``http_url``)."""
        return self.http_url

    @property
    def graphite_address(self) -> tuple[str, int]:
        """Graphite plaintext listener (TCP and UDP)."""
        return (LOOPBACK, self.graphite_port)

    @property
    def influx_address(self) -> tuple[str, int]:
        """Raw Influx line protocol listener (TCP and UDP)."""
        return (LOOPBACK, self.influx_port)

    def _pick_ports(self) -> None:
        self.http_port, self.graphite_port, self.influx_port = (
            free_port(),
            free_port(udp=True),
            free_port(udp=True),
        )

    def _tcp_ports(self) -> list[int]:
        return [self.http_port, self.graphite_port, self.influx_port]

    def _udp_ports(self) -> list[int]:
        return [self.graphite_port, self.influx_port]

    def _base_url(self) -> str:
        return self.http_url

    def _write_config(self) -> None:
        pass

    def _argv(self) -> list[str]:
        return [
            self.executable,
            f"-storageDataPath={self.root / 'vm'}",
            f"-httpListenAddr={LOOPBACK}:{self.http_port}",
            f"-graphiteListenAddr={LOOPBACK}:{self.graphite_port}",
            f"-influxListenAddr={LOOPBACK}:{self.influx_port}",
            "-retentionPeriod=100y",
            *self.search_flags,
            "-http.maxGracefulShutdownDuration=1s",
        ]

    def _probe(self) -> bool:
        return self._http_probe("/health", lambda response: response.text.strip() == "OK")

    def force_flush(self) -> None:
        """Make every ingested sample searchable now (``/internal/force_flush``)."""
        response = self.http.get("/internal/force_flush")
        if response.status_code >= 300:
            raise BackendError(f"force_flush answered {response.status_code}: {response.text[:500]}")

    def export(self, match: str) -> list[dict[str, Any]]:
        """Series matching ``match`` (``/api/v1/export``): ``metric``, ``values``, ``timestamps`` in ms."""
        response = self.http.get("/api/v1/export", params={"match[]": match})
        if response.status_code >= 300:
            raise BackendError(f"export answered {response.status_code}: {response.text[:500]}")
        return [json.loads(line) for line in response.text.splitlines() if line.strip()]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """``data.result`` of an instant PromQL/MetricsQL query."""
        body = _json(self.http.get("/api/v1/query", params={"query": promql}))
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def alerts(self) -> list[dict[str, Any]]:
        """The pending and firing alerts of ``/api/v1/alerts`` (``labels``, ``state``, ``activeAt``)."""
        body = _json(self.http.get("/api/v1/alerts"))
        found: list[dict[str, Any]] = body["data"]["alerts"]
        return found

    def wait_for_query(self, promql: str, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The first non-empty result of ``promql``: queries see a new series ~1 s after ``export`` does."""

        def flushed_query() -> list[dict[str, Any]]:
            self.force_flush()
            return self.query(promql)

        return poll(flushed_query, bool, timeout, f"a result for {promql}")

    def wait_for_export(self, match: str, series: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Flush and export ``match`` until at least ``series`` series are returned."""

        def flushed_export() -> list[dict[str, Any]]:
            self.force_flush()
            return self.export(match)

        return poll(
            flushed_export, lambda found: len(found) >= series, timeout, f"{series} series for {match}"
        )


class InfluxDB(Server):
    """InfluxDB 1.x with HTTP API and the RPC (backup) port both on 127.0.0.1."""

    name = "influxdb"
    binary = "influxd"

    def __init__(self, root: Path, *, binary: str | None = None) -> None:
        super().__init__(root, binary=binary)
        self.config_path = root / "influxdb.conf"
        self.port = self.rpc_port = 0

    @property
    def url(self) -> str:
        """Base URL of the HTTP API (``/ping``, ``/write``, ``/query``)."""
        return f"http://{LOOPBACK}:{self.port}"

    def _pick_ports(self) -> None:
        self.port, self.rpc_port = free_port(), free_port()

    def _tcp_ports(self) -> list[int]:
        return [self.port, self.rpc_port]

    def _base_url(self) -> str:
        return self.url

    def _write_config(self) -> None:
        self.config_path.write_text(
            f"""reporting-disabled = true
bind-address = "{LOOPBACK}:{self.rpc_port}"

[meta]
  dir = "{self.root / "meta"}"

[data]
  dir = "{self.root / "data"}"
  wal-dir = "{self.root / "wal"}"
  query-log-enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "{LOOPBACK}:{self.port}"
  log-enabled = true

[continuous_queries]
  enabled = false
"""
        )

    def _argv(self) -> list[str]:
        return [self.executable, "run", "-config", str(self.config_path)]

    def _probe(self) -> bool:
        return self._http_probe("/ping", lambda response: response.status_code == 204)

    def create_database(self, name: str) -> None:
        """``CREATE DATABASE "name"`` (idempotent)."""
        escaped = name.replace("\\", "\\\\").replace('"', '\\"')
        body = _json(self.http.post("/query", data={"q": f'CREATE DATABASE "{escaped}"'}))
        errors = [result["error"] for result in body.get("results", []) if "error" in result]
        if errors:
            raise BackendError(f"CREATE DATABASE {name!r} failed: {errors}")

    def write(self, db: str, lines: str, precision: str = "s") -> tuple[int, str]:
        """POST line protocol to ``/write``; (status, body) as is: 204 ok, 400 bad line, 404 no db."""
        response = self.http.post("/write", params={"db": db, "precision": precision}, content=lines.encode())
        return response.status_code, response.text

    def query(self, db: str, influxql: str) -> dict[str, Any]:
        """The JSON answer of ``/query`` with ``epoch=s`` (errors are in ``results[i]["error"]``)."""
        body: dict[str, Any] = _json(self.http.get("/query", params={"db": db, "q": influxql, "epoch": "s"}))
        return body

    def rows(self, db: str, influxql: str) -> list[dict[str, Any]]:
        """The rows of every series of the first statement, as dicts of column -> value plus tags."""
        result = self.query(db, influxql)["results"][0]
        if "error" in result:
            raise BackendError(f"{influxql!r} failed: {result['error']}")
        return [
            {**series.get("tags", {}), **dict(zip(series["columns"], values, strict=True))}
            for series in result.get("series", [])
            for values in series["values"]
        ]


_whisper: ModuleType | None = None


def whisper_module() -> ModuleType:
    """The system's pure-Python ``whisper`` module, loaded by path (no sys.path change)."""
    global _whisper
    if _whisper is None:
        path = SYSTEM_SITE / "whisper.py"
        spec = importlib.util.spec_from_file_location("_system_whisper", path)
        if spec is None or spec.loader is None or not path.exists():
            raise BackendError(f"whisper not found at {path}: {INSTALL_HINT}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _whisper = module
    return _whisper


def normalize_graphite_name(name: str) -> str:
    """Carbon's normal form of ``name;k=v;...`` (``;k=v`` sorted as strings); invalid names stay as is."""
    metric, *segments = name.split(";")
    tags: dict[str, str] = {}
    for segment in segments:
        key, sep, value = segment.partition("=")
        if not (sep and key and value) or value.startswith("~") or any(c in key for c in "!^="):
            return name  # carbon logs "Error parsing metric" and stores the raw name
        tags[key] = value
    metric_tag = metric.lstrip("~")
    if not metric_tag:
        return name
    tags.pop("name", None)
    return metric_tag + "".join(sorted(f";{key}={value}" for key, value in tags.items()))


class Carbon(Server):
    """carbon-cache writing whisper files, with plaintext TCP and UDP listeners on 127.0.0.1."""

    name = "carbon"
    binary = "carbon-cache"

    def __init__(self, root: Path, *, binary: str | None = None) -> None:
        super().__init__(root, binary=binary)
        find_binary(SYSTEM_PYTHON, "the system python3")
        self.config_path = root / "carbon.conf"
        self.pidfile = root / "carbon.pid"
        self.whisper_dir = root / "whisper"
        self.line_port = self.udp_port = self.pickle_port = self.query_port = 0

    @property
    def line_address(self) -> tuple[str, int]:
        """Graphite plaintext over TCP."""
        return (LOOPBACK, self.line_port)

    @property
    def udp_address(self) -> tuple[str, int]:
        """Graphite plaintext over UDP."""
        return (LOOPBACK, self.udp_port)

    @property
    def pickle_address(self) -> tuple[str, int]:
        """Graphite pickle protocol over TCP."""
        return (LOOPBACK, self.pickle_port)

    def _pick_ports(self) -> None:
        self.line_port, self.pickle_port, self.query_port = free_port(), free_port(), free_port()
        self.udp_port = free_port(udp=True)

    def _tcp_ports(self) -> list[int]:
        return [self.line_port, self.pickle_port, self.query_port]

    def _udp_ports(self) -> list[int]:
        return [self.udp_port]

    def _env(self) -> dict[str, str]:
        return scrubbed_env(system_python=True)

    def _write_config(self) -> None:
        root = self.root
        settings = {
            "STORAGE_DIR": f"{root}/",
            "LOCAL_DATA_DIR": f"{self.whisper_dir}/",
            "WHITELISTS_DIR": f"{root}/lists/",
            "CONF_DIR": f"{root}/",
            "LOG_DIR": f"{root}/log/",
            "PID_DIR": f"{root}/",
            "USER": "",
            "DATABASE": "whisper",
            "ENABLE_LOGROTATION": "False",
            "MAX_CACHE_SIZE": "inf",
            "MAX_UPDATES_PER_SECOND": "inf",
            "MAX_CREATES_PER_MINUTE": "inf",
            "CARBON_METRIC_INTERVAL": "0",
            # Tagged series are normalised and stored under _tagged/ whatever ENABLE_TAGS says; True
            # would only add POSTs to graphite-web's tagdb (GRAPHITE_URL), which does not run here.
            "ENABLE_TAGS": "False",
            "TAG_HASH_FILENAMES": "True",
            "LINE_RECEIVER_INTERFACE": LOOPBACK,
            "LINE_RECEIVER_PORT": str(self.line_port),
            "ENABLE_UDP_LISTENER": "True",
            "UDP_RECEIVER_INTERFACE": LOOPBACK,
            "UDP_RECEIVER_PORT": str(self.udp_port),
            "PICKLE_RECEIVER_INTERFACE": LOOPBACK,
            "PICKLE_RECEIVER_PORT": str(self.pickle_port),
            "CACHE_QUERY_INTERFACE": LOOPBACK,
            "CACHE_QUERY_PORT": str(self.query_port),
        }
        lines = ["[cache]", *(f"{key} = {value}" for key, value in settings.items())]
        self.config_path.write_text("\n".join(lines) + "\n")
        (root / "storage-schemas.conf").write_text(f"[all]\npattern = .*\nretentions = {CARBON_RETENTIONS}\n")
        (root / "storage-aggregation.conf").write_text(
            "[all]\npattern = .*\nxFilesFactor = 0\naggregationMethod = average\n"
        )

    def _argv(self) -> list[str]:
        self.pidfile.unlink(missing_ok=True)  # a stale pidfile (after SIGKILL) blocks the start
        return [
            SYSTEM_PYTHON,
            self.executable,
            f"--config={self.config_path}",
            f"--pidfile={self.pidfile}",
            "--nodaemon",
            "start",
        ]

    def series_path(self, name: str) -> Path:
        """The whisper file of a plain (``a.b.c``) or tagged (``name;k=v``) series."""
        normal = normalize_graphite_name(name)
        if ";" in normal:
            digest = hashlib.sha256(normal.encode()).hexdigest()
            return self.whisper_dir / "_tagged" / digest[0:3] / digest[3:6] / f"{digest}.wsp"
        return Path(f"{self.whisper_dir}/{normal.replace('.', '/').lstrip('/')}.wsp")

    def read_series(self, name: str, since: int | None = None) -> list[tuple[int, float]]:
        """The (timestamp, value) points of the 1 s archive (last 6 h, or from ``since``).

        [] while there is no whisper file yet, or while carbon is still writing it (shorter than
        its full size): any other failure, such as a file at full size that whisper cannot read,
        raises at once.
        """
        whisper = whisper_module()
        path = self.series_path(name)
        now = int(time.time())
        oldest = now - 6 * 3600 + 1
        start = oldest if since is None else max(since - 1, oldest)
        try:
            fetched = whisper.fetch(str(path), start, now + 1, archiveToSelect="1s")
        except FileNotFoundError:
            return []
        except (whisper.CorruptWhisperFile, struct.error):
            # A header or an archive cut short: carbon has created the file and not written it all.
            if path.stat().st_size < whisper_file_size(whisper):
                return []
            raise
        if fetched is None:
            return []
        (first, _, step), values = fetched
        return [(first + i * step, value) for i, value in enumerate(values) if value is not None]

    def wait_for_series(self, name: str, points: int = 1, timeout: float = 10.0) -> list[tuple[int, float]]:
        """``read_series(name)`` once it holds at least ``points`` points (carbon writes within ~1 s)."""
        return poll(
            lambda: self.read_series(name),
            lambda got: len(got) >= points,
            timeout,
            f"{points} points of {name} in carbon",
        )


def whisper_file_size(whisper: ModuleType) -> int:
    """The size in bytes of a whisper file of ``CARBON_RETENTIONS`` once carbon has written all of it."""
    archives: list[tuple[int, int]] = [
        whisper.parseRetentionDef(definition) for definition in CARBON_RETENTIONS.split(",")
    ]
    header: int = whisper.metadataSize + whisper.archiveInfoSize * len(archives)
    point: int = whisper.pointSize
    return header + sum(points * point for _, points in archives)


class Promtool:
    """``promtool check metrics`` on a text exposition."""

    def __init__(self, *, binary: str | None = None) -> None:
        self.executable = find_binary(binary or "promtool", "promtool")

    def check_metrics(self, text: str) -> tuple[int, str]:
        """(exit code, combined output): 0 clean, 3 lint findings, 1 parse error."""
        done = subprocess.run(
            [self.executable, "check", "metrics"],
            input=text.encode(),
            capture_output=True,
            timeout=30,
            check=False,
        )
        return done.returncode, (done.stdout + done.stderr).decode("utf-8", "replace")


class PrometheusAgent(Prometheus):
    """Prometheus in agent mode: scrapes static targets and remote-writes every sample (no queries)."""

    name = "prometheus-agent"

    def __init__(
        self,
        root: Path,
        targets: Sequence[str],
        remote_write_url: str,
        *,
        scrape_interval: str = "1s",
        job: str = "static",
        binary: str | None = None,
        batch_send_deadline: str = "1s",
    ) -> None:
        super().__init__(root, targets, scrape_interval=scrape_interval, job=job, binary=binary)
        self.remote_write_url = remote_write_url
        self.batch_send_deadline = batch_send_deadline

    def _write_config(self) -> None:
        super()._write_config()
        config = json.loads(self.config_path.read_text())
        config["global"].pop("evaluation_interval", None)
        config["remote_write"] = [
            {"url": self.remote_write_url, "queue_config": {"batch_send_deadline": self.batch_send_deadline}}
        ]
        self.config_path.write_text(json.dumps(config, indent=2) + "\n")

    def _argv(self) -> list[str]:
        return [
            self.executable,
            "--enable-feature=agent",
            f"--config.file={self.config_path}",
            f"--storage.agent.path={self.root / 'agent'}",
            f"--web.listen-address={LOOPBACK}:{self.port}",
        ]


class TelemetryProcess(Server):
    """``python -m telemetry_otel ARGS --port PORT`` (``serve --demo``, ``fleet``) as its own process.

    Ready when its own PID listens on the port and ``probe_path`` answers below 500. ``port`` may be
    fixed before start (a Prometheus target declared in advance).
    """

    name = "telemetry-otel"

    def __init__(self, root: Path, args: Sequence[str], probe_path: str, *, port: int = 0) -> None:
        super().__init__(root, binary=sys.executable)
        self.args = list(args)
        self.probe_path = probe_path
        self.port = port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``, as a scrape target."""
        return f"{LOOPBACK}:{self.port}"

    def _pick_ports(self) -> None:
        self.port = self.port or free_port()

    def _write_config(self) -> None:
        pass

    def _argv(self) -> list[str]:
        return [self.executable, "-m", "telemetry_otel", *self.args, "--port", str(self.port)]

    def _tcp_ports(self) -> list[int]:
        return [self.port]

    def _base_url(self) -> str:
        return self.url

    def _probe(self) -> bool:
        return self._http_probe(self.probe_path, lambda response: response.status_code < 500)

    def kill(self) -> None:
        """SIGKILL the process (no shutdown of any kind); :meth:`stop` reaps it later."""
        os.killpg(self.pid, signal.SIGKILL)
