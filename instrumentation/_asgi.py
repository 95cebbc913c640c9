"""``HTTPMetricsMiddleware``: the semantic conventions' HTTP server metrics for any Starlette/FastAPI app.

Pure ASGI (no ``BaseHTTPMiddleware``): ``http`` requests are measured; ``websocket`` and
``lifespan`` scopes, and excluded paths, go to the app untouched. Add it with
``app.add_middleware(HTTPMetricsMiddleware)`` or wrap an app: ``HTTPMetricsMiddleware(app)``.

What a request records (``http.server.request.duration`` and ``http.server.active_requests``):

* ``http.request.method``: the method when the conventions know it, else ``_OTHER``.
* ``http.route``: the template of the route Starlette matched, with the prefixes of its mounts and
  of FastAPI's included routers (``/items/{id}``, ``/api/v1/users/{user_id}``), never the raw path.
  A 404, and a request no route matched (a slash redirect), has none, so scanning random paths adds
  no series. The route is the one the router puts in the scope (``scope["route"]``); a route object
  reachable under two prefixes is reported under the first.
* ``http.response.status_code``: the status sent; 500 when the app raised before sending one (the
  server answers 500 then).
* ``error.type``: the exception's fully qualified class name when the app raised, else the status
  code for a 5xx response.
* ``url.scheme``: ``http`` or ``https``, from the ASGI scope.

The duration runs from the call into the app to the end of the response body (the last
``http.response.body`` message), so a streaming response is timed to its end and background tasks
that run after the body are not; a request that ends without a body ends when the app returns.
"""

from __future__ import annotations

import re
import threading
import time
import weakref
from collections.abc import Iterable
from typing import Any

from starlette.routing import BaseRoute, Host, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from telemetry_otel import Telemetry, current_telemetry
from telemetry_otel.instrumentation._exemplars import (
    ALWAYS_ON,
    OFF,
    StoredExemplar,
    candidate,
    current_context,
    exemplar_mode,
    span_ids,
    tracing,
)
from telemetry_otel.instrumentation._http import HTTPServerMetrics
from telemetry_otel.instrumentation._service import InstrumentedService
from telemetry_otel.vocabulary import HTTP_KNOWN_METHODS, HTTP_OTHER_METHOD

__all__ = ["DEFAULT_EXCLUDED_PATHS", "HTTPMetricsMiddleware", "http_server_metrics"]

#: Paths not measured by default: the telemetry routes of ``telemetry_otel.views.create_app``.
#: ``*`` matches any characters (``/`` included).
DEFAULT_EXCLUDED_PATHS: tuple[str, ...] = ("/metrics", "/api/*/v1/telemetry", "/api/*/v1/telemetry/*")

_METHODS = {method: method for method in HTTP_KNOWN_METHODS}
_perf_counter = time.perf_counter
_NOT_FOUND = 404
_ABSENT = object()
_lock = threading.Lock()
_stores: weakref.WeakKeyDictionary[Telemetry, HTTPServerMetrics] = weakref.WeakKeyDictionary()


def http_server_metrics(telemetry: Telemetry) -> HTTPServerMetrics:
    """The HTTP server series of ``telemetry``, produced in its collections (made on first use)."""
    with _lock:
        metrics = _stores.get(telemetry)
        if metrics is None:
            metrics = HTTPServerMetrics(telemetry.config.cardinality_limit)
            if not telemetry.disabled:
                telemetry.add_producer(metrics)
            _stores[telemetry] = metrics
        return metrics


