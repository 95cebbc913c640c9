"""Secrets and access: metrics carry counts, never secret material; the token never leaks.

* The demo's ``secrets`` and ``secrets_tool`` services publish numbers under fixed names, with no
  attribute value other than their own identity (name, category, bus, health status).
* A vault service holds a known secret (the planted string) in its state, and the same string is in
  the process environment; the demo runs next to it. The planted string appears in no view, in no
  format, in no filter, in ``/metrics`` (text, OpenMetrics, gzip), in no health or error answer and
  in no log record.
* With a token: the token is compared in constant time (a wrong token costs the same whether it
  differs at its first or its last byte), and neither it nor a wrong one is ever printed or logged,
  by the app or by the ``serve`` command.
"""

from __future__ import annotations

import ast
import asyncio
import gzip
import hmac
import logging
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from opentelemetry.sdk.metrics.export import HistogramDataPoint, MetricsData, NumberDataPoint
from starlette.applications import Starlette
from starlette.testclient import TestClient

import telemetry_otel.views
from telemetry_otel import HEALTH_STATUSES, Collection, Snapshot, Telemetry, TelemetryConfig
from telemetry_otel.instrumentation import counter, gauge, instrument_service
from telemetry_otel.instrumentation.demo import DemoRuntime
from telemetry_otel.views import FORMATS, VIEWS, create_app

BASE = "/api/demo/v1/telemetry"
PLANTED = "sk-PLANTED-" + "7f3a9c2e5b1d4f60a8e2c9b7d3f1e5a4"
SECRET_SERVICES = ("secrets", "secrets_tool")
VITALS = {
    "service.uptime",
    "service.health",
    "service.requests",
    "service.errors",
    "service.request.duration",
}


class _Vault:
    """A secrets store: its state is secret material; its telemetry is counts."""

    def __init__(self) -> None:
        self.store = {"OPENAI_API_KEY": PLANTED, "DB_PASSWORD": PLANTED[::-1]}
        self.reads = 0
        self.denied = 0

    def read(self, name: str, allowed: bool) -> str | None:
        if not allowed:
            self.denied += 1
            return None
        self.reads += 1
        return self.store[name]

    def snapshot(self) -> Snapshot:
        return {
            "secrets.accessed": self.reads,
            "secrets.denied": self.denied,
            "secrets.stored": len(self.store),
        }


def _runtime() -> tuple[Telemetry, DemoRuntime, _Vault]:
    telemetry = Telemetry(TelemetryConfig(service_name="secrets-test"))
    demo = DemoRuntime(telemetry, seed=11)
    for _ in range(40):
        demo.step()
    vault = _Vault()
    service = instrument_service(
        "vault",
        category="infrastructure",
        snapshot=vault.snapshot,
        metrics=[
            counter(
                "secrets.accessed",
                "{access}",
                "Secret reads served since start (a count only, never the secret).",
            ),
            counter("secrets.denied", "{access}", "Secret reads refused since start."),
            gauge("secrets.stored", "{secret}", "Secrets held."),
        ],
        telemetry=telemetry,
    )
    for index in range(25):
        with service.request():
            vault.read("OPENAI_API_KEY", allowed=index % 5 != 0)
    service.report_health("pass", f"{len(vault.store)} secrets loaded")
    return telemetry, demo, vault


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Telemetry, DemoRuntime, _Vault]]:
    monkeypatch.setenv("VAULT_BOOTSTRAP_TOKEN", PLANTED)
    telemetry, demo, vault = _runtime()
    yield telemetry, demo, vault
    demo.close()
    telemetry.shutdown()


#: The fixed values of the collector's component and outcome series (docs/fleet.md): never a secret.
FLEET_ENUMS = {"service", "provider", "true", "false", "ok", "error", "timeout"}


def _points(data: MetricsData) -> Iterator[tuple[str, Any]]:
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                for point in metric.data.data_points:
                    yield metric.name, point


def _shown_reason(collection: Collection, owner: str, source: str) -> str:
    record, outcome = collection.component(owner), collection.outcomes.get(owner)
    texts = {
        "health": None if record is None or record.health is None else record.health.reason,
        "snapshot.error": None if outcome is None else outcome.error,
        "snapshot.problems": None if outcome is None else "\n".join(outcome.problems),
        "snapshot.unknown": None if outcome is None else "\n".join(outcome.unknown),
    }
    return texts[source] or ""


