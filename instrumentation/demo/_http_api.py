"""The demo runtime's own small HTTP API, measured by ``HTTPMetricsMiddleware``, and its simulated clients.

Served by ``telemetry-otel serve --demo`` under ``/demo`` (``GET /demo/services``,
``GET /demo/services/{name}``, ``POST /demo/tasks``), so real HTTP requests show up as
``http.server.*`` series. Each simulation step also sends a few requests of its own in process
(through the same middleware, the same app mounted the same way), so the series exist without any
client: the demo's catalog declares them and ``coverage`` sees them.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable, Mapping

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message

from telemetry_otel import Telemetry
from telemetry_otel.instrumentation import HTTPMetricsMiddleware

__all__ = ["API_PREFIX", "DemoApi"]

#: Where ``serve --demo`` mounts the API.
API_PREFIX = "/demo"
#: Requests the simulated clients send per step, at most.
MAX_REQUESTS_PER_STEP = 3
#: Share of task submissions refused with 503 (the tool bus is "busy").
REFUSED_SHARE = 0.05


class DemoApi:
    """The API over ``statuses`` (service name -> its last reported health status)."""

    def __init__(self, telemetry: Telemetry, statuses: Callable[[], Mapping[str, str]], seed: int) -> None:
        self._statuses = statuses
        self._rng = random.Random(seed)
        self.app: ASGIApp = Starlette(
            routes=[
                Route("/services", self._services, methods=["GET"]),
                Route("/services/{name}", self._service, methods=["GET"]),
                Route("/tasks", self._task, methods=["POST"]),
            ],
            middleware=[Middleware(HTTPMetricsMiddleware, telemetry=telemetry, exclude_paths=())],
        )
        # The simulated clients call the API mounted as the server mounts it, so the route templates
        # (``/demo/services/{name}``) are the same for both.
        self._mounted = Starlette(routes=[Mount(API_PREFIX, app=self.app)])
        self._tasks = 0

    async def _services(self, request: Request) -> Response:
        return JSONResponse(sorted(self._statuses()))

    async def _service(self, request: Request) -> Response:
        name = request.path_params["name"]
        status = self._statuses().get(name)
        if status is None:
            return JSONResponse({"error": f"no service {name!r}"}, status_code=404)
        return JSONResponse({"name": name, "status": status})

    async def _task(self, request: Request) -> Response:
        if self._rng.random() < REFUSED_SHARE:
            return JSONResponse({"error": "the tool bus is busy, retry later"}, status_code=503)
        self._tasks += 1
        return JSONResponse({"task": self._tasks}, status_code=202)

    def simulate_clients(self) -> None:
        """Send this step's simulated requests in process (nothing when an event loop is running here:
        under ``serve`` the step runs on the server's loop, and :meth:`simulate_clients_async` is used)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(self.simulate_clients_async())

    async def simulate_clients_async(self) -> None:
        """This step's simulated requests: a few of the API's calls, some for unknown services."""
        names = sorted(self._statuses())
        for _ in range(self._rng.randint(1, MAX_REQUESTS_PER_STEP)):
            pick = self._rng.random()
            if pick < 0.4:
                await self._call("GET", f"{API_PREFIX}/services")
            elif pick < 0.8:
                known = names and self._rng.random() < 0.9
                name = self._rng.choice(names) if known else f"unknown-{self._rng.randrange(10**6)}"
                await self._call("GET", f"{API_PREFIX}/services/{name}")
            else:
                await self._call("POST", f"{API_PREFIX}/tasks", {"kind": "summarise"})

    async def _call(self, method: str, path: str, body: object = None) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", b"demo.internal"), (b"content-type", b"application/json")],
            "client": ("127.0.0.1", 0),
            "server": ("demo.internal", 80),
        }
        delivered = False

        async def receive() -> Message:
            nonlocal delivered
            if delivered:  # asked again after the body: the simulated client has gone
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": payload, "more_body": False}

        async def send(message: Message) -> None:
            """The simulated client reads and drops the response."""

        await self._mounted(scope, receive, send)
