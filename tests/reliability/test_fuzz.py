"""Hostile HTTP input: every route, every query parameter and header, with and without a token.

Two drivers. Over HTTP semantics (Starlette's ``TestClient``): random query strings (known and
unknown keys, repeated keys, unicode, percent-encoding), random ``Accept``, ``Accept-Encoding`` and
``Authorization`` values, methods and path variants of every route. Below HTTP (the ASGI app called
directly, as a server hands it a request): raw bytes in the path, the query string and the headers,
invalid UTF-8 and stray ``%`` included. The properties:

* the status is one of 200, 400, 401, 404, 405 and 503, never a 500; a 503 only where documented
  (``/health`` when the status is ``fail``, ``/health/ready`` before the first collection);
* every 4xx is JSON naming what is allowed: ``allowed`` (values, parameters or methods),
  ``agents`` (unknown agent), ``routes`` (unknown path), or the 401 message;
* with a token configured, nothing but the two probes answers without it: whatever the case,
  encoding, dot segments, slashes or query string of the path, and whatever else is in the
  ``Authorization`` header.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import string
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.testclient import TestClient

from telemetry_otel import Telemetry, TelemetryConfig
from telemetry_otel.instrumentation import Bus, gauge, instrument_service
from telemetry_otel.views import FORMATS, QUERY_PARAMETERS, VIEWS, create_app

BASE = "/api/demo/v1/telemetry"
ROUTES = (BASE, f"{BASE}/health", f"{BASE}/health/live", f"{BASE}/health/ready", "/metrics")
PROBES = {f"{BASE}/health/live", f"{BASE}/health/ready"}
TOKEN = "fuzz-t0ken-Value_1234567890"
STATUSES = {200, 400, 401, 404, 405, 503}
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE")
FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _runtime() -> Telemetry:
    telemetry = Telemetry(TelemetryConfig(service_name="fuzz"))
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
    for service in (memory, llm, provider):
        for index in range(10):
            service.record_request(0.01 * (index + 1), index == 0)
        service.report_health("pass")
    return telemetry


@pytest.fixture(scope="module")
def apps() -> Iterator[dict[str, Starlette]]:
    telemetry = _runtime()
    built = {
        "open": create_app(telemetry, agent="demo"),
        "guarded": create_app(telemetry, agent="demo", token=TOKEN),
    }
    yield built
    telemetry.shutdown()


@pytest.fixture(scope="module")
def clients(apps: dict[str, Starlette]) -> Iterator[dict[str, TestClient]]:
    with TestClient(apps["open"]) as open_client, TestClient(apps["guarded"]) as guarded_client:
        assert open_client.get(BASE).status_code == 200  # the first collection is made
        yield {"open": open_client, "guarded": guarded_client}


def _check(
    status: int, content_type: str, body: bytes, method: str, path: str, location: str | None = None
) -> None:
    """The properties every answer has."""
    if status == 307:
        # Starlette's redirect_slashes: a route's path with one trailing slash too many (or one
        # missing) redirects to the route itself; nothing else redirects.
        assert location is not None, path
        target = location.split("?")[0].removeprefix("http://127.0.0.1")
        assert target in ROUTES, (path, location)
        return
    assert status in STATUSES, (status, path, body[:300])
    if method == "HEAD" or status < 400:
        return
    assert content_type.startswith("application/json"), (status, content_type, body[:300])
    document = json.loads(body)
    assert isinstance(document["error"], str)
    assert document["error"]
    if status == 401:
        assert document == {"error": "missing or invalid bearer token"}
    elif status == 503:
        assert path.rstrip("/").endswith(("/health", "/health/ready")), (path, document)
    else:
        named = [key for key in ("allowed", "agents", "routes") if isinstance(document.get(key), list)]
        assert named, document


# -- query strings ---------------------------------------------------------------------------------

_KNOWN_VALUES = [
    *VIEWS,
    *FORMATS,
    "graph",
    "runtime",
    "memory",
    "llm",
    "openai_primary",
    "true",
    "false",
    "s",
    "ns",
]
#: Text an HTTP client can put in a URL (control characters are tried below HTTP, in raw bytes).
_text = st.text(alphabet=st.characters(exclude_categories=("Cc", "Cs")), max_size=12)
_key = st.one_of(st.sampled_from([*QUERY_PARAMETERS, "token", "access_token", "View", "x"]), _text)
_value = st.one_of(st.sampled_from([*_KNOWN_VALUES, "", "TRUE", "1", "summary "]), _text)


@st.composite
def query_strings(draw: st.DrawFn) -> str:
    """A raw query string: encoded pairs, raw text, stray ``%`` and ``&``/``=`` in odd places."""
    pairs = draw(st.lists(st.tuples(_key, _value), max_size=5))
    style = draw(st.sampled_from(["quoted", "raw", "mixed"]))
    parts: list[str] = []
    for key, value in pairs:
        if style == "quoted" or (style == "mixed" and draw(st.booleans())):
            parts.append(f"{quote(key, safe='')}={quote(value, safe='')}")
        else:
            parts.append(f"{key}={value}")
    noise = draw(st.sampled_from(["", "&", "&&", "%", "%zz", "%C3", "=", "a", "view", ";view=health", "#"]))
    return "&".join(parts) + noise


@FUZZ
@given(query=query_strings(), path=st.sampled_from([*ROUTES, "/nowhere", "/api/other/v1/telemetry"]))
def test_no_query_string_ever_causes_a_500(clients: dict[str, TestClient], query: str, path: str) -> None:
    response = clients["open"].get(f"{path}?{query}" if query else path)
    _check(response.status_code, response.headers.get("content-type", ""), response.content, "GET", path)


@FUZZ
@given(
    pairs=st.lists(
        st.tuples(st.sampled_from(QUERY_PARAMETERS), st.sampled_from(_KNOWN_VALUES)), min_size=1, max_size=3
    )
)
def test_a_bad_query_parameter_is_a_400_listing_the_allowed_values(
    clients: dict[str, TestClient], pairs: list[tuple[str, str]]
) -> None:
    response = clients["open"].get(BASE, params=pairs)
    keys = [key for key, _ in pairs]
    allowed = {
        "view": set(VIEWS),
        "format": set(FORMATS),
        "category": {"graph", "runtime"},
        "service": {"memory", "llm"},
        "live": {"true", "false"},
        "precision": {"s", "ms", "us", "ns"},
    }
    valid = len(set(keys)) == len(keys) and all(value in allowed[key] for key, value in pairs)
    if valid and response.status_code == 400:
        # A combination the endpoint refuses as such (a format for some views only, a precision
        # without format=influxdb): it says so.
        assert response.json()["allowed"], response.text
        return
    assert response.status_code == (200 if valid else 400), (pairs, response.text)
    if not valid:
        body = response.json()
        assert isinstance(body["allowed"], list)
        assert any(key in body["error"] for key in keys), body


# -- headers -----------------------------------------------------------------------------------------

_header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=40
)
_accept = st.one_of(
    st.sampled_from(
        [
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            "application/openmetrics-text;version=0.0.1;q=0.9, text/plain;q=0.1",
            "text/plain;version=0.0.4;q=2",
            "text/plain;q=-1",
            "*/*;q=nan",
            ";;;,,,",
            "application/openmetrics-text; q=0",
            "text/html",
        ]
    ),
    _header_text,
)
_encoding = st.one_of(
    st.sampled_from(["gzip", "gzip;q=0", "GZIP", "br, gzip;q=0.5", "identity", "*"]), _header_text
)
_authorization = st.one_of(
    st.sampled_from(
        [
            f"Bearer {TOKEN} ",
            f"bearer  {TOKEN}",
            f"Bearer {TOKEN.upper()}",
            f"Bearer {TOKEN[:-1]}",
            f"Bearer {TOKEN}x",
            f"Basic {TOKEN}",
            TOKEN,
            "Bearer",
            "",
        ]
    ),
    _header_text,
)


@FUZZ
@given(
    path=st.sampled_from(ROUTES),
    accept=_accept,
    encoding=_encoding,
    authorization=_authorization,
    extra=st.dictionaries(
        st.text(alphabet=string.ascii_letters + "-", min_size=1, max_size=10), _header_text, max_size=3
    ),
)
def test_no_header_ever_causes_a_500(
    clients: dict[str, TestClient],
    path: str,
    accept: str,
    encoding: str,
    authorization: str,
    extra: dict[str, str],
) -> None:
    text = {**extra, "Accept": accept, "Accept-Encoding": encoding, "Authorization": authorization}
    headers = {name: value.encode("latin-1") for name, value in text.items()}  # as sent on the wire
    for name, client in clients.items():
        response = client.get(path, headers=headers)
        _check(response.status_code, response.headers.get("content-type", ""), response.content, "GET", path)
        if name == "guarded" and path not in PROBES:
            # The only Authorization that opens is exactly "Bearer <token>" (scheme in any case).
            opens = authorization.strip().partition(" ")[0].lower() == "bearer" and (
                authorization.strip().partition(" ")[2].strip() == TOKEN
            )
            assert (response.status_code != 401) == opens, (authorization, response.status_code)
        if path == "/metrics" and response.status_code == 200:
            assert response.headers["content-type"].startswith(("text/plain", "application/openmetrics-text"))


def test_metrics_gzip_answers_decompress_to_the_plain_answer(clients: dict[str, TestClient]) -> None:
    plain = clients["open"].get("/metrics", headers={"Accept-Encoding": "identity"})
    zipped = clients["open"].get("/metrics", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers.get("content-encoding") == "gzip"
    assert zipped.content == plain.content  # the client decompressed it
    raw = gzip.compress(plain.content)
    assert gzip.decompress(raw) == plain.content


# -- methods and paths -------------------------------------------------------------------------------


def _flip_case(draw: st.DrawFn, text: str) -> str:
    return "".join(char.swapcase() if draw(st.booleans()) else char for char in text)


def _encode_some(draw: st.DrawFn, text: str) -> str:
    return "".join(
        f"%{ord(char):02X}" if char.isascii() and char != "/" and draw(st.booleans()) else char
        for char in text
    )


@st.composite
def path_variants(draw: st.DrawFn) -> str:
    """A route, mangled: case, percent-encoding, slashes, dot segments, suffixes, other agents."""
    path = draw(st.sampled_from([*ROUTES, "/", "/api", "/api/demo", "/nowhere", "/metrics/x"]))
    for mangle in draw(
        st.lists(st.sampled_from(["case", "encode", "slash", "dot", "suffix", "agent"]), max_size=3)
    ):
        if mangle == "case":
            path = _flip_case(draw, path)
        elif mangle == "encode":
            path = _encode_some(draw, path)
        elif mangle == "slash":
            path = path.replace("/", "//", 1) if draw(st.booleans()) else path + "/"
        elif mangle == "dot":
            path = path + draw(st.sampled_from(["/.", "/..", "/./", "/../", "/%2e%2e/", "/health/live/.."]))
        elif mangle == "suffix":
            path = path + draw(st.sampled_from(["%00", "%20", ";x", ".json", "~", "/live", "%2F"]))
        else:
            agent = draw(
                st.text(alphabet=string.ascii_letters + string.digits + "-_.%", min_size=1, max_size=8)
            )
            path = path.replace("/demo/", f"/{agent}/", 1)
    return path


@FUZZ
@given(
    method=st.sampled_from(METHODS),
    path=path_variants(),
    query=st.sampled_from(["", f"token={TOKEN}", "view=health"]),
)
def test_no_method_or_path_ever_causes_a_500_and_none_opens_without_the_token(
    clients: dict[str, TestClient], method: str, path: str, query: str
) -> None:
    # Absolute, so that a path starting with "//" is a path, not a host.
    url = f"http://testserver{path}?{query}" if query else f"http://testserver{path}"
    for name, client in clients.items():
        response = client.request(method, url)
        _check(response.status_code, response.headers.get("content-type", ""), response.content, method, path)
        if name == "guarded":
            reached = response.request.url.path
            if unquote(reached) not in PROBES:
                assert response.status_code == 401, (method, url, reached, response.status_code)
        if method not in ("GET", "HEAD") and response.status_code == 405:
            assert response.json()["allowed"] == ["GET"]


# -- below HTTP: raw ASGI scopes ------------------------------------------------------------------------


def _asgi(
    app: Starlette, method: str, raw_path: bytes, query: bytes, headers: list[tuple[bytes, bytes]]
) -> tuple[int, str, bytes, str | None]:
    messages: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(raw_path.decode("latin-1"), errors="surrogateescape"),
        "raw_path": raw_path,
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(message for message in messages if message["type"] == "http.response.start")
    body = b"".join(
        message.get("body", b"") for message in messages if message["type"] == "http.response.body"
    )
    headers = dict(start["headers"])
    content_type = headers.get(b"content-type", b"").decode("latin-1")
    location = headers[b"location"].decode("latin-1") if b"location" in headers else None
    return start["status"], content_type, body, location


_raw = st.binary(max_size=30)
#: Query strings as a server hands them over: any text, UTF-8 encoded (raw bytes that are not UTF-8
#: are the subject of ``test_a_query_string_that_is_not_utf8_is_never_a_500``).
_raw_query = st.one_of(
    st.text(max_size=30).map(lambda text: text.encode("utf-8")),
    st.sampled_from([b"view=%ff", b"view=%", b"format=%C3%28", b"view=sum\x00mary", b"live=%00", b"&&=&"]),
)


@FUZZ
@given(
    route=st.sampled_from(ROUTES),
    suffix=_raw.filter(lambda raw: b"?" not in raw),
    query=_raw_query,
    headers=st.lists(
        st.tuples(
            st.sampled_from([b"accept", b"accept-encoding", b"authorization", b"x-any", b"Accept"]), _raw
        ),
        max_size=4,
    ),
)
def test_raw_bytes_in_path_query_and_headers_never_cause_a_500(
    apps: dict[str, Starlette], route: str, suffix: bytes, query: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    raw_path = route.encode() + suffix
    for name, app in apps.items():
        status, content_type, body, location = _asgi(app, "GET", raw_path, query, headers)
        _check(status, content_type, body, "GET", route, location)
        if name == "guarded" and status != 401:
            path = unquote(raw_path.decode("latin-1"), errors="surrogateescape")
            assert path in PROBES or any(
                value == f"Bearer {TOKEN}".encode()
                for key, value in headers
                if key.lower() == b"authorization"
            ), (raw_path, headers, status)


@pytest.mark.parametrize("route", [*ROUTES, "/nowhere", f"{BASE}/nowhere", f"{BASE}/"])
def test_a_query_string_that_is_not_utf8_is_never_a_500(apps: dict[str, Starlette], route: str) -> None:
    """Regression (views/_app.py, ``_http_error``): the 404 handler reads ``request.url.path``, and building
    ``request.url`` decodes the whole query string as UTF-8, so ``GET /nowhere?\\x80`` raises
    ``UnicodeDecodeError`` (a 500) instead of answering the 404. The ASGI specification allows any
    bytes in ``query_string``; uvicorn's default h11 parser refuses such a request line itself (400),
    other servers and parsers hand it to the app. ``request.scope["path"]`` has the path without
    decoding the query. The same decoding breaks Starlette's trailing-slash redirect (``{BASE}/``),
    which builds the redirect URL from the scope: ``app.router.redirect_slashes = False`` turns
    that case into the 404 too."""
    for app in apps.values():
        status, content_type, body, location = _asgi(app, "GET", route.encode(), b"view=\x80\xff", [])
        _check(status, content_type, body, "GET", route, location)