def test_the_demo_secrets_services_publish_counts_under_fixed_names(
    planted: tuple[Telemetry, DemoRuntime, _Vault],
) -> None:
    telemetry, _, _ = planted
    collection = asyncio.run(telemetry.collect())
    data = collection.metrics
    seen: dict[str, set[str]] = {name: set() for name in SECRET_SERVICES}
    for name, point in _points(data):
        attributes = dict(point.attributes or {})
        owner = attributes.get("service.name", attributes.get("bus.provider"))
        if owner not in SECRET_SERVICES:
            continue
        seen[str(owner)].add(name)
        if name == "telemetry.component.reason.timestamp":
            # A reason text: the very text the views show as the component's reason, nothing more.
            text, source = attributes.pop("reason.text"), attributes.pop("reason.source")
            assert text == _shown_reason(collection, str(owner), str(source)), (owner, source, text)
        identity = {str(owner), "runtime", "infrastructure", "tool", *HEALTH_STATUSES, *FLEET_ENUMS}
        assert set(map(str, attributes.values())) <= identity, (name, attributes)
        if isinstance(point, HistogramDataPoint):
            assert point.count >= 0
        else:
            assert isinstance(point, NumberDataPoint)
            assert isinstance(point.value, int | float)
    for owner, names in seen.items():
        own = names - VITALS - {"secrets.accessed"}
        assert all(
            name.startswith(("telemetry.collection.", "telemetry.component.", "bus.")) for name in own
        ), (
            owner,
            own,
        )
        assert "secrets.accessed" in names
    accessed = [
        point.value
        for name, point in _points(data)
        if name == "secrets.accessed" and (point.attributes or {}).get("service.name") in SECRET_SERVICES
    ]
    assert len(accessed) == 2
    assert all(isinstance(value, int) and value >= 0 for value in accessed)


def _every_answer(app: Starlette) -> Iterator[tuple[str, bytes]]:
    with TestClient(app) as client:
        for view in VIEWS:
            for fmt in FORMATS:
                for params in ({}, {"service": "vault"}, {"category": "infrastructure"}):
                    url = BASE
                    response = client.get(url, params={"view": view, "format": fmt, **params})
                    yield f"{view}/{fmt}/{params}", response.content
        for headers in (
            {},
            {"Accept": "application/openmetrics-text; version=1.0.0"},
            {"Accept-Encoding": "gzip"},
        ):
            response = client.get("/metrics", headers=headers)
            yield f"/metrics {headers}", response.content
        raw = client.get("/metrics", headers={"Accept-Encoding": "gzip"}).read()
        yield "/metrics gzip body", gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        for path in (f"{BASE}/health", f"{BASE}/health/live", f"{BASE}/health/ready", "/nowhere"):
            yield path, client.get(path).content
        yield "bad value", client.get(BASE, params={"service": "nope"}).content
        yield "bad parameter", client.get(BASE, params={"secret": PLANTED}).content


def test_a_planted_secret_appears_in_no_view_format_scrape_answer_or_log(
    planted: tuple[Telemetry, DemoRuntime, _Vault], caplog: pytest.LogCaptureFixture, report: Any
) -> None:
    telemetry, _, vault = planted
    caplog.set_level(logging.DEBUG)
    answers = list(_every_answer(create_app(telemetry, agent="demo")))
    assert len(answers) >= len(VIEWS) * len(FORMATS) * 3 + 8
    for where, body in answers:
        text = body.decode("utf-8", "replace")
        if where == "bad parameter":
            # The refused parameter's *name* is echoed; never its value.
            assert "'secret'" in text
        assert PLANTED not in text, where
        assert PLANTED[::-1] not in text, where
    # The server side's records (the test client logs the URLs it requests, the planted one included).
    server_side = [record for record in caplog.records if not record.name.startswith("httpx")]
    assert not [record for record in server_side if PLANTED in record.getMessage()]
    assert vault.reads == 20  # the vault really served its secret
    report("planted secret", answers=len(answers), found=0, log_records=len(server_side))


def test_a_value_returned_by_mistake_is_never_echoed_into_the_views(telemetry: Telemetry) -> None:
    """A snapshot value that is not a number is reported in the outcome's ``problems``, which the
    reliability and detailed views serve: by its type (``secrets.accessed: a str is not a finite
    number``), never its value, so a secrets service that returns the secret instead of the count by
    mistake does not publish it (regression: the problem used to carry the value's ``repr``)."""
    vault = _Vault()
    instrument_service(
        "vault",
        category="infrastructure",
        snapshot=lambda: {"secrets.accessed": vault.store["OPENAI_API_KEY"]},
        metrics=[counter("secrets.accessed", "{access}", "Secret reads served since start.")],
        telemetry=telemetry,
    )
    with TestClient(create_app(telemetry, agent="demo")) as client:
        for view in ("reliability", "detailed"):
            body = client.get(BASE, params={"view": view}).text
            assert "secrets.accessed" in body, view  # the problem is reported...
            assert PLANTED not in body, view  # ...without the value


# -- the token -----------------------------------------------------------------------------------------


