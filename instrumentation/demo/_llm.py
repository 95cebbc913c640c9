"""The ``llm`` service routing its requests over the llm bus, with failover between providers."""

from __future__ import annotations

import random
from collections.abc import Sequence

from telemetry_otel.instrumentation.demo._component import Served, SimulatedComponent
from telemetry_otel.instrumentation.demo._sampling import lognormal

__all__ = ["PRIMARY_SHARE", "route_llm_request"]

#: Share of requests sent first to the first provider; the rest go first to the second.
PRIMARY_SHARE = 0.7
_FAST_FAIL_MEDIAN = 0.0005


def route_llm_request(
    rng: random.Random, router: SimulatedComponent, providers: Sequence[SimulatedComponent], now: float
) -> None:
    """Send one request through ``router`` to a provider whose breaker admits it.

    The provider accounts for the call (latency, error, tokens); the router records it again with
    its own overhead added and the same tokens, so the ``llm`` service's totals are its providers'.
    When no provider admits the request it fails fast at the router.
    """
    if not router.admits():
        return
    if router.forced_failure:  # failing on purpose (the demo failure switch): fail fast at the router
        router.record(Served(lognormal(rng, _FAST_FAIL_MEDIAN, 0.3), True, None), now, rng)
        return
    ordered = list(providers) if rng.random() < PRIMARY_SHARE else list(reversed(providers))
    for provider in ordered:
        served = provider.serve(rng, now)
        if served is not None:
            overhead = lognormal(rng, router.profile.median_latency, router.profile.latency_sigma)
            router.record(Served(served.latency + overhead, served.error, served.usage), now, rng)
            return
    router.record(Served(lognormal(rng, _FAST_FAIL_MEDIAN, 0.3), True, None), now, rng)
