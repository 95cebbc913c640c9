"""The HTTP metrics middleware on a real Starlette app served by uvicorn, driven over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import random
import string
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx2 as httpx
import pytest
from opentelemetry.sdk.metrics.export import Histogram, HistogramDataPoint, NumberDataPoint, Sum
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from telemetry_otel import Telemetry, TelemetryConfig
from telemetry_otel.instrumentation import HTTPMetricsMiddleware, instrument_service
from telemetry_otel.vocabulary import HTTP_DURATION_BUCKETS, HTTP_SCOPE_NAME

STREAM_CHUNKS = 4
STREAM_PAUSE_SECONDS = 0.1

Series = dict[frozenset[tuple[str, Any]], HistogramDataPoint]


def http_series(telemetry: Telemetry) -> tuple[Series, dict[frozenset[tuple[str, Any]], float]]:
    """The duration histogram points and the active-request values by attribute set."""
    durations: Series = {}
    active: dict[frozenset[tuple[str, Any]], float] = {}
    for resource_metrics in telemetry.read_metrics().resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            if scope_metrics.scope.name != HTTP_SCOPE_NAME:
                continue
            for metric in scope_metrics.metrics:
                if metric.name == "http.server.request.duration":
                    assert isinstance(metric.data, Histogram)
                    assert metric.unit == "s"
                    for point in metric.data.data_points:
                        durations[frozenset((point.attributes or {}).items())] = point
                elif metric.name == "http.server.active_requests":
                    assert isinstance(metric.data, Sum)
                    assert not metric.data.is_monotonic
                    for number in metric.data.data_points:
                        assert isinstance(number, NumberDataPoint)
                        active[frozenset((number.attributes or {}).items())] = number.value
    return durations, active


def settled(telemetry: Telemetry, requests: int) -> tuple[Series, dict[frozenset[tuple[str, Any]], float]]:
    """The series once ``requests`` requests are recorded: the middleware records a request after its
    last body message is sent, so the client may read the response a moment before that."""
    deadline = time.monotonic() + 10
    while True:
        durations, active = http_series(telemetry)
        if sum(point.count for point in durations.values()) >= requests or time.monotonic() > deadline:
            return durations, active
        time.sleep(0.01)


def key(method: str, status: int | None, route: str | None = None, error: str | None = None) -> frozenset:
    attributes: dict[str, Any] = {"http.request.method": method, "url.scheme": "http"}
    if route is not None:
        attributes["http.route"] = route
    if status is not None:
        attributes["http.response.status_code"] = status
    if error is not None:
        attributes["error.type"] = error
    return frozenset(attributes.items())


class Gate:
    """Holds ``/slow`` open until the test releases it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()