def test_the_token_is_compared_in_constant_time(report: Any) -> None:
    """A wrong token differing at its first byte costs what one differing at its last byte costs.

    With a 4 MiB token the comparison is measurable through the whole ASGI call: an ordinary ``==``
    (memcmp, stopping at the first difference) makes the late mismatch about 1.5 times slower than
    the early one, and the early one cheaper than a single full pass of ``hmac.compare_digest``;
    a constant-time comparison reads every byte either way. The early call, the late call and a
    full pass are measured interleaved, in a rotating order, round after round, and compared as
    medians of per-round ratios, so that load on the machine shifts all three alike.
    """
    token = secrets.token_hex(2 * 2**20)  # 4 MiB of hex
    app = create_app(Telemetry(TelemetryConfig(service_name="timing")), agent="demo", token=token)
    early = ("x" + token[1:]).encode()
    late = (token[:-1] + ("0" if token[-1] != "0" else "1")).encode()
    expected = token.encode()

    async def call(credential: bytes) -> int:
        status = 0

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        scope = {
            "type": "http",
            "method": "GET",
            "path": BASE,
            "raw_path": BASE.encode(),
            "query_string": b"",
            "headers": [(b"authorization", b"Bearer " + credential)],
        }
        await app(scope, receive, send)
        return status

    async def timed_call(credential: bytes) -> float:
        started = time.perf_counter()
        assert await call(credential) == 401
        return time.perf_counter() - started

    async def timed_full_pass() -> float:
        started = time.perf_counter()
        hmac.compare_digest(late, expected)
        return time.perf_counter() - started

    async def rounds(count: int) -> list[dict[str, float]]:
        measured: list[dict[str, float]] = []
        kinds = ("early", "late", "full")
        for index in range(count):
            order = kinds[index % 3 :] + kinds[: index % 3]
            timing: dict[str, float] = {}
            for kind in order:
                if kind == "full":
                    timing[kind] = await timed_full_pass()
                else:
                    timing[kind] = await timed_call(early if kind == "early" else late)
            measured.append(timing)
        return measured

    measured = asyncio.run(rounds(45))
    late_over_early = statistics.median(t["late"] / t["early"] for t in measured)
    early_over_full = statistics.median(t["early"] / t["full"] for t in measured)
    assert 0.85 < late_over_early < 1.2, late_over_early
    assert early_over_full > 0.5, early_over_full  # the early mismatch read every byte too
    report(
        "token comparison",
        token_bytes=len(token),
        late_over_early=round(late_over_early, 3),
        early_over_full_pass=round(early_over_full, 3),
        early_ms=round(statistics.median(t["early"] for t in measured) * 1000, 2),
        full_pass_ms=round(statistics.median(t["full"] for t in measured) * 1000, 2),
    )


def test_the_token_check_uses_hmac_compare_digest_and_no_equality() -> None:
    """Statically: the middleware decides with ``hmac.compare_digest`` and never compares the token
    with ``==``/``!=`` (which stop at the first differing byte)."""
    source = (Path(telemetry_otel.views.__file__ or "").parent / "_auth.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    method = next(
        node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name == "_authorized"
    )
    calls = {ast.unparse(node.func) for node in ast.walk(method) if isinstance(node, ast.Call)}
    assert "hmac.compare_digest" in calls
    returned = [node.value for node in ast.walk(method) if isinstance(node, ast.Return) and node.value]
    assert any(
        isinstance(value, ast.Call) and ast.unparse(value.func) == "hmac.compare_digest" for value in returned
    )
    token_comparisons = [
        ast.unparse(node)
        for node in ast.walk(tree)
        if isinstance(node, ast.Compare)
        and any(isinstance(op, ast.Eq | ast.NotEq | ast.Is | ast.IsNot) for op in node.ops)
        and "_token" in ast.unparse(node)
    ]
    assert token_comparisons == []


def test_the_serve_command_never_prints_or_logs_the_token(tmp_path: Any) -> None:
    token = "tok-" + secrets.token_urlsafe(24)
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    env = {**os.environ, "TELEMETRY_OTEL_API_TOKEN": token, "OTEL_METRICS_EXPORTER": "none"}
    command = [sys.executable, "-m", "telemetry_otel", "serve", "--demo", "--seed", "1", "--port", "0"]
    command += ["--log-level", "debug", "--cache-ttl", "0"]
    server = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        cwd="/",  # ``python -m`` puts the working directory first: use the installed package
    )
    try:
        assert server.stderr is not None
        banner = ""
        deadline = time.monotonic() + 20
        while "/metrics" not in banner:
            assert time.monotonic() < deadline, banner
            banner += server.stderr.readline().decode()
        [url] = re.findall(r"(http://127\.0\.0\.1:\d+)/metrics", banner)
        assert "bearer token from TELEMETRY_OTEL_API_TOKEN" in banner
        with httpx.Client(base_url=url, timeout=10) as http:
            attempts = [
                ({"Authorization": f"Bearer {token}"}, 200),
                ({"Authorization": f"Bearer {wrong}"}, 401),
                ({"Authorization": token}, 401),
                ({}, 401),
            ]
            for headers, status in attempts:
                assert http.get(BASE, headers=headers).status_code == status
                assert http.get("/metrics", headers=headers).status_code == status
            assert http.get(BASE, params={"token": token}).status_code == 401
    finally:
        os.killpg(server.pid, signal.SIGINT)
        out, err = server.communicate(timeout=15)
    logged = banner + out.decode() + err.decode()
    assert server.returncode == 0, logged
    assert token not in logged
    assert wrong not in logged
