"""The fleet app's refusals: a TSDB that does not answer is a 503 with the reason, bad input a 4xx
naming what is allowed, never a 500; and the ``fleet`` command's usage errors."""

from __future__ import annotations

import base64
import http.server
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx2 as httpx
import pytest

from telemetry_otel.views import FleetSettings, TsdbConfig, TsdbError, create_fleet_app
from telemetry_otel.views._fleet_query import PrometheusClient


@pytest.fixture
def unreachable() -> Iterator[str]:
    """A TSDB URL on a port where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_a_tsdb_that_is_down_is_a_503_naming_the_reason_on_every_route(
    unreachable: str, live_server: Callable[..., Any]
) -> None:
    base = live_server(create_fleet_app(unreachable, cache_ttl_seconds=0)).url
    for path in (
        "/api/fleet/v1/telemetry",
        "/api/some-agent/v1/telemetry",
        "/api/some-agent/v1/telemetry/health",
    ):
        answer = httpx.get(f"{base}{path}", timeout=10)
        assert answer.status_code == 503, path
        assert answer.json()["error"].startswith(
            f"the TSDB is unavailable: cannot reach the TSDB at {unreachable}"
        )
    own = httpx.get(f"{base}/health", timeout=10)
    assert own.status_code == 503
    assert own.json()["status"] == "fail"
    assert "Connection refused" in own.json()["output"]


def test_bad_queries_are_refused_before_the_tsdb_is_asked(
    unreachable: str, live_server: Callable[..., Any]
) -> None:
    base = live_server(create_fleet_app(unreachable, cache_ttl_seconds=0)).url
    answer = httpx.get(f"{base}/api/fleet/v1/telemetry", params={"view": "speed"}, timeout=10)
    assert answer.status_code == 400
    assert "summary" in answer.json()["allowed"]
    answer = httpx.get(
        f"{base}/api/fleet/v1/telemetry", params={"view": "health", "format": "html"}, timeout=10
    )
    assert answer.status_code == 400
    assert answer.json()["allowed"] == ["summary"]
    answer = httpx.get(f"{base}/api/fleet/v1/telemetry", params={"service": "a/llm"}, timeout=10)
    assert answer.status_code == 400
    answer = httpx.get(f"{base}/api/x/v1/telemetry", params={"live": "true"}, timeout=10)
    assert answer.status_code == 400
    assert httpx.get(f"{base}/nowhere", timeout=10).status_code == 404


def test_the_token_guards_every_route_but_the_apps_own_health(
    unreachable: str, live_server: Callable[..., Any]
) -> None:
    base = live_server(create_fleet_app(unreachable, token="s3cret", cache_ttl_seconds=0)).url
    assert httpx.get(f"{base}/api/fleet/v1/telemetry", timeout=10).status_code == 401
    guarded = httpx.get(
        f"{base}/api/fleet/v1/telemetry", headers={"Authorization": "Bearer s3cret"}, timeout=10
    )
    assert guarded.status_code == 503  # through the token, then the TSDB is down
    assert httpx.get(f"{base}/health", timeout=10).status_code == 503


def test_settings_and_tsdb_configuration_refuse_what_cannot_work() -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        TsdbConfig("localhost:9090")
    with pytest.raises(ValueError, match="not both"):
        TsdbConfig("http://x", basic_auth=("u", "p"), bearer_token="t")
    with pytest.raises(ValueError, match="window_seconds must be a positive number"):
        FleetSettings(window_seconds=0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("fleet",), "the following arguments are required: --prometheus"),
        (("fleet", "--prometheus", "localhost:9090"), "must be http:// or https://"),
        (("fleet", "--prometheus", "http://x", "--header", "no-colon"), "is not of the form 'NAME: VALUE'"),
        (
            ("fleet", "--prometheus", "http://x", "--tsdb-user", "me"),
            "needs the password in TELEMETRY_OTEL_TSDB_PASSWORD",
        ),
        (("fleet", "--prometheus", "http://x", "--window", "0"), "window_seconds must be a positive number"),
    ],
)
def test_fleet_usage_errors_name_what_is_allowed(args: tuple[str, ...], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "telemetry_otel", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd="/",
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


class _Recorder(http.server.BaseHTTPRequestHandler):
    """A TSDB stand-in that answers every query with an empty vector and keeps the request headers."""

    seen: ClassVar[list[dict[str, str]]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).seen.append({key.lower(): value for key, value in self.headers.items()})  # case-blind
        body = b'{"status":"success","data":{"resultType":"vector","result":[]}}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        ({"basic_auth": ("me", "pa:ss")}, "Basic " + base64.b64encode(b"me:pa:ss").decode()),
        ({"bearer_token": "t0ken"}, "Bearer t0ken"),
    ],
)
def test_every_query_carries_the_tenant_header_and_the_credentials(
    auth: dict[str, Any], expected: str
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Recorder.seen.clear()
    try:
        config = TsdbConfig(
            f"http://127.0.0.1:{server.server_address[1]}", headers={"X-Scope-OrgID": "team-a"}, **auth
        )
        client = PrometheusClient(config)
        assert client.query("up", 0.0) == []
    finally:
        server.shutdown()
        server.server_close()
    (headers,) = _Recorder.seen
    assert headers["x-scope-orgid"] == "team-a"
    assert headers["authorization"] == expected


def test_tls_verification_refuses_a_self_signed_tsdb_unless_switched_off(tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"https://127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.raises(TsdbError, match="CERTIFICATE_VERIFY_FAILED"):
            PrometheusClient(TsdbConfig(url)).query("up", 0.0)
        assert PrometheusClient(TsdbConfig(url, verify_tls=False)).query("up", 0.0) == []
    finally:
        server.shutdown()
        server.server_close()


def test_the_token_is_needed_on_every_agent_route_and_a_wrong_one_is_refused(
    unreachable: str, live_server: Callable[..., Any]
) -> None:
    base = live_server(create_fleet_app(unreachable, token="s3cret", cache_ttl_seconds=0)).url
    for path in (
        "/api/fleet/v1/telemetry",
        "/api/fleet/v1/telemetry/health",
        "/api/some-agent/v1/telemetry",
        "/api/some-agent/v1/telemetry/health",
    ):
        assert httpx.get(f"{base}{path}", timeout=10).status_code == 401, path
        wrong = httpx.get(f"{base}{path}", headers={"Authorization": "Bearer nope"}, timeout=10)
        assert wrong.status_code == 401, path
    with pytest.raises(ValueError, match="must not be empty"):
        create_fleet_app(unreachable, token="")


def test_the_app_refuses_settings_that_cannot_work_and_takes_thresholds(unreachable: str) -> None:
    with pytest.raises(ValueError, match="cache_ttl_seconds must be zero or positive"):
        create_fleet_app(unreachable, cache_ttl_seconds=-1)
    app = create_fleet_app(unreachable, thresholds={"cpu_warn": 0.5})
    assert app.state.fleet.thresholds.cpu_warn == 0.5


class _Broken(http.server.BaseHTTPRequestHandler):
    """A TSDB that answers, but not with an answer: ``mode`` is a 500, a non-JSON body, a refusal,
    a matrix where a vector belongs, or label sets that are not label sets."""

    mode: ClassVar[str] = "500"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        mode = type(self).mode
        series = self.path.endswith("/series")
        status, body = 200, b'{"status":"success","data":[]}'
        if mode == "500":
            status, body = 500, b'{"status":"error","error":"out of memory"}'
        elif mode == "html":
            body = b"<html>a proxy page</html>"
        elif mode == "refused":
            body = b'{"status":"error","error":"too many samples"}'
        elif mode == "matrix" and not series:
            body = b'{"status":"success","data":{"resultType":"matrix","result":[]}}'
        elif mode == "labels" and series:
            body = b'{"status":"success","data":[1,2]}'
        elif not series:
            body = b'{"status":"success","data":{"resultType":"vector","result":[]}}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("500", "answered 500: out of memory"),
        ("html", "answered something that is not JSON"),
        ("refused", "refused the query: too many samples"),
        ("matrix", "answered a 'matrix', not an instant vector"),
        ("labels", "answered series that are not label sets"),
    ],
)
def test_a_tsdb_answering_nonsense_is_a_503_naming_it(
    mode: str, reason: str, live_server: Callable[..., Any]
) -> None:
    handler = type("Broken", (_Broken,), {"mode": mode})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        base = live_server(create_fleet_app(url, cache_ttl_seconds=0)).url
        answer = httpx.get(f"{base}/api/fleet/v1/telemetry", timeout=10)
        assert answer.status_code == 503
        assert answer.headers["content-type"].startswith("application/json")
        assert reason in answer.json()["error"]
        assert answer.json()["source"] == url
    finally:
        server.shutdown()
        server.server_close()


class _IndexedOnly(http.server.BaseHTTPRequestHandler):
    """A TSDB whose series index lists an agent that has no sample yet (a newly started one): the
    series request finds it, every value query answers an empty vector."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path.endswith("/series"):
            body = (
                b'{"status":"success","data":[{"__name__":"telemetry_component_info","agent":"fresh",'
                b'"job":"telemetry-otel","instance":"127.0.0.1:9","service_name":"llm"}]}'
            )
        else:
            body = b'{"status":"success","data":{"resultType":"vector","result":[]}}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_an_agent_indexed_without_samples_is_unknown_saying_why_not_down(
    live_server: Callable[..., Any],
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _IndexedOnly)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = live_server(
            create_fleet_app(f"http://127.0.0.1:{server.server_address[1]}", cache_ttl_seconds=0)
        ).url
        summary = httpx.get(f"{base}/api/fleet/v1/telemetry", params={"view": "summary"}, timeout=10)
        agent = httpx.get(f"{base}/api/fresh/v1/telemetry", params={"view": "health"}, timeout=10)
        health = httpx.get(f"{base}/api/fresh/v1/telemetry/health", timeout=10)
        page = httpx.get(f"{base}/api/fleet/v1/telemetry", params={"format": "html"}, timeout=10)
    finally:
        server.shutdown()
        server.server_close()
    assert summary.status_code == 200
    document = summary.json()
    assert document["agents"] == {"total": 1, "healthy": 0, "degraded": 0, "down": 0, "unknown": 1}
    entry = document["by_agent"]["fresh"]
    assert entry["state"] == "unknown"
    assert entry["down_reason"] is None
    from telemetry_otel.views._fleet_source import INDEXED_ONLY

    assert entry["unknown_reason"] == INDEXED_ONLY
    assert "no sample" in entry["unknown_reason"]
    assert agent.status_code == 200
    assert agent.json()["fleet"]["down"] is False
    assert agent.json()["fleet"]["unknown_reason"] == INDEXED_ONLY
    assert f"the agent's state is unknown: {INDEXED_ONLY}" in health.json()["notes"]
    assert "the agent is down" not in " ".join(health.json()["notes"])
    assert INDEXED_ONLY.replace("'", "&#x27;") in page.text
