"""The Starlette application: the unified telemetry endpoint and the Prometheus scrape."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from opentelemetry.sdk.metrics.export import MetricsData
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from telemetry_otel import (
    DEFAULT_CACHE_TTL_SECONDS,
    CachedCollection,
    Collection,
    CollectionCycle,
    Telemetry,
    __version__,
)
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
from telemetry_otel.views._auth import BearerTokenMiddleware, check_token
from telemetry_otel.views._detailed import iso_time
from telemetry_otel.views._health_json import health_json
from telemetry_otel.views._history import StatusHistory
from telemetry_otel.views._html import HTML_VIEWS, refresh_seconds_for, render_html
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
}
_PRECISIONS: dict[str, Literal["s", "ms", "us", "ns"]] = {"s": "s", "ms": "ms", "us": "us", "ns": "ns"}
#: Query parameters of the unified endpoint; ``category`` and ``service`` take registered names.
QUERY_PARAMETERS = ("view", "format", "category", "service", "live", "precision")
#: Timestamp units of ``format=influxdb`` (``precision=``); the default is InfluxDB's own, ``ns``.
INFLUX_PRECISIONS = ("s", "ms", "us", "ns")
_BOOLEANS = {"true": True, "false": False}
HEALTH_JSON = "application/health+json"


def create_app(
    telemetry: Telemetry,
    *,
    agent: str = "demo",
    cache_ttl_seconds: float = DEFAULT_CACHE_TTL_SECONDS,
    thresholds: Thresholds | Mapping[str, object] | None = None,
    token: str | None = None,
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
    on_shutdown: Sequence[Callable[[], None]] = (),
) -> Starlette:
    """Build the ASGI app serving ``telemetry`` as agent ``agent``.

    Routes (``/api/{agent}/v1/telemetry`` is ``{base}``):

    * ``GET {base}?view=&format=&category=&service=&live=&precision=``: every view in every format
      (``precision``: the timestamp unit of ``format=influxdb``, ``s|ms|us|ns``, default ``ns``);
    * ``GET {base}/health``: ``application/health+json``, 200 for pass/warn and 503 for fail;
    * ``GET {base}/health/live`` and ``{base}/health/ready``: the probes (always open);
    * ``GET /metrics``: the Prometheus scrape (text 0.0.4 or OpenMetrics by ``Accept``, gzip).

    Every route asks the runtime's collection cycle for a collection no older than
    ``cache_ttl_seconds`` and never waits on a refresh while a completed collection exists (only
    the first collection, a TTL of 0 and ``live=true`` wait). ``thresholds`` overrides alert
    thresholds (a :class:`Thresholds` or a mapping of its fields). With ``token``, every other path
    needs ``Authorization: Bearer <token>``. ``background`` coroutines (a demo runtime's ``run``) run
    for the app's lifetime; ``on_shutdown`` callbacks at its end.
    """
    if not cache_ttl_seconds >= 0:
        raise ValueError(f"cache_ttl_seconds must be zero or positive, got {cache_ttl_seconds!r}")
    if token is not None:
        check_token(token)  # at start-up: a token no request can present is refused now, not per request
    cycle = telemetry.cycle
    ttl = cache_ttl_seconds
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
        collection = served.collection
        return ViewInputs(
            collection=collection,
            previous=served.previous,
            thresholds=limits,
            # Views show the collection as of its own read: one moment, cacheable per collection.
            now_unix_nano=collection.time_unix_nano,
            category=category,
            service=service,
        )

    def meta(view: str, served: CachedCollection) -> dict[str, Any]:
        """What changes per request; every age is true when the response is sent."""
        served_meta: dict[str, Any] = {
            "agent": agent,
            "view": view,
            "timestamp": iso_time(served.collection.time_unix_nano),
            "generated_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "collection_duration_seconds": round(served.collection.duration_seconds, 6),
            "cached": served.cached,
            "age_seconds": round(served.age_seconds, 3),
            "stale": served.stale,
            "package_version": __version__,
            "sdk_disabled": served.collection.sdk_disabled,
        }
        if served.stale:
            served_meta["stale_reason"] = served.stale_reason
        if served.limited:
            served_meta["live_limited"] = True
        return served_meta

    def document(served: CachedCollection, query: _Query) -> dict[str, Any]:
        """The view's document for this collection and query, rendered once per collection."""
        key = (query.view, query.category, query.service)
        cached = rendered.document(served.collection, key)
        if cached is None:
            cached = render_view(query.view, inputs(served, query.category, query.service)).document
            rendered.put_document(served.collection, key, cached)
        return cached

    def remember(served: CachedCollection) -> None:
        if history.is_new(served.collection.time_unix_nano):
            summary = document(served, _Query("summary", "json", None, None, False))
            history.record(served.collection.time_unix_nano, summary)

    async def telemetry_endpoint(request: Request) -> Response:
        problem = _check_agent(request, agent)
        if problem is not None:
            return problem
        query = _parse_query(request)
        if isinstance(query, Response):
            return query
        if query.precision is not None and query.format != "influxdb":
            message = f"query parameter 'precision' applies to format=influxdb, not format={query.format}"
            return _error(400, message, allowed=["influxdb"])
        if query.format == "html" and query.view not in HTML_VIEWS:
            return _error(
                400,
                f"format=html shows the summary and health views, not {query.view!r}",
                allowed=list(HTML_VIEWS),
            )
        served = await _collect(cycle, ttl, live=query.live)
        if isinstance(served, Response):
            return served
        problem = _check_filters(query, served.collection)
        if problem is not None:
            return problem
        remember(served)
        if query.format == "json":
            # One document, each key once: the view's keys, then what is true of this response.
            body = {**document(served, query), **meta(query.view, served)}
            encoded = json.dumps(body, allow_nan=False, separators=(",", ":")).encode("utf-8")
            return Response(encoded, media_type=FORMATS["json"])
        if query.format == "html":
            # Built per request from the cached documents: the page shows the age at sending time.
            summary_query = _Query("summary", "json", query.category, query.service, False)
            summary = {**document(served, summary_query), **meta(query.view, served)}
            health = document(served, _Query("health", "json", query.category, query.service, False))
            operational = document(
                served, _Query("operational", "json", query.category, query.service, False)
            )
            page = render_html(
                summary, health, history.points(), agent, refresh_seconds, alerts=operational["alerts"]
            )
            return Response(page.encode("utf-8"), media_type=FORMATS["html"])
        key = ("view", query.view, query.format, query.category, query.service, query.precision)
        body_bytes = rendered.body(served.collection, key)
        if body_bytes is None:
            view_inputs = inputs(served, query.category, query.service)
            view = render_view(query.view, view_inputs)
            data = view_metrics(view_inputs, view)
            if query.format == "influxdb":
                text = encode_influx(data, precision=_PRECISIONS[query.precision or "ns"])
            else:
                text = _ENCODERS[query.format](data)
            body_bytes = text.encode("utf-8")
            rendered.put_body(served.collection, key, body_bytes)
        return Response(body_bytes, media_type=FORMATS[query.format])

    async def health_endpoint(request: Request) -> Response:
        problem = _check_agent(request, agent)
        if problem is not None:
            return problem
        if request.query_params:
            return _error(400, "the health endpoint takes no query parameters", allowed=[])
        served = await _collect(cycle, ttl, live=False)
        if isinstance(served, Response):
            return served
        health = health_json(document(served, _Query("health", "json", None, None, False)), agent)
        if served.stale:
            health["stale"] = True
            health.setdefault("notes", []).append(served.stale_reason)
        status = 503 if health["status"] == "fail" else 200
        return JSONResponse(health, status_code=status, media_type=HEALTH_JSON)

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
        served = cycle.status(ttl)
        if served is None:
            output = "no collection has completed yet"
        elif served.stale:
            output = f"data is stale: {served.stale_reason}"
        else:
            return JSONResponse({"status": "pass"}, media_type=HEALTH_JSON)
        return JSONResponse({"status": "fail", "output": output}, status_code=503, media_type=HEALTH_JSON)

    async def metrics_endpoint(request: Request) -> Response:
        served = await _collect(cycle, ttl, live=False)
        if isinstance(served, Response):
            return served
        encode, content_type = negotiate_exposition(request.headers.get("accept"))
        gzipped = wants_gzip(request.headers.get("accept-encoding"))
        key = ("metrics", content_type, gzipped)
        body = rendered.body(served.collection, key)
        if body is None:
            body = encode(served.collection.metrics).encode("utf-8")
            if gzipped:
                body = gzip.compress(body, compresslevel=6)
            rendered.put_body(served.collection, key, body)
        headers = {"Vary": "Accept, Accept-Encoding"}
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        return Response(body, media_type=content_type, headers=headers)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Async snapshot functions run on this loop, where the application's resources live.
        telemetry.use_event_loop(asyncio.get_running_loop())
        tasks = [asyncio.create_task(run()) for run in background]
        for task in tasks:
            task.add_done_callback(_log_crash)
        cycle.status(ttl)  # readiness: the first collection starts now, in the background
        try:
            yield
        finally:
            # Before the shutdown callbacks: the runtime's final collection must not need this loop.
            telemetry.use_event_loop(None)
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
    app.state.cycle = cycle
    app.state.agent = agent
    return app


def _log_crash(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _logger.error("background task stopped: %r", task.exception(), exc_info=task.exception())


async def _collect(cycle: CollectionCycle, ttl: float, *, live: bool) -> CachedCollection | Response:
    try:
        return await cycle.get(ttl, live=live)
    except Exception as exc:  # the collection itself failed and none completed before it
        _logger.warning("collection failed: %s: %s", type(exc).__name__, exc)
        return _error(503, f"collection failed: {type(exc).__name__}: {exc}")


def _check_agent(request: Request, agent: str) -> Response | None:
    requested = request.path_params["agent"]
    if requested != agent:
        return _error(404, f"unknown agent {requested!r}", agents=[agent])
    return None


class _RenderCache:
    """What was rendered from the newest collection: view documents and encoded bodies, by query.

    Emptied when a newer collection is served, so it holds one collection's renderings at most.
    """

    def __init__(self) -> None:
        self._collection: Collection | None = None
        self._documents: dict[Hashable, dict[str, Any]] = {}
        self._bodies: dict[Hashable, bytes] = {}

    def document(self, collection: Collection, key: Hashable) -> dict[str, Any] | None:
        return self._documents.get(key) if collection is self._collection else None

    def body(self, collection: Collection, key: Hashable) -> bytes | None:
        return self._bodies.get(key) if collection is self._collection else None

    def put_document(self, collection: Collection, key: Hashable, document: dict[str, Any]) -> None:
        self._switch(collection)
        self._documents[key] = document

    def put_body(self, collection: Collection, key: Hashable, body: bytes) -> None:
        self._switch(collection)
        self._bodies[key] = body

    def _switch(self, collection: Collection) -> None:
        if collection is not self._collection:
            self._collection, self._documents, self._bodies = collection, {}, {}


@dataclass(frozen=True)
class _Query:
    view: str
    format: str
    category: str | None
    service: str | None
    live: bool
    #: Timestamp unit of ``format=influxdb`` (None: not given, nanoseconds).
    precision: str | None = None
    #: ``category``/``service`` given more than once, with the count: refused once the allowed
    #: values (the served collection's) are known.
    repeated: tuple[tuple[str, int], ...] = ()


def _parse_query(request: Request) -> _Query | Response:
    """The validated query, or a 400 naming the parameter and every value it allows.

    ``category`` and ``service`` are checked against the served collection by :func:`_check_filters`.
    """
    params = request.query_params
    for key in params:
        if key not in QUERY_PARAMETERS:
            return _error(400, f"unknown query parameter {key!r}", allowed=list(QUERY_PARAMETERS))
    choices: dict[str, Sequence[str] | None] = {
        "view": VIEWS,
        "format": list(FORMATS),
        "category": None,
        "service": None,
        "live": list(_BOOLEANS),
        "precision": INFLUX_PRECISIONS,
    }
    chosen: dict[str, str | None] = {}
    repeated: list[tuple[str, int]] = []
    for key, allowed in choices.items():
        values = params.getlist(key)
        if allowed is None:  # a filter: checked against the collection served
            if len(values) > 1:
                repeated.append((key, len(values)))
            chosen[key] = values[0] if len(values) == 1 else None
            continue
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
        precision=chosen["precision"],
        repeated=tuple(repeated),
    )


def _check_filters(query: _Query, collection: Collection) -> Response | None:
    """A 400 naming the allowed values when ``category`` or ``service`` is not in ``collection``."""
    services = [record for record in collection.components if record.is_service]
    choices = {
        "category": (query.category, sorted({record.category for record in services if record.category})),
        "service": (query.service, sorted(record.name for record in services)),
    }
    repeated = dict(query.repeated)
    for key, (value, allowed) in choices.items():
        if key in repeated:
            return _error(400, f"query parameter {key!r} given {repeated[key]} times", allowed=allowed)
        if value is not None and value not in allowed:
            return _error(400, f"{key}={value!r} is not one of the allowed values", allowed=allowed)
    return None


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
