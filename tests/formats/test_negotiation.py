"""Tests for scrape content negotiation (``Accept``, ``Accept-Encoding``) and ``/metrics`` over HTTP."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text
from starlette.testclient import TestClient

from telemetry_otel import Telemetry, TelemetryConfig
from telemetry_otel.formats import (
    OPENMETRICS_CONTENT_TYPE,
    PROMETHEUS_TEXT_CONTENT_TYPE,
    encode_exposition,
    encode_openmetrics,
    encode_prometheus_text,
    negotiate_exposition,
    wants_gzip,
)
from telemetry_otel.instrumentation import instrument_service
from telemetry_otel.views import create_app

PROMETHEUS_2_42_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
OPENMETRICS = (encode_openmetrics, OPENMETRICS_CONTENT_TYPE)
TEXT = (encode_prometheus_text, PROMETHEUS_TEXT_CONTENT_TYPE)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (PROMETHEUS_2_42_ACCEPT, OPENMETRICS),
        ("text/plain;version=0.0.4", TEXT),
        ("*/*", TEXT),
        (None, TEXT),
        ("", TEXT),
        ("application/openmetrics-text;q=0.1, text/plain;q=0.9", TEXT),
        (";;;,=q", TEXT),
        ("application/openmetrics-text", OPENMETRICS),
        ("application/openmetrics-text; version=1.0.0; charset=utf-8", OPENMETRICS),
        ('Application/OpenMetrics-Text; Version="1.0.0"', OPENMETRICS),
        ("application/openmetrics-text;version=0.0.1", TEXT),  # a pre-1.0 draft is not what we write
        ("application/openmetrics-text;version=2.0.0", TEXT),
        ("application/openmetrics-text;q=0", TEXT),
        ("application/openmetrics-text;q=0.5, text/plain;q=0.5", OPENMETRICS),  # a tie prefers OpenMetrics
        ("text/plain;q=0.5, application/openmetrics-text;q=0.6", OPENMETRICS),
        ("application/openmetrics-text;q=0.5, */*", TEXT),
        ("application/openmetrics-text;q=0.5, text/*;q=0.8", TEXT),
        # The most specific range sets a format's q: text/plain;version=0.0.4 over */*.
        ("text/plain;version=0.0.4;q=0.2, */*;q=1, application/openmetrics-text;q=0.3", OPENMETRICS),
        ("application/openmetrics-text;version=1.0.0;q=0, application/openmetrics-text;q=1", TEXT),
        ("application/json", TEXT),
        ("application/openmetrics-text;q=abc, text/plain;q=0.1", TEXT),  # a malformed q ignores the range
        ("application/openmetrics-text;q=2", TEXT),
        ("application/openmetrics-text;q=nan", TEXT),
        ("application/openmetrics-text;q=-1", TEXT),
        (",,, application/openmetrics-text ,,", OPENMETRICS),
        ("application/openmetrics-text;version", OPENMETRICS),  # a parameter without a value is ignored
        ("\x00\xff" * 100, TEXT),
    ],
)
def test_negotiate_exposition(accept: str | None, expected: tuple[object, str]) -> None:
    assert negotiate_exposition(accept) == expected


@pytest.mark.parametrize(
    ("accept_encoding", "expected"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("GZIP;q=0.5", True),
        ("x-gzip", True),
        ("*", True),
        ("identity", False),
        ("gzip;q=0", False),
        ("gzip;q=0.000", False),
        ("gzip;q=0, *", False),  # an explicit refusal beats the wildcard
        ("*;q=0", False),
        ("deflate, br", False),
        ("", False),
        (None, False),
        ("gzip;q=abc", False),
        ("gzip;q=2", False),
        (";;;,=q", False),
        ("identity;q=1, gzip;q=0.1", True),
    ],
)
def test_wants_gzip(accept_encoding: str | None, expected: bool) -> None:
    assert wants_gzip(accept_encoding) is expected


@settings(max_examples=300, deadline=None)
@given(
    header=st.text()
    | st.lists(st.sampled_from([",", ";", "=", "q", "0.5", " ", "*/*", "gzip", '"'])).map("".join)
)
def test_malformed_headers_never_raise(header: str) -> None:
    assert negotiate_exposition(header) in (OPENMETRICS, TEXT)
    assert wants_gzip(header) in (True, False)


# --- /metrics over HTTP -------------------------------------------------------------------------


@pytest.fixture
def client() -> Iterator[TestClient]:
    telemetry = Telemetry(TelemetryConfig(service_name="t"))
    try:
        service = instrument_service("svc", category="graph", telemetry=telemetry)
        service.record_request(0.012)
        service.record_request(0.3, True)
        with TestClient(create_app(telemetry, agent="demo")) as test_client:
            yield test_client
    finally:
        telemetry.shutdown()


def test_metrics_serves_openmetrics_to_prometheus(client: TestClient) -> None:
    response = client.get(
        "/metrics", headers={"Accept": PROMETHEUS_2_42_ACCEPT, "Accept-Encoding": "identity"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == OPENMETRICS_CONTENT_TYPE
    assert "content-encoding" not in response.headers
    assert response.headers["vary"] == "Accept, Accept-Encoding"
    assert response.text.endswith("# EOF\n")
    families = {family.name: family for family in parse_openmetrics(response.text)}
    assert families["target"].type == "info"
    requests = families["service_requests"]
    assert requests.type == "counter"
    assert [sample.value for sample in requests.samples if sample.name == "service_requests_total"] == [2]
    assert families["service_request_duration_seconds"].unit == "seconds"


@pytest.mark.parametrize("accept", [None, "*/*", "text/plain;version=0.0.4", "application/json"])
def test_metrics_serves_text_by_default(client: TestClient, accept: str | None) -> None:
    headers = {"Accept-Encoding": "identity"}
    if accept is not None:
        headers["Accept"] = accept
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == PROMETHEUS_TEXT_CONTENT_TYPE
    assert "# EOF" not in response.text
    assert "service_requests" in {family.name for family in parse_text(response.text)}


@pytest.mark.parametrize("accept", [PROMETHEUS_2_42_ACCEPT, "text/plain"])
def test_metrics_gzip(client: TestClient, accept: str) -> None:
    plain = client.get("/metrics", headers={"Accept": accept, "Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    with client.stream("GET", "/metrics", headers={"Accept": accept, "Accept-Encoding": "gzip"}) as response:
        raw = b"".join(response.iter_raw())
        headers = response.headers
    assert headers["content-encoding"] == "gzip"
    assert headers["vary"] == "Accept, Accept-Encoding"
    assert headers["content-type"] == plain.headers["content-type"]
    assert raw[:2] == b"\x1f\x8b"
    assert int(headers["content-length"]) == len(raw)
    # The same cached collection: the compressed body is exactly the uncompressed one.
    assert gzip.decompress(raw) == plain.content
    # httpx decompresses transparently for a plain get.
    decoded = client.get("/metrics", headers={"Accept": accept, "Accept-Encoding": "gzip"})
    assert decoded.headers["content-encoding"] == "gzip"
    assert decoded.content == plain.content


def test_metrics_refused_gzip_is_plain(client: TestClient) -> None:
    response = client.get(
        "/metrics", headers={"Accept": PROMETHEUS_2_42_ACCEPT, "Accept-Encoding": "gzip;q=0"}
    )
    assert "content-encoding" not in response.headers
    assert response.content.endswith(b"# EOF\n")


# --- the chunked body ---------------------------------------------------------------------------


@pytest.mark.parametrize("encode", [encode_prometheus_text, encode_openmetrics])
def test_encode_exposition_is_the_encoders_text_in_chunks(encode: object) -> None:
    telemetry = Telemetry(TelemetryConfig(service_name="t", cardinality_limit=5_000))
    try:
        counter = telemetry.get_meter("chunks").create_counter("items", "{item}", "Items.")
        for index in range(3_000):  # several chunks of lines
            counter.add(index, {"item.id": f"item-{index}", "note": 'say "hi"\n'})
        data = telemetry.read_metrics()
    finally:
        telemetry.shutdown()
    content_type = OPENMETRICS_CONTENT_TYPE if encode is encode_openmetrics else PROMETHEUS_TEXT_CONTENT_TYPE
    chunks = encode_exposition(data, content_type, chunk_chars=20_000)
    assert len(chunks) > 2
    assert all(chunk.endswith(b"\n") for chunk in chunks)  # chunks end at line ends
    # Each chunk is the whole lines that reach its size, the last one what is left.
    assert all(20_000 <= len(chunk) < 20_200 for chunk in chunks[:-1])
    assert 0 < len(chunks[-1]) < 20_200
    assert b"".join(chunks).decode("utf-8") == encode(data)  # type: ignore[operator]


@pytest.mark.parametrize("chunk_chars", [0, -1, 1.5, True])
def test_encode_exposition_refuses_a_chunk_size_below_one_character(chunk_chars: object) -> None:
    telemetry = Telemetry(TelemetryConfig(service_name="t"))
    try:
        telemetry.get_meter("chunks").create_counter("items").add(1)
        data = telemetry.read_metrics()
    finally:
        telemetry.shutdown()
    with pytest.raises(ValueError, match=r"chunk_chars must be an integer >= 1"):
        encode_exposition(data, PROMETHEUS_TEXT_CONTENT_TYPE, chunk_chars=chunk_chars)  # type: ignore[arg-type]
    # One character is the smallest size: every line is a chunk of its own.
    chunks = encode_exposition(data, PROMETHEUS_TEXT_CONTENT_TYPE, chunk_chars=1)
    assert b"".join(chunks).decode("utf-8") == encode_prometheus_text(data)
    assert len(chunks) == encode_prometheus_text(data).count("\n")


def test_metrics_body_in_many_chunks_has_its_length_and_gzips_whole() -> None:
    telemetry = Telemetry(TelemetryConfig(service_name="t", cardinality_limit=5_000))
    try:
        counter = telemetry.get_meter("chunks").create_counter("items")
        for index in range(3_000):  # lines of ~480 bytes: a body of a few 1 MiB chunks
            counter.add(1, {"item.id": f"item-{index}", "padding": "x" * 400})
        with TestClient(create_app(telemetry, agent="demo")) as test_client:
            with test_client.stream("GET", "/metrics", headers={"Accept-Encoding": "identity"}) as response:
                raw = b"".join(response.iter_raw())
                length = int(response.headers["content-length"])
            zipped = test_client.get("/metrics", headers={"Accept-Encoding": "gzip"})
    finally:
        telemetry.shutdown()
    assert length == len(raw)
    assert len(raw) > 1 << 20  # more than one chunk
    samples = [s for f in parse_text(raw.decode("utf-8")) if f.name == "items" for s in f.samples]
    assert len(samples) == 3_000
    assert zipped.content == raw  # decompressed by the client: the same body