def make_app(gate: Gate, started: list[str]) -> Starlette:
    async def item(request: Request) -> Response:
        return JSONResponse({"id": request.path_params["item_id"]})

    async def create(request: Request) -> Response:
        return Response(status_code=201)

    async def boom(request: Request) -> Response:
        raise RuntimeError("handler failed")

    async def unavailable(request: Request) -> Response:
        return PlainTextResponse("down", status_code=503)

    async def stream(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(STREAM_CHUNKS):
                await asyncio.sleep(STREAM_PAUSE_SECONDS)
                yield b"chunk\n"

        return StreamingResponse(chunks(), media_type="text/plain")

    async def slow(request: Request) -> Response:
        gate.entered.set()
        while not gate.release.is_set():
            await asyncio.sleep(0.01)
        return PlainTextResponse("done")

    async def user(request: Request) -> Response:
        return PlainTextResponse(request.path_params["user_id"])

    async def metrics(request: Request) -> Response:
        return PlainTextResponse("# telemetry route\n")

    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        started.append("lifespan")
        yield

    app = Starlette(
        routes=[
            Route("/items/{item_id:int}", item, methods=["GET"]),
            Route("/items", create, methods=["POST"]),
            Route("/boom", boom),
            Route("/unavailable", unavailable),
            Route("/stream", stream),
            Route("/slow", slow),
            Route("/metrics", metrics),
            Mount("/api/v1", routes=[Route("/users/{user_id}", user)]),
            WebSocketRoute("/ws", socket),
        ],
        lifespan=lifespan,
    )
    return app


@pytest.fixture
def served(telemetry: Telemetry, live_server: Callable[..., Any]) -> tuple[str, Gate, list[str]]:
    gate, started = Gate(), []
    app = make_app(gate, started)
    service = instrument_service("api", category="runtime", telemetry=telemetry)
    app.add_middleware(HTTPMetricsMiddleware, telemetry=telemetry, service=service)
    return live_server(app).url, gate, started


def test_exact_counts_per_route_template_and_status(
    telemetry: Telemetry, served: tuple[str, Gate, list[str]]
) -> None:
    url, _, started = served
    assert started == ["lifespan"]  # the lifespan scope went through untouched
    with httpx.Client(base_url=url) as client:
        for item_id in range(7):
            assert client.get(f"/items/{item_id}").status_code == 200
        for _ in range(3):
            assert client.post("/items").status_code == 201
        for name in ("ada", "grace"):
            assert client.get(f"/api/v1/users/{name}").status_code == 200
        assert client.delete("/items/1").status_code == 405  # the route matched, not the method
        assert client.request("BREW", "/items/1").status_code == 405
        assert client.get("/unavailable").status_code == 503
        assert client.get("/metrics").status_code == 200  # excluded by default
    durations, active = settled(telemetry, 15)
    counts = {attributes: point.count for attributes, point in durations.items()}
    assert counts == {
        key("GET", 200, "/items/{item_id}"): 7,
        key("POST", 201, "/items"): 3,
        key("GET", 200, "/api/v1/users/{user_id}"): 2,
        key("DELETE", 405, "/items/{item_id}"): 1,
        key("_OTHER", 405, "/items/{item_id}"): 1,
        key("GET", 503, "/unavailable", "503"): 1,
    }
    for point in durations.values():
        assert tuple(point.explicit_bounds) == HTTP_DURATION_BUCKETS
        assert sum(point.bucket_counts) == point.count
    assert active == {
        key("GET", None): 0,
        key("POST", None): 0,
        key("DELETE", None): 0,
        key("_OTHER", None): 0,
    }
    # The service's vitals count the same requests, the 503 as its one error.
    vitals = telemetry.read_metrics()
    totals = {
        metric.name: sum(point.value for point in metric.data.data_points)  # type: ignore[union-attr]
        for resource_metrics in vitals.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        if metric.name in ("service.requests", "service.errors")
    }
    assert totals == {"service.requests": 15, "service.errors": 1}


def test_random_404_paths_add_no_series(telemetry: Telemetry, served: tuple[str, Gate, list[str]]) -> None:
    url, _, _ = served
    rng = random.Random(20)
    with httpx.Client(base_url=url) as client:
        assert client.get("/no/such/page").status_code == 404
        before, _ = settled(telemetry, 1)
        for _ in range(10_000):
            path = "/" + "".join(rng.choices(string.ascii_lowercase + string.digits, k=12))
            assert client.get(path).status_code == 404
    after, _ = settled(telemetry, 10_001)
    assert set(after) == set(before)
    assert after[key("GET", 404)].count == 10_001


def test_an_exception_is_counted_with_its_error_type(
    telemetry: Telemetry, served: tuple[str, Gate, list[str]]
) -> None:
    url, _, _ = served
    for _ in range(2):  # uvicorn closes the connection after an exception: one client each
        assert httpx.get(f"{url}/boom").status_code == 500
    durations, active = settled(telemetry, 2)
    assert durations[key("GET", 500, "/boom", "RuntimeError")].count == 2
    assert active[key("GET", None)] == 0


def test_a_streaming_response_is_timed_to_its_end(
    telemetry: Telemetry, served: tuple[str, Gate, list[str]]
) -> None:
    url, _, _ = served
    with httpx.Client(base_url=url) as client:
        started = time.perf_counter()
        response = client.get("/stream")
        elapsed = time.perf_counter() - started
    assert response.text == "chunk\n" * STREAM_CHUNKS
    point = settled(telemetry, 1)[0][key("GET", 200, "/stream")]
    streamed = STREAM_CHUNKS * STREAM_PAUSE_SECONDS
    assert point.count == 1
    assert streamed <= point.sum <= elapsed  # the whole body, and no more than the client waited


def test_active_requests_while_a_request_runs(
    telemetry: Telemetry, served: tuple[str, Gate, list[str]]
) -> None:
    url, gate, _ = served
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(httpx.get(f"{url}/slow", timeout=30).status_code))
    thread.start()
    try:
        assert gate.entered.wait(10)
        assert http_series(telemetry)[1] == {key("GET", None): 1}
    finally:
        gate.release.set()
        thread.join(30)
    assert result == [200]
    durations, active = settled(telemetry, 1)
    assert active == {key("GET", None): 0}
    assert durations[key("GET", 200, "/slow")].count == 1


