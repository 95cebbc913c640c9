"""Renders collected telemetry and serves it: the unified endpoint and ``/metrics``."""

from __future__ import annotations

__all__: list[str] = []
