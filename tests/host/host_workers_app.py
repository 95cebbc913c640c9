"""The application the multi-worker tests serve with real gunicorn and uvicorn workers.

``GET /work`` records one request of service ``work`` (an error with ``?error=1``) and answers
with the worker's pid; every other path is the telemetry endpoint (``agent`` ``host``), which
answers for the whole host. Set-up happens at import, as a module-level application does, so that
``--preload`` sets the runtime up in the gunicorn master before it forks.
"""

from __future__ import annotations

import os
from typing import Any

from telemetry_otel import setup_telemetry
from telemetry_otel.instrumentation import instrument_service
from telemetry_otel.views import create_app

telemetry = setup_telemetry(service_name="host-test", live_min_interval_millis=0)
work = instrument_service("work", category="runtime")
_endpoint = create_app(telemetry, agent="host", cache_ttl_seconds=30)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http" and scope["path"] == "/work":
        work.record_request(0.002, error=scope.get("query_string", b"") == b"error=1")
        body = str(os.getpid()).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"%d" % len(body))],
            }
        )
        await send({"type": "http.response.body", "body": body})
        return
    await _endpoint(scope, receive, send)
