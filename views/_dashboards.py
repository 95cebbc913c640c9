"""The Grafana dashboards shipped with the package: where they are, and loading one."""

from __future__ import annotations

import json
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

__all__ = ["dashboard_paths", "load_dashboard"]

_PACKAGE = "telemetry_otel.views"
_DIRECTORY = "dashboards"


def dashboard_paths() -> dict[str, Traversable]:
    """Every shipped dashboard by name (its file name without ``.json``), sorted by name.

    The values are :mod:`importlib.resources` traversables: real paths (``pathlib.Path``) in an
    installed package, ready to copy into Grafana's provisioning directory.
    """
    directory = files(_PACKAGE).joinpath(_DIRECTORY)
    found = {
        entry.name.removesuffix(".json"): entry
        for entry in directory.iterdir()
        if entry.is_file() and entry.name.endswith(".json")
    }
    return dict(sorted(found.items()))


def load_dashboard(name: str) -> dict[str, Any]:
    """The dashboard ``name`` (``overview``, ``service``, ``buses``, ``llm``, ``collector``, ``slo``).

    An unknown name is a ``ValueError`` naming the dashboards.
    """
    paths = dashboard_paths()
    if name not in paths:
        raise ValueError(f"unknown dashboard {name!r}; dashboards: {', '.join(paths)}")
    dashboard = json.loads(paths[name].read_text(encoding="utf-8"))
    if not isinstance(dashboard, dict):
        raise ValueError(f"dashboard {name!r} is not a JSON object")
    return dashboard
