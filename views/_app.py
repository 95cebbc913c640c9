"""The Starlette application: the unified telemetry endpoint and the Prometheus scrape."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from opentelemetry.sdk.metrics.export import MetricsData
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from telemetry_otel import CachedCollection, Collection, CollectionCache, Telemetry, __version__
from telemetry_otel.formats import (
    OPENMETRICS_CONTENT_TYPE,
    PROMETHEUS_TEXT_CONTENT_TYPE,
    encode_graphite,
    encode_influx,
    encode_openmetrics,
    encode_prometheus_text,
    negotiate_exposition,
    wants_gzip,
)
from telemetry_otel.views._auth import BearerTokenMiddleware
from telemetry_otel.views._detailed import iso_time
from telemetry_otel.views._health_json import health_json
from telemetry_otel.views._history import StatusHistory
from telemetry_otel.views._html import HTML_VIEWS, refresh_seconds_for, status_page
from telemetry_otel.views._model import ViewInputs
from telemetry_otel.views._render import VIEWS, render_view, view_metrics
from telemetry_otel.views._thresholds import Thresholds

__all__ = ["FORMATS", "HEALTH_JSON", "QUERY_PARAMETERS", "create_app"]

_logger = logging.getLogger("telemetry_otel.views")

#: The formats every view is served in, and their content types.
FORMATS: dict[str, str] = {
    "json": "application/json",
    "prometheus": PROMETHEUS_TEXT_CONTENT_TYPE,
    "openmetrics": OPENMETRICS_CONTENT_TYPE,
    "graphite": "text/plain; charset=utf-8",
    "influxdb": "text/plain; charset=utf-8",
    "html": "text/html; charset=utf-8",
}
_ENCODERS: dict[str, Callable[[MetricsData], str]] = {
    "prometheus": encode_prometheus_text,
    "openmetrics": encode_openmetrics,
    "graphite": encode_graphite,
    "influxdb": encode_influx,
}
#: Query parameters of the unified endpoint; ``category`` and ``service`` take registered names.
QUERY_PARAMETERS = ("view", "format", "category", "service", "live")
_BOOLEANS = {"true": True, "false": False}
HEALTH_JSON = "application/health+json"


def create_app(
    telemetry: Telemetry,
    *,
    agent: str = "demo",
    cache_ttl_seconds: float = 30.0,
    thresholds: Thresholds | Mapping[str, object] | None = None,
    token: str | None = None,
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
    on_shutdown: Sequence[Callable[[], None]] = (),
) -> Starlette:
    """Build the ASGI app serving ``telemetry`` as agent ``agent``.

    Routes (``/api/{agent}/v1/telemetry`` is ``{base}``):

    * ``GET {base}?view=&format=&category=&service=&live=``: every view in every format;
    * ``GET {base}/health``: ``application/health+json``, 200 for pass/warn and 503 for fail;
    * ``GET {base}/health/live`` and ``{base}/health/ready``: the probes (always open);
    * ``GET /metrics``: the Prometheus scrape (text 0.0.4 or OpenMetrics by ``Accept``, gzip).

    ``thresholds`` overrides alert thresholds (a :class:`Thresholds` or a mapping of its fields).
    With ``token``, every other path needs ``Authorization: Bearer <token>``. ``background``
    coroutines (a demo runtime's ``run``) run for the app's lifetime; ``on_shutdown`` callbacks at
    its end.
    """
    cache = CollectionCache(telemetry, ttl_seconds=cache_ttl_seconds)
    rendered = _RenderCache()
    history = StatusHistory()  # runtime-wide trend points of the status page, one per new collection
    refresh_seconds = refresh_seconds_for(cache_ttl_seconds)
    if thresholds is None:
        limits = Thresholds()
    elif isinstance(thresholds, Thresholds):
        limits = thresholds
    else:
        limits = Thresholds.from_mapping(thresholds)
    base = f"/api/{agent}/v1/telemetry"
    probes = {f"{base}/health/live", f"{base}/health/ready"}

    def inputs(served: CachedCollection, category: str | None, service: str | None) -> ViewInputs:
        return ViewInputs(
            collection=served.collection,
            previous=served.previous,
            components=telemetry.components.snapshot(),
            buses=telemetry.components.buses(),
            thresholds=limits,
            now_unix_nano=time.time_ns(),
            category=category,
            service=service,
        )

    def meta(view: str, served: CachedCollection) -> dict[str, Any]:
        return {
            "agent": agent,
            "view": view,
            "timestamp": iso_time(served.collection.time_unix_nano),
            "generated_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "collection_duration_seconds": round(served.collection.duration_seconds, 6),
            "cached": served.cached,
            "cache_age_seconds": round(served.age_seconds, 3),
            "package_version": __version__,
            "sdk_disabled": served.collection.sdk_disabled,
        }

    async def telemetry_endpoint(request: Request) -> Response:
        problem = _check_agent(request, agent)
        if problem is not None:
            return problem
        query = _parse_query(request, telemetry)
        if isinstance(query, Response):
            return query
        if query.format == "html" and query.view not in HTML_VIEWS:
            return _error(
                400,
                f"format=html shows the summary and health views, not {query.view!r}",
                allowed=list(HTML_VIEWS),
            )
        served = await _collect(cache, live=query.live)
        if isinstance(served, Response):
            return served
        if history.is_new(served.collection.time_unix_nano):
            summary = render_view("summary", inputs(served, None, None)).document
            history.record(served.collection.time_unix_nano, summary)
        body = rendered.get(served.collection, query)
        if body is None and query.format == "html":
            page = status_page(
                inputs(served, query.category, query.service),
                history.points(),
                agent=agent,
                refresh_seconds=refresh_seconds,
            )
            body = page.encode("utf-8")
            rendered.put(served.collection, query, body)
        if body is None:
            view_inputs = inputs(served, query.category, query.service)
            view = render_view(query.view, view_inputs)
            if query.format == "json":
                body = json.dumps(view.document, allow_nan=False, separators=(",", ":")).encode("utf-8")
            else:
                body = _ENCODERS[query.format](view_metrics(view_inputs, view)).encode("utf-8")
            rendered.put(served.collection, query, body)
        if query.format == "json":
            # The view is rendered once per collection and query; the metadata is per request.
            head = json.dumps(meta(query.view, served), separators=(",", ":")).encode("utf-8")
            body = head[:-1] + b"," + body[1:] if body != b"{}" else head
        return Response(body, media_type=FORMATS[query.format])

    async def health_endpoint(request: Request) -> Response:
        problem = _check_agent(request, agent)
        if problem is not None:
            return problem
        if request.query_params:
            return _error(400, "the health endpoint takes no query parameters", allowed=[])
        served = await _collect(cache, live=False)
        if isinstance(served, Response):
            return served
        document = health_json(render_view("health", inputs(served, None, None)).document, agent)
        status = 503 if document["status"] == "fail" else 200
        return JSONResponse(document, status_code=status, media_type=HEALTH_JSON)

    async def live_endpoint(request: Request) -> Response:
        problem = _check_agent(request, agent)
        if problem is not None:
            return problem
        # Liveness is the process answering: it never depends on the services.
        return JSONResponse({"status": "pass"}, media_type=HEALTH_JSON)

    async def ready_endpoint(request: Request) -> Response:
        problem = _check_agent(request, agent)
        if problem is not None:
            return problem
        if cache.latest is None:
            return JSONResponse(
                {"status": "fail", "output": "no collection has completed yet"},
                status_code=503,
                media_type=HEALTH_JSON,
            )
        return JSONResponse({"status": "pass"}, media_type=HEALTH_JSON)

    async def metrics_endpoint(request: Request) -> Response:
        served = await _collect(cache, live=False)
        if isinstance(served, Response):
            return served
        encode, content_type = negotiate_exposition(request.headers.get("accept"))
        body = encode(served.collection.metrics).encode("utf-8")
        headers = {"Vary": "Accept, Accept-Encoding"}
        if wants_gzip(request.headers.get("accept-encoding")):
            body = gzip.compress(body, compresslevel=6)
            headers["Content-Encoding"] = "gzip"
        return Response(body, media_type=content_type, headers=headers)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(run()) for run in background]
        for task in tasks:
            task.add_done_callback(_log_crash)
        loop = asyncio.get_running_loop()

        def from_cache(timeout_millis: float) -> MetricsData:
            served = asyncio.run_coroutine_threadsafe(cache.get(), loop).result(timeout_millis / 1000)
            return served.collection.metrics

        # Exporters read the server's collections: one cycle per cache window for views and exports.
        telemetry.exports.use_source(from_cache)
        warm_up = asyncio.create_task(cache.get())  # readiness: the first collection, in the background
        warm_up.add_done_callback(_log_crash)
        try:
            yield
        finally:
            # Before the shutdown callbacks: a final export must not wait on this loop from this loop.
            telemetry.exports.use_source(None)
            warm_up.cancel()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):  # a crash was logged when it happened
                    await task
            for callback in on_shutdown:
                try:
                    callback()
                except Exception:  # one failing callback must not skip the others
                    _logger.exception("shutdown callback %r failed", callback)

    app = Starlette(
        routes=[
            Route("/api/{agent}/v1/telemetry", telemetry_endpoint, methods=["GET"]),
            Route("/api/{agent}/v1/telemetry/health", health_endpoint, methods=["GET"]),
            Route("/api/{agent}/v1/telemetry/health/live", live_endpoint, methods=["GET"]),
            Route("/api/{agent}/v1/telemetry/health/ready", ready_endpoint, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
        ],
        middleware=[]
        if token is None
        else [Middleware(BearerTokenMiddleware, token=token, is_open=probes.__contains__)],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    # No redirect for a trailing slash: every unknown path is a 404 that lists the routes.
    app.router.redirect_slashes = False
    app.state.cache = cache
    app.state.agent = agent
    return app


def _log_crash(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _logger.error("background task stopped: %r", task.exception(), exc_info=task.exception())


async def _collect(cache: CollectionCache, *, live: bool) -> CachedCollection | Response:
    try:
        return await cache.get(live=live)
    except Exception as exc:  # the SDK read failed; nothing partial is served as if whole
        _logger.exception("collection failed")
        return _error(503, f"collection failed: {type(exc).__name__}: {exc}")


def _check_agent(request: Request, agent: str) -> Response | None:
    requested = request.path_params["agent"]
    if requested != agent:
        return _error(404, f"unknown agent {requested!r}", agents=[agent])
    return None


class _RenderCache:
    """Rendered bodies of the current collection, by query; emptied when the collection changes."""

    def __init__(self) -> None:
        self._collection: Collection | None = None
        self._bodies: dict[_Query, bytes] = {}

    def get(self, collection: Collection, query: _Query) -> bytes | None:
        if collection is not self._collection:
            return None
        return self._bodies.get(query)

    def put(self, collection: Collection, query: _Query, body: bytes) -> None:
        if collection is not self._collection:
            self._collection, self._bodies = collection, {}
        self._bodies[query] = body


@dataclass(frozen=True)
class _Query:
    view: str
    format: str
    category: str | None
    service: str | None
    live: bool


def _parse_query(request: Request, telemetry: Telemetry) -> _Query | Response:
    """The validated query, or a 400 naming the parameter and every value it allows."""
    params = request.query_params
    for key in params:
        if key not in QUERY_PARAMETERS:
            return _error(400, f"unknown query parameter {key!r}", allowed=list(QUERY_PARAMETERS))
    components = telemetry.components.snapshot()
    choices: dict[str, Sequence[str]] = {
        "view": VIEWS,
        "format": list(FORMATS),
        "category": sorted({c.category for c in components if c.category is not None}),
        "service": sorted(c.name for c in components if c.category is not None),
        "live": list(_BOOLEANS),
    }
    chosen: dict[str, str | None] = {}
    for key, allowed in choices.items():
        values = params.getlist(key)
        if len(values) > 1:
            return _error(400, f"query parameter {key!r} given {len(values)} times", allowed=list(allowed))
        if values and values[0] not in allowed:
            return _error(400, f"{key}={values[0]!r} is not one of the allowed values", allowed=list(allowed))
        chosen[key] = values[0] if values else None
    return _Query(
        view=chosen["view"] or "summary",
        format=chosen["format"] or "json",
        category=chosen["category"],
        service=chosen["service"],
        live=_BOOLEANS[chosen["live"] or "false"],
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    routes = [
        "/api/{agent}/v1/telemetry",
        "/api/{agent}/v1/telemetry/health",
        "/api/{agent}/v1/telemetry/health/live",
        "/api/{agent}/v1/telemetry/health/ready",
        "/metrics",
    ]
    if exc.status_code == 404:
        # scope["path"], not request.url: a query string that is not UTF-8 must not make this a 500.
        return _error(404, f"no route {request.scope.get('path', '')!r}", routes=routes)
    if exc.status_code == 405:
        return _error(405, f"method {request.method} is not allowed here", allowed=["GET"])
    return _error(exc.status_code, str(exc.detail))


def _error(status: int, message: str, **details: Any) -> JSONResponse:
    return JSONResponse({"error": message, **details}, status_code=status)
