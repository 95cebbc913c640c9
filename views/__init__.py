"""Renders collected telemetry and serves it: six views in six formats, health, ``/metrics``, dashboards."""

from __future__ import annotations

from telemetry_otel.views._app import FORMATS, HEALTH_JSON, QUERY_PARAMETERS, create_app
from telemetry_otel.views._dashboards import dashboard_paths, load_dashboard
from telemetry_otel.views._fleet_app import FLEET_AGENT, create_fleet_app
from telemetry_otel.views._fleet_query import TsdbConfig, TsdbError
from telemetry_otel.views._fleet_source import FleetSettings
from telemetry_otel.views._health_json import health_json
from telemetry_otel.views._history import HistoryPoint, StatusHistory
from telemetry_otel.views._html import HTML_VIEWS, render_html
from telemetry_otel.views._inputs import ViewInputs
from telemetry_otel.views._render import VIEWS, RenderedView, render_view, view_metrics
from telemetry_otel.views._rule_file import prometheus_rules
from telemetry_otel.views._slo import SLO, SloFileError, load_slo_file
from telemetry_otel.views._thresholds import Alert, Thresholds

__all__ = [
    "FLEET_AGENT",
    "FORMATS",
    "HEALTH_JSON",
    "HTML_VIEWS",
    "QUERY_PARAMETERS",
    "SLO",
    "VIEWS",
    "Alert",
    "FleetSettings",
    "HistoryPoint",
    "RenderedView",
    "SloFileError",
    "StatusHistory",
    "Thresholds",
    "TsdbConfig",
    "TsdbError",
    "ViewInputs",
    "create_app",
    "create_fleet_app",
    "dashboard_paths",
    "health_json",
    "load_dashboard",
    "load_slo_file",
    "prometheus_rules",
    "render_html",
    "render_view",
    "view_metrics",
]
