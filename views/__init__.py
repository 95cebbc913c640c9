"""Renders collected telemetry and serves it: six views in five formats, health, and ``/metrics``."""

from __future__ import annotations

from telemetry_otel.views._app import FORMATS, HEALTH_JSON, QUERY_PARAMETERS, create_app
from telemetry_otel.views._detailed import render_detailed
from telemetry_otel.views._health_json import health_json
from telemetry_otel.views._model import ViewInputs
from telemetry_otel.views._render import VIEWS, RenderedView, render_view, view_metrics
from telemetry_otel.views._thresholds import Alert, Thresholds

__all__ = [
    "FORMATS",
    "HEALTH_JSON",
    "QUERY_PARAMETERS",
    "VIEWS",
    "Alert",
    "RenderedView",
    "Thresholds",
    "ViewInputs",
    "create_app",
    "health_json",
    "render_detailed",
    "render_view",
    "view_metrics",
]
