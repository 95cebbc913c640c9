"""The Starlette application: the unified telemetry endpoint and the Prometheus scrape."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any

from opentelemetry.sdk.metrics.export import MetricsData
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from telemetry_otel import CachedCollection, CollectionCache, Telemetry, __version__
from telemetry_otel.formats import negotiate_exposition, wants_gzip
from telemetry_otel.views._detailed import render_detailed

__all__ = ["create_app"]

_logger = logging.getLogger("telemetry_otel.views")

#: Query parameters of the unified endpoint and the values each accepts (first one is the default).
ALLOWED_QUERY: dict[str, tuple[str, ...]] = {
    "view": ("detailed",),
    "format": ("json",),
}


def create_app(
    telemetry: Telemetry,
    *,
    agent: str = "demo",
    cache_ttl_seconds: float = 30.0,
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
    on_shutdown: Sequence[Callable[[], None]] = (),
) -> Starlette:
    """Build the ASGI app serving ``telemetry`` as agent ``agent``.

    Routes: ``GET /api/{agent}/v1/telemetry`` (JSON) and ``GET /metrics`` (Prometheus text).
    ``background`` coroutines (such as a demo runtime's ``run``) run for the app's lifetime and
    ``on_shutdown`` callbacks run when it stops.
    """
    cache = CollectionCache(telemetry, ttl_seconds=cache_ttl_seconds)

    async def telemetry_endpoint(request: Request) -> Response:
        requested = request.path_params["agent"]
        if requested != agent:
            return _error(404, f"unknown agent {requested!r}", agents=[agent])
        problem = _check_query(request)
        if problem is not None:
            return problem
        served = await _collect(cache)
        if isinstance(served, Response):
            return served
        body = render_detailed(
            served.collection, telemetry.components.snapshot(), telemetry.components.buses()
        )
        meta = {
            "agent": agent,
            "package_version": __version__,
            "cached": served.cached,
            "cache_age_seconds": round(served.age_seconds, 3),
            "generated_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        return JSONResponse({**meta, **body})

    async def metrics_endpoint(request: Request) -> Response:
        served = await _collect(cache)
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
        try:
            yield
        finally:
            # Before the shutdown callbacks: a final export must not wait on this loop from this loop.
            telemetry.exports.use_source(None)
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
            Route("/metrics", metrics_endpoint, methods=["GET"]),
        ],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.cache = cache
    app.state.agent = agent
    return app


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _logger.error("background task stopped: %r", task.exception(), exc_info=task.exception())


async def _collect(cache: CollectionCache) -> CachedCollection | Response:
    try:
        return await cache.get()
    except Exception as exc:  # the SDK read failed; nothing partial is served as if whole
        _logger.exception("collection failed")
        return _error(503, f"collection failed: {type(exc).__name__}: {exc}")


def _check_query(request: Request) -> Response | None:
    for key in request.query_params:
        if key not in ALLOWED_QUERY:
            return _error(400, f"unknown query parameter {key!r}", allowed=sorted(ALLOWED_QUERY))
    for key, allowed in ALLOWED_QUERY.items():
        values = request.query_params.getlist(key)
        if len(values) > 1:
            return _error(400, f"query parameter {key!r} given {len(values)} times", allowed=list(allowed))
        if values and values[0] not in allowed:
            return _error(400, f"{key}={values[0]!r} is not supported", allowed=list(allowed))
    return None


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    routes = ["/api/{agent}/v1/telemetry", "/metrics"]
    if exc.status_code == 404:
        return _error(404, f"no route {request.url.path!r}", routes=routes)
    if exc.status_code == 405:
        return _error(405, f"method {request.method} is not allowed here", allowed=["GET"])
    return _error(exc.status_code, str(exc.detail))


def _error(status: int, message: str, **details: Any) -> JSONResponse:
    return JSONResponse({"error": message, **details}, status_code=status)
