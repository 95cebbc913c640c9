"""The fleet app: every agent's six views, a fleet summary and a status page, read from a TSDB.

Routes (``{base}`` is ``/api/{agent}/v1/telemetry``):

* ``GET {base}?view=&format=&category=&service=&precision=``: one agent's views, as its own endpoint
  serves them, built from the TSDB; the agent ``fleet`` is the whole fleet, one runtime whose
  components are named ``agent/name`` (its summary adds the agents by state and each agent, and
  its ``format=html`` is the fleet page);
* ``GET {base}/health``: the agent's health+json, 503 when it fails or is down;
* ``GET /health``: the app's own health, 503 with the reason when the TSDB does not answer.

A refresh reads the whole fleet (:class:`FleetSource`, a fixed number of queries). As in the
collection cycle, a read no older than ``cache_ttl_seconds`` is served as it is; an older one is
served while a refresh runs in the background; only the first request and a TTL of 0 wait. When
the newest refresh failed, the answer is a 503 naming the reason, never older data as if current.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from telemetry_otel import DEFAULT_FLEET_CACHE_TTL_SECONDS, CachedCollection, Collection, __version__
from telemetry_otel.views._auth import BearerTokenMiddleware, check_token
from telemetry_otel.views._detailed import iso_time
from telemetry_otel.views._errors import error_response, http_error
from telemetry_otel.views._fleet_html import render_fleet_html
from telemetry_otel.views._fleet_merge import fleet_collections
from telemetry_otel.views._fleet_query import PrometheusClient, TsdbConfig, TsdbError
from telemetry_otel.views._fleet_source import FleetData, FleetSettings, FleetSource
from telemetry_otel.views._fleet_summary import agent_meta, fleet_json, fleet_meta, fleet_model
from telemetry_otel.views._formats import FORMATS, HEALTH_JSON
from telemetry_otel.views._health_json import health_json
from telemetry_otel.views._html import HTML_VIEWS, page, refresh_seconds_for
from telemetry_otel.views._query import Query, check_filters, check_page_view, check_precision, parse_query
from telemetry_otel.views._rendered import Renderings
from telemetry_otel.views._state import Model
from telemetry_otel.views._thresholds import Thresholds

__all__ = ["FLEET_AGENT", "create_fleet_app"]

_logger = logging.getLogger("telemetry_otel.views.fleet")
_JSON = json.JSONEncoder(allow_nan=False, separators=(",", ":"), check_circular=False)
#: The agent id of the fleet itself in ``/api/{agent}/v1/telemetry``.
FLEET_AGENT = "fleet"


def create_fleet_app(
    tsdb: TsdbConfig | str,
    *,
    settings: FleetSettings | None = None,
    cache_ttl_seconds: float = DEFAULT_FLEET_CACHE_TTL_SECONDS,
    thresholds: Thresholds | Mapping[str, object] | None = None,
    token: str | None = None,
) -> Starlette:
    """Build the ASGI app serving every agent found in the TSDB ``tsdb`` (a URL or a
    :class:`TsdbConfig`), and the fleet as agent ``fleet``.

    ``settings`` sets the lookback, the rate window, when an agent is down and the labels the scrape
    adds. With ``token``, every path but ``/health`` needs ``Authorization: Bearer <token>``.
    """
    if not cache_ttl_seconds >= 0:
        raise ValueError(f"cache_ttl_seconds must be zero or positive, got {cache_ttl_seconds!r}")
    if token is not None:
        check_token(token)
    config = tsdb if isinstance(tsdb, TsdbConfig) else TsdbConfig(tsdb)
    if thresholds is None:
        chosen = Thresholds()
    elif isinstance(thresholds, Thresholds):
        chosen = thresholds
    else:
        chosen = Thresholds.from_mapping(thresholds)
    endpoint = _FleetEndpoint(
        FleetSource(PrometheusClient(config), settings), config.url, cache_ttl_seconds, chosen
    )
    app = Starlette(
        routes=[
            Route("/api/{agent}/v1/telemetry", endpoint.views, methods=["GET"]),
            Route("/api/{agent}/v1/telemetry/health", endpoint.health, methods=["GET"]),
            Route("/health", endpoint.own_health, methods=["GET"]),
        ],
        middleware=[]
        if token is None
        else [Middleware(BearerTokenMiddleware, token=token, is_open={"/health"}.__contains__)],
        exception_handlers={HTTPException: http_error},
        lifespan=_lifespan(endpoint),
    )
    app.router.redirect_slashes = False
    app.state.fleet = endpoint
    return app


class _FleetEndpoint:
    """The routes over one fleet source: each asks for a read, then renders from it."""

    def __init__(self, source: FleetSource, url: str, ttl: float, thresholds: Thresholds) -> None:
        self.source = source
        self.url = url
        self.ttl = ttl
        self.thresholds = thresholds
        self.refresh_seconds = refresh_seconds_for(ttl)
        self._data: FleetData | None = None
        self._fetched = 0.0  # time.monotonic() of the newest read
        self._error: str | None = None
        self._refresh: asyncio.Task[None] | None = None
        self._renderings: dict[str, Renderings] = {}
        self._served: dict[str, CachedCollection] = {}
        self._fleet_made: tuple[FleetData, Collection, Collection | None] | None = None

    # -- reading the TSDB ---------------------------------------------------------------------------
    async def read(self) -> tuple[FleetData, float, bool] | Response:
        """The newest fleet read with its age and whether it was cached, or a 503 naming the reason."""
        data = self._data
        age = time.monotonic() - self._fetched
        if data is not None and self._error is None and age <= self.ttl:
            return data, age, True
        if data is not None and self._error is None and self.ttl > 0:
            self._start_refresh()  # served now, refreshed in the background
            return data, age, True
        task = self._start_refresh()
        await asyncio.shield(task)
        if self._error is not None or self._data is None:
            return error_response(503, f"the TSDB is unavailable: {self._error}", source=self.url)
        return self._data, time.monotonic() - self._fetched, False

    def _start_refresh(self) -> asyncio.Task[None]:
        if self._refresh is None or self._refresh.done():
            self._refresh = asyncio.create_task(self._run_refresh())
        return self._refresh

    async def _run_refresh(self) -> None:
        try:
            data = await self.source.read()
        except TsdbError as exc:
            self._error = str(exc)
            _logger.warning("fleet read failed: %s", exc)
            return
        except Exception as exc:  # a TSDB answer we could not read: reported, never a 500
            self._error = f"{type(exc).__name__}: {exc}"
            _logger.exception("fleet read failed")
            return
        self._data, self._fetched, self._error = data, time.monotonic(), None

    def _agent(self, data: FleetData, name: str, age: float, cached: bool) -> CachedCollection:
        agent = data.agents[name]
        served = self._served.get(name)
        if served is None or served.collection is not agent.collection:
            served = CachedCollection(agent.collection, cached, age, agent.previous)
            self._served[name] = served
        return CachedCollection(served.collection, cached, age, served.previous)

    def _model(self, data: FleetData, name: str, age: float, cached: bool) -> Model:
        renderings = self._renderings.setdefault(name, Renderings(self.thresholds))
        return renderings.model(self._agent(data, name, age, cached), None, None)

    # -- routes ---------------------------------------------------------------------------------------
    async def views(self, request: Request) -> Response:
        """``GET {base}``: one agent's view, or the fleet summary for agent ``fleet``."""
        query = parse_query(request)
        if isinstance(query, Response):
            return query
        if query.live:
            return error_response(
                400, "live=true asks an agent for a new collection: ask the agent itself", allowed=["false"]
            )
        name = request.path_params["agent"]
        if name == FLEET_AGENT:
            return await self._fleet(query)
        read = await self.read()
        if isinstance(read, Response):
            return read
        data, age, cached = read
        if name not in data.agents:
            return error_response(404, f"unknown agent {name!r}", agents=[FLEET_AGENT, *data.agents])
        refused = check_precision(query) or check_page_view(query, HTML_VIEWS)
        if refused is not None:
            return refused
        served = self._agent(data, name, age, cached)
        refused = check_filters(query, served.collection)
        if refused is not None:
            return refused
        renderings = self._renderings.setdefault(name, Renderings(self.thresholds))
        meta = self._meta(name, query.view, served, data)
        if query.format == "json":
            body = {**renderings.document(served, query.view, query.category, query.service), **meta}
            return Response(_JSON.encode(body).encode("utf-8"), media_type=FORMATS["json"])
        if query.format == "html":
            model = renderings.model(served, query.category, query.service)
            shown_age = served.age_seconds
            html = page(model, (), name, self.refresh_seconds, age_seconds=shown_age, view=query.view)
            return Response(html.encode("utf-8"), media_type=FORMATS["html"])
        body_bytes = renderings.view_body(
            served, query.view, query.format, query.category, query.service, precision=query.precision or "ns"
        )
        return Response(body_bytes, media_type=FORMATS[query.format])

    async def _fleet(self, query: Query) -> Response:
        """The fleet as one runtime of ``agent/service`` components: the six views, and for the
        summary the agents by state with totals and rates over all of them."""
        if query.format == "html" and query.view != "summary":
            return error_response(
                400, f"the fleet page shows the summary, not {query.view!r}", allowed=["summary"]
            )
        if query.view == "summary" and (query.category is not None or query.service is not None):
            return error_response(
                400, "the fleet summary covers every agent: filter another view, or ask one agent", allowed=[]
            )
        refused = check_precision(query)
        if refused is not None:
            return refused
        read = await self.read()
        if isinstance(read, Response):
            return read
        data, age, cached = read
        served = self._fleet_served(data, age, cached)
        refused = check_filters(query, served.collection)
        if refused is not None:
            return refused
        renderings = self._renderings.setdefault(FLEET_AGENT, Renderings(self.thresholds))
        if query.format not in ("json", "html"):
            encoded = renderings.view_body(
                served,
                query.view,
                query.format,
                query.category,
                query.service,
                precision=query.precision or "ns",
            )
            return Response(encoded, media_type=FORMATS[query.format])
        view = renderings.document(served, query.view, query.category, query.service)
        meta = {**self._times(data, age, cached), "agent": FLEET_AGENT, "view": query.view}
        if query.view != "summary":
            body = {**view, **meta, "fleet": fleet_meta(data, self.url)}
            return Response(_JSON.encode(body).encode("utf-8"), media_type=FORMATS["json"])
        models = {name: self._model(data, name, age, cached) for name in data.agents}
        summary = fleet_model(data, models, self.url)
        if query.format == "html":
            page = render_fleet_html(summary, self.refresh_seconds)
            return Response(page.encode("utf-8"), media_type=FORMATS["html"])
        document = {**view, **fleet_json(summary), **meta}
        return Response(_JSON.encode(document).encode("utf-8"), media_type=FORMATS["json"])

    def _fleet_served(self, data: FleetData, age: float, cached: bool) -> CachedCollection:
        """The fleet's collection of ``data``, made once per read."""
        made = self._fleet_made
        if made is None or made[0] is not data:
            collection, previous = fleet_collections(data)
            made = self._fleet_made = (data, collection, previous)
        return CachedCollection(made[1], cached, age, made[2])

    async def health(self, request: Request) -> Response:
        """``GET {base}/health``: the agent's health+json; 503 when it fails or is down."""
        if request.query_params:
            return error_response(400, "the health endpoint takes no query parameters", allowed=[])
        read = await self.read()
        if isinstance(read, Response):
            return read
        data, age, cached = read
        name = request.path_params["agent"]
        if name == FLEET_AGENT:
            renderings = self._renderings.setdefault(FLEET_AGENT, Renderings(self.thresholds))
            fleet = health_json(renderings.model(self._fleet_served(data, age, cached), None, None), name)
            fleet.setdefault("notes", []).append(f"every agent, read from the TSDB at {self.url}")
            return JSONResponse(
                fleet, status_code=503 if fleet["status"] == "fail" else 200, media_type=HEALTH_JSON
            )
        if name not in data.agents:
            return error_response(404, f"unknown agent {name!r}", agents=list(data.agents))
        agent = data.agents[name]
        document = health_json(self._model(data, name, age, cached), name)
        notes = document.setdefault("notes", [])
        notes.append(f"read from the TSDB at {self.url}")
        if agent.down:
            document["status"] = "fail"
            notes.append(f"the agent is down: {agent.down_reason}")
        elif agent.unknown_reason is not None:
            notes.append(f"the agent's state is unknown: {agent.unknown_reason}")
        status = 503 if document["status"] == "fail" else 200
        return JSONResponse(document, status_code=status, media_type=HEALTH_JSON)

    async def own_health(self, request: Request) -> Response:
        """``GET /health``: 200 while the TSDB answers, 503 with the reason when it does not."""
        read = await self.read()
        if isinstance(read, Response):
            return JSONResponse(
                {"status": "fail", "output": f"the TSDB is unavailable: {self._error}", "source": self.url},
                status_code=503,
                media_type=HEALTH_JSON,
            )
        data, age, _ = read
        return JSONResponse(
            {"status": "pass", "agents": len(data.agents), "source": self.url, "age_seconds": round(age, 3)},
            media_type=HEALTH_JSON,
        )

    def _times(self, data: FleetData, age: float, cached: bool) -> dict[str, Any]:
        return {
            "timestamp": datetime.fromtimestamp(data.time_unix, UTC).isoformat().replace("+00:00", "Z"),
            "generated_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "cached": cached,
            "age_seconds": round(age, 3),
            "stale": False,
            "package_version": __version__,
        }

    def _meta(self, name: str, view: str, served: CachedCollection, data: FleetData) -> dict[str, Any]:
        return {
            "agent": name,
            "view": view,
            **self._times(data, served.age_seconds, served.cached),
            "timestamp": iso_time(served.collection.time_unix_nano),
            "collection_duration_seconds": round(served.collection.duration_seconds, 6),
            "sdk_disabled": False,
            "fleet": agent_meta(data, data.agents[name], self.url),
        }


def _lifespan(
    endpoint: _FleetEndpoint,
) -> Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            task = endpoint._refresh
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    return lifespan
