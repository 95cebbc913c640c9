"""Every error the endpoint answers is JSON naming what is allowed: one place builds them."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = ["ROUTES", "error_response", "http_error"]

#: The routes of the app, listed by a 404.
ROUTES: tuple[str, ...] = (
    "/api/{agent}/v1/telemetry",
    "/api/{agent}/v1/telemetry/health",
    "/api/{agent}/v1/telemetry/health/live",
    "/api/{agent}/v1/telemetry/health/ready",
    "/metrics",
)


def error_response(status: int, message: str, **details: Any) -> JSONResponse:
    """``{"error": message, **details}`` with ``status``."""
    return JSONResponse({"error": message, **details}, status_code=status)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's 404 and 405 (and any other ``HTTPException``) as JSON naming what exists."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        # scope["path"], not request.url: a query string that is not UTF-8 must not make this a 500.
        return error_response(404, f"no route {request.scope.get('path', '')!r}", routes=list(ROUTES))
    if exc.status_code == 405:
        return error_response(405, f"method {request.method} is not allowed here", allowed=["GET"])
    return error_response(exc.status_code, str(exc.detail))