def test_websocket_and_lifespan_scopes_pass_through_untouched(telemetry: Telemetry) -> None:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)
        await send({"type": "websocket.close", "code": 1000})

    middleware = HTTPMetricsMiddleware(app, telemetry=telemetry)
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    for kind in ("websocket", "lifespan"):
        scope: Scope = {"type": kind, "path": "/ws", "headers": []}
        asyncio.run(middleware(scope, receive, send))
        assert seen[-1] is scope
    assert sent == [{"type": "websocket.close", "code": 1000}] * 2
    assert http_series(telemetry) == ({}, {})


def test_excluded_paths_are_configurable(telemetry: Telemetry, live_server: Callable[..., Any]) -> None:
    app = make_app(Gate(), [])
    app.add_middleware(HTTPMetricsMiddleware, telemetry=telemetry, exclude_paths=["/items/*"])
    url = live_server(app).url
    with httpx.Client(base_url=url) as client:
        assert client.get("/items/3").status_code == 200
        assert client.get("/metrics").status_code == 200  # measured: the default list was replaced
    counts = {attributes: point.count for attributes, point in settled(telemetry, 2)[0].items()}
    assert counts == {key("GET", 200, "/metrics"): 1}


def test_a_fastapi_app_with_a_prefixed_router(telemetry: Telemetry, live_server: Callable[..., Any]) -> None:
    from fastapi import APIRouter, FastAPI, HTTPException

    router = APIRouter(prefix="/orders")

    @router.get("/{order_id}")
    async def order(order_id: int) -> dict[str, int]:
        if order_id == 0:
            raise HTTPException(status_code=404, detail="no such order")
        return {"order_id": order_id}

    app = FastAPI()
    app.include_router(router, prefix="/api")
    app.add_middleware(HTTPMetricsMiddleware, telemetry=telemetry)
    url = live_server(app).url
    with httpx.Client(base_url=url) as client:
        for order_id in (1, 2, 3):
            assert client.get(f"/api/orders/{order_id}").status_code == 200
        assert client.get("/api/orders/0").status_code == 404  # raised by the handler: still no route
        assert client.get("/api/orders/x").status_code == 422  # validation: the route matched
    counts = {attributes: point.count for attributes, point in settled(telemetry, 5)[0].items()}
    assert counts == {
        key("GET", 200, "/api/orders/{order_id}"): 3,
        key("GET", 404): 1,
        key("GET", 422, "/api/orders/{order_id}"): 1,
    }


@pytest.fixture
def small_runtime() -> Iterator[Telemetry]:
    runtime = Telemetry(TelemetryConfig(service_name="small", cardinality_limit=3))
    yield runtime
    runtime.shutdown()


def test_attribute_sets_beyond_the_cardinality_limit_fold_into_overflow(small_runtime: Telemetry) -> None:
    runtime = small_runtime

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        status = int(scope["path"].strip("/"))
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = HTTPMetricsMiddleware(app, telemetry=runtime)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        pass

    async def requests() -> None:
        for status in (200, 201, 202, 203, 204, 200):
            await middleware(
                {"type": "http", "method": "GET", "path": f"/{status}", "headers": []}, receive, send
            )

    asyncio.run(requests())
    counts = {attributes: point.count for attributes, point in http_series(runtime)[0].items()}
    # Two attribute sets are kept (the limit less the overflow series); the rest fold into one.
    assert counts == {
        key("GET", 200): 2,
        key("GET", 201): 1,
        frozenset({("otel.metric.overflow", True)}): 3,
    }