class HTTPMetricsMiddleware:
    """ASGI middleware recording the HTTP server metrics of the semantic conventions.

    ``telemetry``: the runtime to record on (default: the shared one, looked up at the first
    request). ``exclude_paths``: paths not measured (``*`` matches anything; default
    :data:`DEFAULT_EXCLUDED_PATHS`, the telemetry routes). ``service``: also count every measured
    request in this service's vitals (an error when the app raised or answered 5xx), so the HTTP
    traffic shows in the views. Exemplars follow the runtime's ``OTEL_METRICS_EXEMPLAR_FILTER``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        telemetry: Telemetry | None = None,
        exclude_paths: Iterable[str] = DEFAULT_EXCLUDED_PATHS,
        service: InstrumentedService | None = None,
    ) -> None:
        self.app = app
        self._telemetry = telemetry
        self._metrics: HTTPServerMetrics | None = None
        self._mode = OFF
        patterns = [re.escape(path).replace(r"\*", ".*") for path in exclude_paths]
        self._excluded = re.compile("|".join(patterns)).fullmatch if patterns else None
        self._record_service = None if service is None else service.record_request
        # id(route) -> (route, template); the route is kept so its id cannot be reused.
        self._templates: dict[int, tuple[BaseRoute, str]] = {}

    def _bind(self) -> HTTPServerMetrics:
        telemetry = self._telemetry if self._telemetry is not None else current_telemetry()
        self._mode = exemplar_mode(telemetry.config.exemplar_filter)
        self._metrics = http_server_metrics(telemetry)
        return self._metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self._excluded is not None and self._excluded(scope["path"])):
            await self.app(scope, receive, send)
            return
        metrics = self._metrics or self._bind()
        method = _METHODS.get(scope["method"], HTTP_OTHER_METHOD)
        scheme = scope.get("scheme") or "http"
        status: int | None = None
        ended: float | None = None

        async def send_measured(message: Message) -> None:
            nonlocal status, ended
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                await send(message)
            elif kind == "http.response.body" and not message.get("more_body", False):
                await send(message)
                ended = _perf_counter()
            else:
                await send(message)

        metrics.started(method, scheme)
        error: str | None = None
        started = _perf_counter()
        try:
            await self.app(scope, receive, send_measured)
        except BaseException as exception:
            error = _qualified_name(type(exception))
            if status is None:
                status = 500
            raise
        finally:
            seconds = (ended if ended is not None else _perf_counter()) - started
            if error is None and status is not None and status >= 500:
                error = str(status)
            route = None if status == _NOT_FOUND else self._route(scope)
            if self._record_service is not None:
                self._record_service(seconds, error is not None)
            metrics.finished((method, scheme, route, status, error), seconds, self._exemplar(seconds))

    def _exemplar(self, seconds: float) -> StoredExemplar | None:
        mode = self._mode
        if mode == OFF or (mode != ALWAYS_ON and tracing._TRACER_PROVIDER is None):
            return None
        if mode == ALWAYS_ON:
            return candidate(seconds, ALWAYS_ON)
        context = current_context()
        ids = span_ids(context) if context else None
        return None if ids is None else (seconds, time.time_ns(), ids[0], ids[1])

    def _route(self, scope: Scope) -> str | None:
        """The matched route's full template, or None when no route matched."""
        route = scope.get("route", _ABSENT)
        if route is _ABSENT or route is None:
            return None
        known = self._templates.get(id(route))
        if known is not None:
            return known[1]
        template = _template(scope.get("router"), route)
        if template is None:
            return None
        if len(self._templates) < 10_000:  # routes are code, not data: this bound is never reached
            self._templates[id(route)] = (route, template)
        return template


def _template(router: Any, target: Any) -> str | None:
    """``target``'s template under ``router``, with the prefixes of the mounts leading to it."""
    own = getattr(target, "path_format", None)
    if not isinstance(own, str):
        return None
    found = _find(getattr(router, "routes", ()), target, "") if router is not None else None
    return own if found is None else found


def _find(routes: Iterable[Any], target: Any, prefix: str) -> str | None:
    for route in routes:
        if route is target:
            return prefix + str(route.path_format)
        if isinstance(route, Mount):
            mount_prefix = route.path_format.removesuffix("/{path}")
            found = _find(route.routes, target, prefix + mount_prefix)
        elif isinstance(route, Host):
            found = _find(route.routes, target, prefix)
        elif hasattr(route, "effective_route_contexts"):
            # FastAPI's included routers (``app.include_router(router, prefix=...)``): each context
            # holds the route as written and its full template.
            found = next(
                (
                    prefix + str(context.path_format)
                    for context in route.effective_route_contexts()
                    if getattr(context, "original_route", None) is target
                ),
                None,
            )
        else:
            continue
        if found is not None:
            return found
    return None


def _qualified_name(kind: type[BaseException]) -> str:
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"
