"""How each simulated component behaves: traffic, latency, errors and the features it has."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["PROFILES", "Pricing", "Profile"]


@dataclass(frozen=True)
class Pricing:
    """Token use of one language-model call (lognormal medians) and its price per token."""

    input_tokens_median: float
    output_tokens_median: float
    usd_per_input_token: float
    usd_per_output_token: float


@dataclass(frozen=True)
class Profile:
    """Behaviour of one component.

    ``rate`` is requests per second (Poisson); latency is lognormal around ``median_latency``
    seconds. ``incident_rate`` is how often per second a degraded episode starts, during which
    errors are far more likely and requests slower. A ``routed`` component draws no traffic of its
    own: it serves what another component (the ``llm`` service) sends it.
    """

    rate: float
    median_latency: float
    latency_sigma: float = 0.5
    error_probability: float = 0.002
    incident_rate: float = 1 / 600
    breaker: bool = False
    queue: bool = False
    cache_hit_ratio: float | None = None
    pricing: Pricing | None = None
    tokens: bool = False
    routed: bool = False


_GPT_LARGE = Pricing(900, 260, 2.5e-6, 1.0e-5)
_GPT_SMALL = Pricing(900, 240, 1.5e-7, 6.0e-7)

#: Component name -> behaviour, for the 21 services and the bus-only providers.
PROFILES: Mapping[str, Profile] = MappingProxyType(
    {
        # graph
        "memory": Profile(20, 0.004, 0.6, queue=True, cache_hit_ratio=0.8),
        "config": Profile(30, 0.0004, 0.4, 0.0005, cache_hit_ratio=0.97),
        "telemetry": Profile(4, 0.002),
        "audit": Profile(12, 0.0015),
        "incident_management": Profile(1, 0.01, 0.7, 0.01),
        "tsdb_consolidation": Profile(1, 0.35, 0.5, 0.02),
        # infrastructure
        "time": Profile(50, 0.00015, 0.3, 0.0),
        "shutdown": Profile(1, 0.002, 0.3, 0.0),
        "initialization": Profile(1, 0.003),
        "authentication": Profile(10, 0.003, 0.5, 0.01),
        "resource_monitor": Profile(1, 0.0008),
        "database_maintenance": Profile(1, 0.05, 0.8, 0.005),
        "secrets": Profile(3, 0.0012, 0.4),
        # governance
        "wise_authority": Profile(2, 0.08, 0.8, 0.01, 1 / 240, breaker=True, queue=True),
        "adaptive_filter": Profile(15, 0.0007, cache_hit_ratio=0.65),
        "visibility": Profile(5, 0.0025),
        "self_observation": Profile(2, 0.006),
        # runtime
        "llm": Profile(8, 0.003, 0.4, 0.0, 0.0, breaker=True, queue=True, tokens=True),
        "runtime_control": Profile(1, 0.002),
        "task_scheduler": Profile(4, 0.004, queue=True),
        "secrets_tool": Profile(2, 0.006),
        # bus-only providers
        "openai_primary": Profile(
            0, 1.2, 0.5, 0.01, 1 / 200, breaker=True, pricing=_GPT_LARGE, tokens=True, routed=True
        ),
        "openai_fallback": Profile(
            0, 0.9, 0.5, 0.015, 1 / 400, breaker=True, pricing=_GPT_SMALL, tokens=True, routed=True
        ),
        "memory_replica": Profile(8, 0.006, 0.6, 0.003, 1 / 240, breaker=True, queue=True),
        "api_adapter": Profile(10, 0.02, 0.7, 0.005, queue=True),
        "cli_adapter": Profile(1, 0.001, queue=True),
        "core_tools": Profile(3, 0.03, 0.8, 0.01),
    }
)
