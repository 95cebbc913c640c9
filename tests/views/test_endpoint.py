"""The unified endpoint over HTTP: every view in every format, filters, cache, health, probes, access."""

from __future__ import annotations

import asyncio
import logging
import math
import re
import threading
import time
from collections.abc import Iterator
from typing import TypeVar

import httpx2 as httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text
from starlette.testclient import TestClient

from telemetry_otel import Snapshot, Telemetry
from telemetry_otel.instrumentation import Bus, gauge, instrument_service
from telemetry_otel.views import FORMATS, QUERY_PARAMETERS, VIEWS, create_app

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
    elif fmt == "graphite":
        graphite = _parse_graphite(response.text)
        for metric, attributes, field, value in EXPECTED_SERIES["all"] + EXPECTED_SERIES[view]:
            name = f"{metric}.{field}" if field else metric
            assert _one(graphite, name, attributes) == pytest.approx(value), (view, name, attributes)
    else:
        influx = _parse_influx(response.text)
        for metric, attributes, field, value in EXPECTED_SERIES["all"] + EXPECTED_SERIES[view]:
            got = _one(influx, metric, attributes)[field or "value"]
            assert got == pytest.approx(value), (view, metric, attributes, field)
            assert type(got) is type(value), (view, metric, attributes, field)  # 10i stays an int


# What ``_populate`` recorded, written out by hand: (metric, attributes, histogram field or None,
# value). Counters and histogram counts are ints (InfluxDB ``123i``); gauges and sums are floats.
EXPECTED_SERIES: dict[str, list[tuple[str, dict[str, str], str | None, int | float]]] = {
    "all": [
        ("service.requests", {"service.name": "memory", "service.category": "graph"}, None, 10),
        ("service.requests", {"service.name": "llm", "service.category": "runtime"}, None, 10),
        ("service.requests", {"service.name": "openai_primary"}, None, 10),
    ],
    "summary": [
        ("service.errors", {"service.name": "llm"}, None, 2),
        ("service.health", {"service.name": "memory", "health.status": "pass"}, None, 1.0),
        ("service.health", {"service.name": "memory", "health.status": "fail"}, None, 0.0),
        ("service.request.duration", {"service.name": "memory"}, "count", 10),
        ("service.request.duration", {"service.name": "memory"}, "sum", 0.55),
        ("service.request.duration", {"service.name": "llm"}, "max", 0.1),
    ],
    "health": [
        ("service.errors", {"service.name": "openai_primary"}, None, 1),
        ("service.health", {"service.name": "llm", "health.status": "pass"}, None, 1.0),
    ],
    "operational": [
        ("bus.requests", {"bus.name": "llm"}, None, 10),
        ("bus.failures", {"bus.name": "llm"}, None, 1),
        ("bus.processed", {"bus.name": "llm"}, None, 9),
        ("bus.providers", {"bus.name": "llm"}, None, 1.0),  # an up-down count: a float
        ("service.queue.depth", {"service.name": "memory"}, None, 3.0),
    ],
    "performance": [
        ("bus.requests", {"bus.name": "llm"}, None, 10),
        ("bus.request.duration", {"bus.name": "llm"}, "count", 10),
        ("service.queue.depth", {"service.name": "memory"}, None, 3.0),
        ("service.request.duration", {"service.name": "openai_primary"}, "min", 0.01),
    ],
    "reliability": [
        ("bus.failures", {"bus.name": "llm"}, None, 1),
        ("service.errors", {"service.name": "llm"}, None, 2),
        ("bus.providers.healthy", {"bus.name": "llm"}, None, 1.0),
    ],
    "detailed": [
        ("bus.provider.requests", {"bus.name": "llm", "bus.provider": "openai_primary"}, None, 10),
        ("bus.processed", {"bus.name": "llm"}, None, 9),
        ("service.errors", {"service.name": "memory"}, None, 0),
        ("service.request.duration", {"service.name": "llm"}, "count", 10),
    ],
}

_T = TypeVar("_T")
_Key = tuple[str, frozenset[tuple[str, str]]]


def _one(series: dict[_Key, _T], name: str, attributes: dict[str, str]) -> _T:
    """The value of the one series named ``name`` whose tags include ``attributes``."""
    wanted = set(attributes.items())
    found = [value for (metric, tags), value in series.items() if metric == name and wanted <= tags]
    assert len(found) == 1, (name, attributes, len(found))
    return found[0]


