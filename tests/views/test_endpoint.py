"""The unified endpoint over HTTP: every view in every format, filters, cache, health, probes, access."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator

import httpx2 as httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text
from starlette.testclient import TestClient

from telemetry_otel import Snapshot, Telemetry
from telemetry_otel.instrumentation import Bus, gauge, instrument_service
from telemetry_otel.views import FORMATS, VIEWS, create_app

BASE = "/api/demo/v1/telemetry"


def _populate(telemetry: Telemetry) -> None:
    depth = gauge("service.queue.depth", "{item}", "Items waiting.")
    memory = instrument_service(
        "memory",
        category="graph",
        snapshot=lambda: {"service.queue.depth": 3},
        metrics=[depth],
        telemetry=telemetry,
    )
    llm = instrument_service("llm", category="runtime", telemetry=telemetry)
    provider = instrument_service("openai_primary", telemetry=telemetry)
    Bus("llm", telemetry=telemetry).attach(provider)
    for service, failures in ((memory, 0), (llm, 2), (provider, 1)):
        for index in range(10):
            service.record_request(0.01 * (index + 1), index < failures)
        service.report_health("pass")


@pytest.fixture
def client(telemetry: Telemetry) -> Iterator[TestClient]:
    _populate(telemetry)
    with TestClient(create_app(telemetry, agent="demo")) as test_client:
        yield test_client


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_view_in_every_format(client: TestClient, view: str, fmt: str) -> None:
    response = client.get(BASE, params={"view": view, "format": fmt})
    if fmt == "html" and view not in ("summary", "health"):
        assert response.status_code == 400, response.text  # the page shows the summary and health views
        assert response.json()["allowed"] == ["summary", "health"]
        return
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0] == FORMATS[fmt].split(";")[0]
    if fmt == "json":
        body = response.json()
        assert (body["agent"], body["view"]) == ("demo", view)
    elif fmt == "prometheus":
        assert list(parse_text(response.text))
    elif fmt == "openmetrics":
        assert response.text.endswith("# EOF\n")
        assert list(parse_openmetrics(response.text))
    elif fmt == "html":
        assert response.text.startswith("<!DOCTYPE html>")
    else:
        lines = response.text.splitlines()
        assert lines
        assert all(line.count(" ") >= 2 for line in lines), lines[:3]


def test_summary_is_the_default_and_metric_formats_carry_its_derived_series(client: TestClient) -> None:
    assert client.get(BASE).json()["view"] == "summary"
    families = {f.name for f in parse_text(client.get(BASE, params={"format": "prometheus"}).text)}
    assert "telemetry_health_score" in families
    assert "service_requests" in families  # a series the summary is built from


def test_filters_narrow_every_view(client: TestClient) -> None:
    for view in VIEWS:
        only_memory = client.get(BASE, params={"view": view, "service": "memory"}).json()
        # neither the llm service nor the llm bus (whose provider is not memory) is left in any section
        keys = _section_keys(only_memory)
        assert "llm" not in keys, view
        if view == "summary":
            assert only_memory["services"]["total"] == 1
        else:
            assert "memory" in keys, view
    runtime = client.get(BASE, params={"view": "health", "category": "runtime"}).json()
    assert set(runtime["services"]) == {"llm"}
    prom = client.get(BASE, params={"view": "performance", "format": "prometheus", "service": "memory"}).text
    assert 'service_name="llm"' not in prom
    assert 'service_name="memory"' in prom


def _section_keys(document: object) -> set[str]:
    """Every key of every ``services``/``buses``/``categories`` map anywhere in ``document``."""
    found: set[str] = set()
    if isinstance(document, dict):
        for key, value in document.items():
            if key in ("services", "buses", "categories") and isinstance(value, dict):
                found.update(value)
            found |= _section_keys(value)
    elif isinstance(document, list):
        for item in document:
            found |= _section_keys(item)
    return found


def test_live_bypasses_the_cache_and_the_response_says_when_the_cache_served_it(client: TestClient) -> None:
    first = client.get(BASE).json()
    cached = client.get(BASE).json()
    live = client.get(BASE, params={"live": "true"}).json()
    assert (cached["cached"], live["cached"]) == (True, False)
    assert cached["cache_age_seconds"] >= 0
    assert live["timestamp"] >= first["timestamp"]


def test_concurrent_requests_on_a_cold_cache_cause_one_collection(telemetry: Telemetry) -> None:
    calls = 0
    gate = threading.Event()

    def slow() -> Snapshot:
        nonlocal calls
        calls += 1
        gate.wait(2)
        return {"service.queue.depth": 1}

    instrument_service(
        "slow",
        category="graph",
        snapshot=slow,
        metrics=[gauge("service.queue.depth", "{item}", "Items waiting.")],
        telemetry=telemetry,
    )
    app = create_app(telemetry, agent="demo")

    async def burst() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            requests = [asyncio.create_task(http.get(BASE)) for _ in range(25)]
            await asyncio.sleep(0.1)
            gate.set()
            return [response.status_code for response in await asyncio.gather(*requests)]

    assert asyncio.run(burst()) == [200] * 25
    assert calls == 1


def test_health_endpoint_is_health_json_and_503_when_failing(telemetry: Telemetry) -> None:
    good = instrument_service("memory", category="graph", telemetry=telemetry)
    good.report_health("pass")
    silent = instrument_service("config", category="graph", telemetry=telemetry)
    with TestClient(create_app(telemetry, agent="demo", cache_ttl_seconds=0)) as client:
        response = client.get(f"{BASE}/health")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/health+json"
        body = response.json()
        assert body["status"] == "warn"  # one service never reported: not all known to pass
        assert body["checks"]["memory:health"][0]["status"] == "pass"
        assert body["checks"]["config:health"][0]["output"].startswith("unknown:")
        silent.report_health("fail", "database unreachable")
        failing = client.get(f"{BASE}/health")
        assert failing.status_code == 503
        assert failing.json()["checks"]["config:health"][0] == {
            "componentId": "config",
            "componentType": "graph",
            "status": "fail",
            "output": failing.json()["checks"]["config:health"][0]["output"],
        }
        assert "database unreachable" in failing.json()["checks"]["config:health"][0]["output"]
        assert client.get(f"{BASE}/health?x=1").status_code == 400


def test_zero_services_is_not_healthy(telemetry: Telemetry) -> None:
    with TestClient(create_app(telemetry, agent="demo")) as client:
        assert client.get(f"{BASE}/health").status_code == 503
        assert client.get(BASE).json()["status"] == "fail"


def test_liveness_never_depends_on_the_services_and_readiness_waits_for_a_collection(
    telemetry: Telemetry,
) -> None:
    release = threading.Event()

    def hangs() -> Snapshot:
        release.wait(5)
        return {}

    instrument_service("stuck", category="graph", snapshot=hangs, telemetry=telemetry)
    app = create_app(telemetry, agent="demo")
    client = TestClient(app)  # no lifespan: no warm-up collection has run
    try:
        assert client.get(f"{BASE}/health/live").json() == {"status": "pass"}
        not_ready = client.get(f"{BASE}/health/ready")
        assert not_ready.status_code == 503
        assert not_ready.json()["output"] == "no collection has completed yet"
        release.set()
        client.get(BASE)
        assert client.get(f"{BASE}/health/ready").status_code == 200
        assert client.get("/api/other/v1/telemetry/health/live").status_code == 404
    finally:
        release.set()
        client.close()


TOKEN = "s3cr3t-t0ken-value"


@pytest.fixture
def guarded(telemetry: Telemetry) -> Iterator[TestClient]:
    _populate(telemetry)
    with TestClient(create_app(telemetry, agent="demo", token=TOKEN)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        (BASE, {}),
        ("/metrics", {}),
        (f"{BASE}/health", {}),
        (f"{BASE}?token={TOKEN}", {}),
        (f"{BASE}?access_token={TOKEN}", {}),
        (BASE.upper(), {}),
        ("/api/demo/v1/telemetry/", {}),
        ("/api/demo/v1/%74elemetry", {}),
        ("/api/demo/v1/telemetry/health/live/../../", {}),
        (f"{BASE}/health/live%00", {}),
        ("/nowhere", {}),
        (BASE, {"Authorization": f"Basic {TOKEN}"}),
        (BASE, {"Authorization": f"Bearer {TOKEN}x"}),
        (BASE, {"Authorization": f"Bearer {TOKEN[:-1]}"}),
        (BASE, {"Authorization": "Bearer "}),
        (BASE, {"Authorization": TOKEN}),
        (BASE, {"X-Authorization": f"Bearer {TOKEN}"}),
    ],
)
def test_no_path_to_metric_data_without_the_token(
    guarded: TestClient, path: str, headers: dict[str, str]
) -> None:
    response = guarded.get(path, headers=headers)
    assert response.status_code == 401, (path, response.status_code)
    assert response.json() == {"error": "missing or invalid bearer token"}
    assert response.headers["www-authenticate"] == 'Bearer realm="telemetry"'


def test_a_repeated_authorization_header_is_refused(guarded: TestClient) -> None:
    headers = [("authorization", f"Bearer {TOKEN}"), ("authorization", f"Bearer {TOKEN}")]
    assert guarded.get(BASE, headers=httpx.Headers(headers)).status_code == 401


def test_the_token_opens_everything_and_the_probes_stay_open(
    guarded: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert guarded.get(BASE, headers=auth).status_code == 200
    assert guarded.get("/metrics", headers=auth).status_code == 200
    assert guarded.get(f"{BASE}/health", headers={"authorization": f"bearer {TOKEN}"}).status_code == 200
    assert guarded.get(f"{BASE}/health/live").status_code == 200
    assert guarded.get(f"{BASE}/health/ready").status_code in (200, 503)
    assert not [record for record in caplog.records if TOKEN in record.getMessage()]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.text(max_size=12), st.text(max_size=12)), max_size=4))
def test_no_query_string_ever_causes_a_500(client: TestClient, pairs: list[tuple[str, str]]) -> None:
    response = client.get(BASE, params=pairs)
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert response.json()["allowed"] is not None


def test_rendered_views_follow_each_new_collection(telemetry: Telemetry) -> None:
    service = instrument_service("memory", category="graph", telemetry=telemetry)
    service.record_request(0.01)
    service.report_health("pass")
    with TestClient(create_app(telemetry, agent="demo")) as client:
        params = {"view": "operational", "service": "memory"}
        before = client.get(BASE, params=params).json()["services"]["memory"]["requests"]
        for _ in range(4):
            service.record_request(0.01)
        assert client.get(BASE, params=params).json()["services"]["memory"]["requests"] == before  # cached
        live = client.get(BASE, params={**params, "live": "true"}).json()
        assert (live["cached"], live["services"]["memory"]["requests"]) == (False, before + 4)
        again = client.get(BASE, params=params).json()
        assert (again["cached"], again["services"]["memory"]["requests"]) == (True, before + 4)
