"""One simulated component: its traffic, breaker, queue, cache, token use and reported health."""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass

from telemetry_otel import HealthStatus, SnapshotValue
from telemetry_otel.instrumentation import InstrumentedService, SnapshotMetric
from telemetry_otel.instrumentation.demo._breaker import CircuitBreaker
from telemetry_otel.instrumentation.demo._domain import Domain
from telemetry_otel.instrumentation.demo._metrics import (
    BREAKER_STATE,
    CACHE_HITS,
    CACHE_MISSES,
    LLM_COST,
    LLM_TOKENS_INPUT,
    LLM_TOKENS_OUTPUT,
    QUEUE_DEPTH,
)
from telemetry_otel.instrumentation.demo._profiles import Pricing, Profile
from telemetry_otel.instrumentation.demo._sampling import lognormal, poisson

__all__ = ["Served", "SimulatedComponent", "Usage"]

#: Recent-error window (simulated seconds) behind the ``warn`` health status.
WINDOW_SECONDS = 10.0
WARN_ERROR_RATIO = 0.25
MIN_WINDOW_REQUESTS = 10
MAX_QUEUE_DEPTH = 500
_DEGRADED_ERROR_PROBABILITY = 0.6
_DEGRADED_SLOWDOWN = 4.0
_CACHE_SPEEDUP = 0.25


@dataclass(frozen=True)
class Usage:
    """Tokens and cost of one language-model call."""

    input_tokens: int
    output_tokens: int
    cost: float


@dataclass(frozen=True)
class Served:
    """The outcome of one request a component handled."""

    latency: float
    error: bool
    usage: Usage | None


