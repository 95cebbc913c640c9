"""Renders collected telemetry and serves it: the unified endpoint and ``/metrics``."""

from __future__ import annotations

from telemetry_otel.views._app import ALLOWED_QUERY, create_app
from telemetry_otel.views._detailed import render_detailed

__all__ = ["ALLOWED_QUERY", "create_app", "render_detailed"]