def _parse_graphite(text: str) -> dict[_Key, float]:
    """Graphite plaintext (tagged): every line ``name;k=v;... value timestamp``, one line per series,
    a finite float value and an integer timestamp in seconds at most a minute old."""
    assert text.endswith("\n")
    now = time.time()
    series: dict[_Key, float] = {}
    for line in text.splitlines():
        path, value, stamp = line.split(" ")
        name, *tags = path.split(";")
        assert re.fullmatch(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*", name), line
        pairs = [tuple(tag.split("=", 1)) for tag in tags]
        assert all(len(pair) == 2 and all(pair) for pair in pairs), line
        assert [pair[0] for pair in pairs] == sorted(pair[0] for pair in pairs), line  # sorted by key
        assert re.fullmatch(r"[0-9]+", stamp), line
        assert now - 60 <= int(stamp) <= now + 1, line
        number = float(value)
        assert math.isfinite(number), line
        key = (name, frozenset((pair[0], pair[1]) for pair in pairs))
        assert key not in series, f"two lines for {key}"
        series[key] = number
    return series


def _split(text: str, separator: str) -> list[str]:
    """``text`` split on every ``separator`` not escaped by a backslash (escapes kept)."""
    parts: list[str] = []
    start = index = 0
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == separator:
            parts.append(text[start:index])
            start = index + 1
        index += 1
    parts.append(text[start:])
    return parts


def _unescape(text: str) -> str:
    return re.sub(r"\\([ ,=\\])", r"\1", text)


_INFLUX_INT = re.compile(r"-?[0-9]+i")
_INFLUX_FLOAT = re.compile(r"-?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(e[+-]?[0-9]+)?")


def _parse_influx(text: str) -> dict[_Key, dict[str, int | float]]:
    """InfluxDB line protocol: ``measurement[,k=v]* field=value[,...] timestamp`` per line, tags sorted
    by key, fields integers (``10i``) or floats (no strings), a nanosecond timestamp at most a minute old."""
    assert text.endswith("\n")
    now = time.time_ns()
    series: dict[_Key, dict[str, int | float]] = {}
    for line in text.splitlines():
        head, field_text, stamp = _split(line, " ")
        measurement, *tag_texts = _split(head, ",")
        assert measurement, line
        tags = [_split(tag, "=") for tag in tag_texts]
        assert all(len(tag) == 2 and all(tag) for tag in tags), line
        keys = [_unescape(key) for key, _ in tags]
        assert keys == sorted(keys), line
        fields: dict[str, int | float] = {}
        for field in _split(field_text, ","):
            key, value = field.split("=")
            assert key, line
            assert key not in fields, line
            if _INFLUX_INT.fullmatch(value):
                fields[key] = int(value[:-1])
            else:
                assert _INFLUX_FLOAT.fullmatch(value), line
                fields[key] = float(value)
        assert fields, line
        assert re.fullmatch(r"[0-9]+", stamp), line
        assert now - 60 * 10**9 <= int(stamp) <= now + 10**9, line
        key_ = (_unescape(measurement), frozenset((_unescape(k), _unescape(v)) for k, v in tags))
        assert key_ not in series, f"two lines for {key_}"
        series[key_] = fields
    return series


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
    assert cached["age_seconds"] >= 0
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
        assert body["checks"]["config:health"] == [
            {
                "componentId": "config",
                "componentType": "graph",
                "status": "warn",
                "output": "unknown: no health reported",
            }
        ]
        silent.report_health("fail", "database unreachable")
        failing = client.get(f"{BASE}/health")
        assert failing.status_code == 503
        assert failing.headers["content-type"] == "application/health+json"
        assert failing.json()["status"] == "fail"
        # The reported reason once: the service_down alert it raises says the same (docs/views.md).
        assert failing.json()["checks"]["config:health"] == [
            {
                "componentId": "config",
                "componentType": "graph",
                "status": "fail",
                "output": "database unreachable",
            }
        ]
        assert failing.json()["checks"]["memory:health"] == [
            {"componentId": "memory", "componentType": "graph", "status": "pass"}
        ]
        refused = client.get(f"{BASE}/health?x=1")
        assert (refused.status_code, refused.json()) == (
            400,
            {"error": "the health endpoint takes no query parameters", "allowed": []},
        )


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

    instrument_service(
        "stuck",
        category="graph",
        snapshot=hangs,
        metrics=[gauge("stuck.depth", "{item}", "D.")],
        telemetry=telemetry,
    )
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
    telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _populate(telemetry)
    guarded = TestClient(create_app(telemetry, agent="demo", token=TOKEN))  # no lifespan: no warm-up
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        # Both probes answer without the token, in either readiness state.
        not_ready = guarded.get(f"{BASE}/health/ready")
        assert (not_ready.status_code, not_ready.json()) == (
            503,
            {"status": "fail", "output": "no collection has completed yet"},
        )
        assert guarded.get(f"{BASE}/health/live").json() == {"status": "pass"}
        assert guarded.get(BASE).status_code == 401
        assert guarded.get(BASE, headers=auth).status_code == 200  # a collection has now completed
        assert guarded.get("/metrics", headers=auth).status_code == 200
        assert guarded.get(f"{BASE}/health", headers={"authorization": f"bearer {TOKEN}"}).status_code == 200
        ready = guarded.get(f"{BASE}/health/ready")
        assert (ready.status_code, ready.json()) == (200, {"status": "pass"})
        assert guarded.get(f"{BASE}/health/live").status_code == 200
    finally:
        guarded.close()
    assert not [record for record in caplog.records if TOKEN in record.getMessage()]


# What each query parameter allows for the runtime of ``_populate``, written out by hand: the
# categories and services are the registered ones (``openai_primary`` has no category: a provider).
ALLOWED = {
    "view": ["summary", "health", "operational", "performance", "reliability", "detailed"],
    "format": ["json", "prometheus", "openmetrics", "graphite", "influxdb", "html"],
    "category": ["graph", "runtime"],
    "service": ["llm", "memory"],
    "live": ["true", "false"],
    "precision": ["s", "ms", "us", "ns"],
}


def _expected_answer(pairs: list[tuple[str, str]]) -> tuple[int, str | None, list[str] | None]:
    """(status, text the error must hold, ``allowed``) the endpoint owes ``pairs``: the README's "a
    bad or repeated query parameter is a 400 listing the allowed values", naming the parameter."""
    unknown = [key for key, _ in pairs if key not in ALLOWED]
    if unknown:
        return 400, repr(unknown[0]), ["view", "format", "category", "service", "live", "precision"]
    # The request's own parameters first; then the filters, against the collection served.
    for key in ("view", "format", "live", "precision", "influxdb", "html", "category", "service"):
        chosen = dict(pairs)
        if key == "influxdb":
            if "precision" in chosen and chosen.get("format", "json") != "influxdb":
                return 400, "applies to format=influxdb", ["influxdb"]
            continue
        if key == "html":
            if chosen.get("format") == "html" and chosen.get("view", "summary") not in ("summary", "health"):
                return 400, "format=html", ["summary", "health"]
            continue
        allowed = ALLOWED[key]
        values = [value for name, value in pairs if name == key]
        if len(values) > 1 or (values and values[0] not in allowed):
            return 400, key, allowed
    return 200, None, None


_any_text = st.text(max_size=12)
# Mostly known keys (any text one time in six), each with one of its allowed values or any text.
_key = st.sampled_from([*QUERY_PARAMETERS, ""]).flatmap(lambda key: st.just(key) if key else _any_text)
_pair = _key.flatmap(
    lambda key: st.tuples(st.just(key), st.one_of(st.sampled_from(ALLOWED.get(key, [""])), _any_text))
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_pair, max_size=4))
def test_no_query_string_ever_causes_a_500(client: TestClient, pairs: list[tuple[str, str]]) -> None:
    response = client.get(BASE, params=pairs)
    status, named, allowed = _expected_answer(pairs)
    assert response.status_code == status, (pairs, response.text)
    if named is not None:
        body = response.json()
        assert body["allowed"] == allowed, (pairs, body)
        assert named in body["error"], (pairs, body)


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


