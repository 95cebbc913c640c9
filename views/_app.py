"""The Starlette application: the unified telemetry endpoint, its health routes and the Prometheus scrape.

Each route asks the runtime's collection cycle for a collection no older than the app's TTL and
answers from what :class:`~telemetry_otel.views._rendered.Renderings` made of it; the query is
parsed in ``_query``, errors are built in ``_errors``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

from telemetry_otel import (
    DEFAULT_CACHE_TTL_SECONDS,
    CachedCollection,
    CollectionCycle,
    Telemetry,
    __version__,
)
from telemetry_otel.formats import wants_gzip
from telemetry_otel.views._auth import BearerTokenMiddleware, check_token
from telemetry_otel.views._body import ChunkedBody
from telemetry_otel.views._detailed import iso_time
from telemetry_otel.views._errors import error_response, http_error
from telemetry_otel.views._export import EXPORT_SERIES_KEY, export_series
from telemetry_otel.views._formats import FORMATS, HEALTH_JSON
from telemetry_otel.views._health_json import health_json
from telemetry_otel.views._history import StatusHistory
from telemetry_otel.views._html import HTML_VIEWS, page, refresh_seconds_for
from telemetry_otel.views._query import (
    QUERY_PARAMETERS,
    Query,
    check_filters,
    check_page_view,
    check_precision,
    parse_query,
)
from telemetry_otel.views._rendered import Renderings
from telemetry_otel.views._thresholds import Thresholds

__all__ = ["FORMATS", "HEALTH_JSON", "QUERY_PARAMETERS", "create_app"]

_logger = logging.getLogger("telemetry_otel.views")
#: Encodes a response's one JSON document (documents are trees: no circular check needed).
_JSON = json.JSONEncoder(allow_nan=False, separators=(",", ":"), check_circular=False)


def create_app(
    telemetry: Telemetry,
    *,
    agent: str = "demo",
    cache_ttl_seconds: float = DEFAULT_CACHE_TTL_SECONDS,
    thresholds: Thresholds | Mapping[str, object] | None = None,
    token: str | None = None,
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
    on_shutdown: Sequence[Callable[[], None]] = (),
    apps: Mapping[str, ASGIApp] | None = None,
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
    for the app's lifetime; ``on_shutdown`` callbacks at its end. ``apps`` are an application's own
    ASGI apps by mount path (``{"/demo": app}``), served after the telemetry routes.
    """
    if not cache_ttl_seconds >= 0:
        raise ValueError(f"cache_ttl_seconds must be zero or positive, got {cache_ttl_seconds!r}")
    if token is not None:
        check_token(token)  # at start-up: a token no request can present is refused now, not per request
    endpoint = _Endpoint(telemetry, agent, cache_ttl_seconds, _thresholds(thresholds))
    base = f"/api/{agent}/v1/telemetry"
    probes = {f"{base}/health/live", f"{base}/health/ready"}
    app = Starlette(
        routes=[
            Route("/api/{agent}/v1/telemetry", endpoint.views, methods=["GET"]),
            Route("/api/{agent}/v1/telemetry/health", endpoint.health, methods=["GET"]),
            Route("/api/{agent}/v1/telemetry/health/live", endpoint.live, methods=["GET"]),
            Route("/api/{agent}/v1/telemetry/health/ready", endpoint.ready, methods=["GET"]),
            Route("/metrics", endpoint.metrics, methods=["GET"]),
            *(Mount(path, app=mounted) for path, mounted in (apps or {}).items()),
        ],
        middleware=[]
        if token is None
        else [Middleware(BearerTokenMiddleware, token=token, is_open=probes.__contains__)],
        exception_handlers={HTTPException: http_error},
        lifespan=_lifespan(telemetry, endpoint, background, on_shutdown),
    )
    # No redirect for a trailing slash: every unknown path is a 404 that lists the routes.
    app.router.redirect_slashes = False
    # Status, health score and alerts go to the push exporters (Graphite, InfluxDB) with every collection.
    telemetry.set_export_series(EXPORT_SERIES_KEY, export_series(endpoint.rendered.thresholds))
    app.state.cycle = telemetry.cycle
    app.state.agent = agent
    return app


def _thresholds(thresholds: Thresholds | Mapping[str, object] | None) -> Thresholds:
    if thresholds is None:
        return Thresholds()
    if isinstance(thresholds, Thresholds):
        return thresholds
    return Thresholds.from_mapping(thresholds)


