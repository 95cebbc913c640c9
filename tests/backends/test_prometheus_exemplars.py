"""A real Prometheus with exemplar storage scrapes an app whose HTTP metrics and vitals keep the spans
the test starts through the OTel SDK, and returns those trace ids from ``/api/v1/query_exemplars``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx2 as httpx
import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.propagate import inject
from opentelemetry.sdk.trace import TracerProvider
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from telemetry_otel import Telemetry, TelemetryConfig
from telemetry_otel.instrumentation import HTTPMetricsMiddleware, instrument_service
from telemetry_otel.views import create_app

if TYPE_CHECKING:
    from _support import Prometheus

pytestmark = pytest.mark.backend


def test_prometheus_stores_and_returns_the_exemplars(
    prometheus_exemplars: Prometheus, live_server: Callable[..., Any]
) -> None:
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(TracerProvider())
    tracer = trace.get_tracer("exemplar-backend-test")
    telemetry = Telemetry(TelemetryConfig(service_name="exemplars", live_min_interval_millis=0))
    try:
        service = instrument_service("api", category="runtime", telemetry=telemetry)
        service.report_health("pass")

        async def item(request: Request) -> Response:
            return PlainTextResponse("ok")

        app = create_app(telemetry, agent="ex", cache_ttl_seconds=0.2)
        app.router.routes.append(Route("/items/{item_id}", item))
        app.add_middleware(HTTPMetricsMiddleware, telemetry=telemetry, service=service)
        server = live_server(OpenTelemetryMiddleware(app))
        started = time.time()
        trace_ids: list[str] = []
        for item_id in range(3):
            with tracer.start_as_current_span("client") as span:
                headers: dict[str, str] = {}
                inject(headers)
                assert httpx.get(f"{server.url}/items/{item_id}", headers=headers).status_code == 200
            trace_ids.append(f"{span.get_span_context().trace_id:032x}")
        target = server.url.removeprefix("http://")
        prometheus_exemplars.scrape(target, "exemplars")
        assert prometheus_exemplars.wait_for_scrape(target, timeout=20)["health"] == "up"

        def stored(metric: str) -> list[dict[str, str]]:
            deadline = time.monotonic() + 20
            while True:
                series = prometheus_exemplars.query_exemplars(metric, started - 1, time.time() + 60)
                found = [exemplar["labels"] for entry in series for exemplar in entry["exemplars"]]
                if found or time.monotonic() > deadline:
                    return found
                time.sleep(0.2)

        http = stored('http_server_request_duration_seconds_bucket{http_route="/items/{item_id}"}')
        vitals = stored('service_request_duration_seconds_bucket{service_name="api"}')
        # Each bucket keeps its latest exemplar: every one is a trace this test started, and the
        # last request's is among them (the requests may fall in different buckets).
        for found in (http, vitals):
            ids = {labels["trace_id"] for labels in found}
            assert trace_ids[-1] in ids
            assert ids <= set(trace_ids)
        assert all(len(labels["span_id"]) == 16 for labels in http + vitals)
    finally:
        telemetry.shutdown()