def test_influxdb_timestamps_follow_precision_and_default_to_nanoseconds(client: TestClient) -> None:
    stamps: dict[str, set[int]] = {}
    for precision in (None, "ns", "us", "ms", "s"):
        params = {"view": "health", "format": "influxdb"}
        if precision is not None:
            params["precision"] = precision
        response = client.get(BASE, params=params)
        assert response.status_code == 200
        stamps[precision or "default"] = {
            int(line.rsplit(" ", 1)[1])
            for line in response.text.splitlines()
            if line.startswith("telemetry.status,")  # derived: stamped with the collection's time
        }
    [collection_ns] = stamps["ns"]
    assert stamps == {
        "default": {collection_ns},
        "ns": {collection_ns},
        "us": {collection_ns // 10**3},
        "ms": {collection_ns // 10**6},
        "s": {collection_ns // 10**9},
    }


@pytest.mark.parametrize(
    ("params", "error", "allowed"),
    [
        (
            {"format": "influxdb", "precision": "h"},
            "precision='h' is not one of the allowed values",
            ["s", "ms", "us", "ns"],
        ),
        (
            {"format": "prometheus", "precision": "s"},
            "query parameter 'precision' applies to format=influxdb, not format=prometheus",
            ["influxdb"],
        ),
        (
            {"precision": "s"},
            "query parameter 'precision' applies to format=influxdb, not format=json",
            ["influxdb"],
        ),
    ],
)
def test_a_precision_that_cannot_apply_is_a_400_naming_what_is_allowed(
    client: TestClient, params: dict[str, str], error: str, allowed: list[str]
) -> None:
    response = client.get(BASE, params=params)
    assert (response.status_code, response.json()) == (400, {"error": error, "allowed": allowed})