class _Endpoint:
    """The app's routes over one runtime: each asks the cycle, then answers from the renderings."""

    def __init__(self, telemetry: Telemetry, agent: str, ttl: float, thresholds: Thresholds) -> None:
        self.cycle: CollectionCycle = telemetry.cycle
        self.agent = agent
        self.ttl = ttl
        self.rendered = Renderings(thresholds)
        self.history = StatusHistory()  # runtime-wide trend points, one per new collection
        self.refresh_seconds = refresh_seconds_for(ttl)

    async def views(self, request: Request) -> Response:
        """``GET {base}``: one view in one format."""
        query = _check_agent(request, self.agent) or parse_query(request)
        if isinstance(query, Response):
            return query
        refused = check_precision(query) or check_page_view(query, HTML_VIEWS)
        if refused is not None:
            return refused
        served = await self._collect(live=query.live)
        if isinstance(served, Response):
            return served
        refused = check_filters(query, served.collection)
        if refused is not None:
            return refused
        self._remember(served)
        if query.format == "json":
            # One document, each key once: the view's keys, then what is true of this response.
            body = {**self._document(served, query.view, query), **self._meta(query.view, served)}
            encoded = _JSON.encode(body).encode("utf-8")
            return Response(encoded, media_type=FORMATS["json"])
        if query.format == "html":
            return Response(self._page(served, query).encode("utf-8"), media_type=FORMATS["html"])
        body_bytes = self.rendered.view_body(
            served, query.view, query.format, query.category, query.service, precision=query.precision or "ns"
        )
        return Response(body_bytes, media_type=FORMATS[query.format])

    async def health(self, request: Request) -> Response:
        """``GET {base}/health``: health+json, 503 when the runtime fails."""
        refused = _check_agent(request, self.agent)
        if refused is not None:
            return refused
        if request.query_params:
            return error_response(400, "the health endpoint takes no query parameters", allowed=[])
        served = await self._collect(live=False)
        if isinstance(served, Response):
            return served
        document = health_json(self.rendered.model(served, None, None), self.agent)
        if served.stale:
            document["stale"] = True
            document.setdefault("notes", []).append(served.stale_reason)
        status = 503 if document["status"] == "fail" else 200
        return JSONResponse(document, status_code=status, media_type=HEALTH_JSON)

    async def live(self, request: Request) -> Response:
        """``GET {base}/health/live``: the process answers, whatever the services do."""
        refused = _check_agent(request, self.agent)
        if refused is not None:
            return refused
        return JSONResponse({"status": "pass"}, media_type=HEALTH_JSON)

    async def ready(self, request: Request) -> Response:
        """``GET {base}/health/ready``: 200 once a collection completed and while it is not stale."""
        refused = _check_agent(request, self.agent)
        if refused is not None:
            return refused
        served = self.cycle.status(self.ttl)
        if served is None:
            output = "no collection has completed yet"
        elif served.stale:
            output = f"data is stale: {served.stale_reason}"
        else:
            return JSONResponse({"status": "pass"}, media_type=HEALTH_JSON)
        return JSONResponse({"status": "fail", "output": output}, status_code=503, media_type=HEALTH_JSON)

    async def metrics(self, request: Request) -> Response:
        """``GET /metrics``: the whole collection, text 0.0.4 or OpenMetrics, gzip when accepted."""
        served = await self._collect(live=False)
        if isinstance(served, Response):
            return served
        gzipped = wants_gzip(request.headers.get("accept-encoding"))
        body, content_type = self.rendered.metrics_body(served, request.headers.get("accept"), gzipped)
        headers = {"Vary": "Accept, Accept-Encoding"}
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        return ChunkedBody(body, content_type, headers)

    async def _collect(self, *, live: bool) -> CachedCollection | Response:
        try:
            return await self.cycle.get(self.ttl, live=live)
        except Exception as exc:  # the collection itself failed and none completed before it
            _logger.warning("collection failed: %s: %s", type(exc).__name__, exc)
            return error_response(503, f"collection failed: {type(exc).__name__}: {exc}")

    def _document(self, served: CachedCollection, view: str, query: Query) -> dict[str, Any]:
        return self.rendered.document(served, view, query.category, query.service)

    def _meta(self, view: str, served: CachedCollection) -> dict[str, Any]:
        """What changes per request; every age is true when the response is sent."""
        meta: dict[str, Any] = {
            "agent": self.agent,
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
            meta["stale_reason"] = served.stale_reason
        if served.limited:
            meta["live_limited"] = True
        return meta

    def _page(self, served: CachedCollection, query: Query) -> str:
        """The status page from the collection's one model for this filter; its age is per request."""
        model = self.rendered.model(served, query.category, query.service)
        return page(
            model,
            self.history.points(),
            self.agent,
            self.refresh_seconds,
            age_seconds=served.age_seconds,
            view=query.view,
        )

    def _remember(self, served: CachedCollection) -> None:
        if self.history.is_new(served.collection.time_unix_nano):
            self.history.record_model(self.rendered.model(served, None, None))


def _check_agent(request: Request, agent: str) -> Response | None:
    requested = request.path_params["agent"]
    if requested != agent:
        return error_response(404, f"unknown agent {requested!r}", agents=[agent])
    return None


def _lifespan(
    telemetry: Telemetry,
    endpoint: _Endpoint,
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]],
    on_shutdown: Sequence[Callable[[], None]],
) -> Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Async snapshot functions run on this loop, where the application's resources live.
        telemetry.use_event_loop(asyncio.get_running_loop())
        tasks = [asyncio.create_task(run()) for run in background]
        for task in tasks:
            task.add_done_callback(_log_crash)
        endpoint.cycle.status(endpoint.ttl)  # readiness: the first collection starts now, in the background
        try:
            yield
        finally:
            # Before the shutdown callbacks: the runtime's final collection must not need this loop.
            telemetry.use_event_loop(None)
            # A worker of a multi-process host reports its final counts now: uvicorn ends a worker
            # by re-raising SIGTERM, and then no ``atexit`` handler runs.
            await asyncio.get_running_loop().run_in_executor(None, telemetry.report_to_host)
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

    return lifespan


def _log_crash(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _logger.error("background task stopped: %r", task.exception(), exc_info=task.exception())
