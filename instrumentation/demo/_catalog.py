"""The layout of the simulated agent runtime: services by category, buses and their providers."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["BUSES", "EXTRA_PROVIDERS", "SERVICES", "category_of"]

#: Category -> the runtime services in it, in registration order (21 services).
SERVICES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "graph": ("memory", "config", "telemetry", "audit", "incident_management", "tsdb_consolidation"),
        "infrastructure": (
            "time",
            "shutdown",
            "initialization",
            "authentication",
            "resource_monitor",
            "database_maintenance",
            "secrets",
        ),
        "governance": ("wise_authority", "adaptive_filter", "visibility", "self_observation"),
        "runtime": ("llm", "runtime_control", "task_scheduler", "secrets_tool"),
    }
)

#: Bus -> the component names attached to it as providers (the provider name is the component name).
BUSES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "llm": ("openai_primary", "openai_fallback"),
        "memory": ("memory", "memory_replica"),
        "communication": ("api_adapter", "cli_adapter"),
        "wise": ("wise_authority",),
        "tool": ("secrets_tool", "core_tools"),
        "runtime_control": ("runtime_control",),
    }
)

#: Bus providers that are not runtime services: registered without a category.
EXTRA_PROVIDERS: tuple[str, ...] = (
    "openai_primary",
    "openai_fallback",
    "memory_replica",
    "api_adapter",
    "cli_adapter",
    "core_tools",
)

_CATEGORIES: Mapping[str, str] = {name: category for category, names in SERVICES.items() for name in names}


def category_of(name: str) -> str | None:
    """The category of the runtime service ``name``, or None for a bus-only provider."""
    return _CATEGORIES.get(name)