class SimulatedComponent:
    """The simulated state of one service or bus provider, advanced tick by tick.

    Not thread-safe: the runtime serialises ticks and snapshot reads.
    """

    def __init__(self, name: str, profile: Profile, domain: Domain) -> None:
        self.name = name
        self.profile = profile
        self.domain = domain
        self.service: InstrumentedService | None = None
        self.breaker = CircuitBreaker() if profile.breaker else None
        self.queue_depth: int | None = 0 if profile.queue else None
        self.cache_hits = 0
        self.cache_misses = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.cost = 0.0
        self.health: HealthStatus = "pass"
        self.health_reason: str | None = None
        self._degraded_until = -math.inf
        self._degraded = False
        self._window: deque[tuple[float, int, int]] = deque()
        self._tick_requests = 0
        self._tick_errors = 0
        #: Set by the runtime while a failure it was told to cause lasts: every request fails.
        self.forced_failure = False

    def metrics(self) -> list[SnapshotMetric]:
        """The snapshot metrics this component publishes."""
        declared: list[SnapshotMetric] = []
        if self.profile.tokens:
            declared += [LLM_TOKENS_INPUT, LLM_TOKENS_OUTPUT, LLM_COST]
        if self.breaker is not None:
            declared.append(BREAKER_STATE)
        if self.queue_depth is not None:
            declared.append(QUEUE_DEPTH)
        if self.profile.cache_hit_ratio is not None:
            declared += [CACHE_HITS, CACHE_MISSES]
        return declared + list(self.domain.metrics)

    def begin_tick(self, rng: random.Random, now: float, dt: float) -> None:
        """Start the tick ending at simulated time ``now``: degraded episodes, breaker cooldown."""
        self._tick_requests = 0
        self._tick_errors = 0
        if now >= self._degraded_until and rng.random() < 1 - math.exp(-self.profile.incident_rate * dt):
            self._degraded_until = now + rng.uniform(5.0, 15.0)
        self._degraded = now < self._degraded_until
        if self.breaker is not None:
            self.breaker.advance(now)

    @property
    def tick_requests(self) -> int:
        """Requests handled in the current tick (breaker rejections are not handled)."""
        return self._tick_requests

    def admits(self) -> bool:
        """Whether the component takes requests now (its breaker, if any, is not open)."""
        return self.breaker is None or self.breaker.allows()

    def own_traffic(self, rng: random.Random, dt: float) -> int:
        """How many requests arrive at this component by itself during a tick of ``dt`` seconds."""
        return 0 if self.profile.routed else poisson(rng, self.profile.rate * dt)

    def serve(self, rng: random.Random, now: float) -> Served | None:
        """Handle one request end to end, or None when the breaker rejects it."""
        if not self.admits():
            return None
        profile = self.profile
        latency = lognormal(rng, profile.median_latency, profile.latency_sigma)
        error_probability = profile.error_probability
        if self._degraded:
            latency *= _DEGRADED_SLOWDOWN
            error_probability = max(error_probability, _DEGRADED_ERROR_PROBABILITY)
        if self.forced_failure:
            error_probability = 1.0
        if profile.cache_hit_ratio is not None:
            if rng.random() < profile.cache_hit_ratio:
                self.cache_hits += 1
                served = Served(latency * _CACHE_SPEEDUP, False, None)
                self.record(served, now, rng)
                return served
            self.cache_misses += 1
        error = rng.random() < error_probability
        pricing = profile.pricing
        usage = None if error or pricing is None else _usage(rng, pricing)
        served = Served(latency, error, usage)
        self.record(served, now, rng)
        return served

    def record(self, served: Served, now: float, rng: random.Random) -> None:
        """Account for one request: vitals, breaker, error window, tokens and domain state."""
        if self.service is not None:
            self.service.record_request(served.latency, served.error)
        if self.breaker is not None:
            self.breaker.record(served.error, now)
        self._tick_requests += 1
        self._tick_errors += served.error
        if served.usage is not None:
            self.input_tokens += served.usage.input_tokens
            self.output_tokens += served.usage.output_tokens
            self.cost += served.usage.cost
        self.domain.on_request(rng, served.error)

    def end_tick(self, rng: random.Random, now: float, dt: float, failing: int) -> None:
        """Finish the tick: drain the queue, update domain state, work out and report health."""
        if self.queue_depth is not None:
            slow = self._degraded or not self.admits()
            served = poisson(rng, self.profile.rate * (0.5 if slow else 1.15) * dt)
            depth = self.queue_depth + self._tick_requests - served
            self.queue_depth = min(MAX_QUEUE_DEPTH, max(0, depth))
        self.domain.on_tick(rng, dt, failing)
        self._window.append((now, self._tick_requests, self._tick_errors))
        while self._window and self._window[0][0] <= now - WINDOW_SECONDS:
            self._window.popleft()
        self.health, self.health_reason = self._assess()
        if self.service is not None:
            self.service.report_health(self.health, self.health_reason)

    def _assess(self) -> tuple[HealthStatus, str | None]:
        breaker = self.breaker
        if breaker is not None and breaker.state == "open":
            return "fail", f"circuit breaker open after {breaker.consecutive_failures} consecutive errors"
        if self.forced_failure:
            return "fail", "failing on purpose (demo failure switch)"
        if breaker is not None and breaker.state == "half_open":
            return "warn", "circuit breaker half-open: probing for recovery"
        requests = sum(entry[1] for entry in self._window)
        errors = sum(entry[2] for entry in self._window)
        if requests >= MIN_WINDOW_REQUESTS and errors / requests >= WARN_ERROR_RATIO:
            return "warn", f"{errors} of the last {requests} requests failed ({WINDOW_SECONDS:.0f} s window)"
        return "pass", None

    def snapshot(self) -> dict[str, SnapshotValue]:
        """The current values of this component's snapshot metrics."""
        values: dict[str, SnapshotValue] = {}
        if self.profile.tokens:
            values[LLM_TOKENS_INPUT.name] = self.input_tokens
            values[LLM_TOKENS_OUTPUT.name] = self.output_tokens
            values[LLM_COST.name] = self.cost
        if self.breaker is not None:
            values[BREAKER_STATE.name] = self.breaker.series()
        if self.queue_depth is not None:
            values[QUEUE_DEPTH.name] = self.queue_depth
        if self.profile.cache_hit_ratio is not None:
            values[CACHE_HITS.name] = self.cache_hits
            values[CACHE_MISSES.name] = self.cache_misses
        values.update(self.domain.snapshot())
        return values


def _usage(rng: random.Random, pricing: Pricing) -> Usage:
    input_tokens = max(1, round(lognormal(rng, pricing.input_tokens_median, 0.7)))
    output_tokens = max(1, round(lognormal(rng, pricing.output_tokens_median, 0.6)))
    cost = input_tokens * pricing.usd_per_input_token + output_tokens * pricing.usd_per_output_token
    return Usage(input_tokens, output_tokens, cost)
