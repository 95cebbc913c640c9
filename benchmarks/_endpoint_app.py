"""The server under test of ``bench_endpoint.py``: the demo behind the unified endpoint, plus a
trivial Starlette JSON route on the same app as the baseline."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse

from telemetry_otel import Telemetry, TelemetryConfig
from telemetry_otel.instrumentation.demo import DemoRuntime
from telemetry_otel.views import create_app


def build() -> Starlette:
    """The app: demo runtime (stepping in the background), a one-hour cache, and ``/trivial``."""
    telemetry = Telemetry(TelemetryConfig(service_name="bench-endpoint"))
    demo = DemoRuntime(telemetry, seed=4)
    app = create_app(
        telemetry,
        agent="demo",
        cache_ttl_seconds=3_600,
        background=[demo.run],
        on_shutdown=[demo.close, telemetry.shutdown],
    )

    async def trivial(request: Request) -> JSONResponse:
        return JSONResponse({"status": "pass", "agent": "demo"})

    app.add_route("/trivial", trivial, methods=["GET"])
    return app


app = build()
