"""The performance view: latency quantiles, throughput, LLM tokens and cost, cache hit ratio, queues."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.metrics.export import Metric

from telemetry_otel.views._numbers import add, ratio
from telemetry_otel.views._parts import (
    gauge_metric,
    header,
    latency_section,
    scope_attributes,
    service_identity,
)
from telemetry_otel.views._quantiles import Buckets
from telemetry_otel.views._state import Model
from telemetry_otel.vocabulary import (
    BUS_NAME,
    BUS_REQUEST_DURATION,
    BUS_REQUESTS,
    SERVICE_QUEUE_DEPTH,
    SERVICE_REQUEST_DURATION,
    SERVICE_REQUESTS,
)

__all__ = ["PERFORMANCE_SOURCES", "QUANTILES", "render_performance"]

#: The quantiles every latency section reports. The derived series carry them as the ``percentile``
#: attribute (``"50"``, ``"95"``, ``"99"``): Prometheus reserves a ``quantile`` label for summaries, and
#: ``promtool check metrics`` rejects it on a gauge.
QUANTILES: tuple[float, ...] = (0.5, 0.95, 0.99)

PERFORMANCE_SOURCES: frozenset[str] = frozenset(
    {
        SERVICE_REQUESTS,
        SERVICE_REQUEST_DURATION,
        SERVICE_QUEUE_DEPTH,
        "service.cache.hits",
        "service.cache.misses",
        "llm.tokens.input",
        "llm.tokens.output",
        "llm.cost",
        BUS_REQUESTS,
        BUS_REQUEST_DURATION,
        "bus.queue.depth",
        "bus.llm.tokens.input",
        "bus.llm.tokens.output",
        "bus.llm.cost",
    }
)


def render_performance(model: Model) -> tuple[dict[str, Any], list[Metric]]:
    """The performance document and its derived series (latency quantiles, cache hit ratios)."""
    services = model.services
    hits = add(state.cache_hits for state in services)
    misses = add(state.cache_misses for state in services)
    document = {
        **header(model, "performance"),
        "latency": latency_section(model.latency),
        "throughput": {"requests": model.requests, "rate_per_second": model.request_rate},
        "llm": {
            "tokens_input": add(state.tokens_input for state in services),
            "tokens_output": add(state.tokens_output for state in services),
            "cost_usd": add(state.cost for state in services),
        },
        "cache": {
            "hits": hits,
            "misses": misses,
            "hit_ratio": None if hits is None or misses is None else ratio(hits, hits + misses),
        },
        "queue_depth": add(state.queue_depth for state in services),
        "services": {
            state.name: {
                "category": state.category,
                "latency": latency_section(state.latency),
                "requests": state.requests,
                "request_rate_per_second": state.request_rate,
                "tokens_input": state.tokens_input,
                "tokens_output": state.tokens_output,
                "cost_usd": state.cost,
                "cache_hit_ratio": state.cache_hit_ratio,
                "queue_depth": state.queue_depth,
            }
            for state in services
        },
        "buses": {
            bus.name: {
                "latency": latency_section(bus.latency),
                "requests": bus.number("requests"),
                "request_rate_per_second": bus.request_rate,
                "tokens_input": bus.number("llm.tokens.input"),
                "tokens_output": bus.number("llm.tokens.output"),
                "cost_usd": bus.number("llm.cost"),
                "queue_depth": bus.number("queue.depth"),
            }
            for bus in model.buses
        },
    }
    now = model.inputs.now_unix_nano
    estimates = [
        *_quantile_points(scope_attributes(model), model.latency),
        *(point for state in services for point in _quantile_points(service_identity(state), state.latency)),
    ]
    derived = [
        *gauge_metric(
            "service.request.duration.estimate",
            "s",
            "Request latency quantile estimated from the duration histogram (linear interpolation); "
            "without service.name: merged over the selected services.",
            estimates,
            now,
        ),
        *gauge_metric(
            "bus.request.duration.estimate",
            "s",
            "Request latency quantile of a bus, estimated from its merged duration histogram.",
            [point for bus in model.buses for point in _quantile_points({BUS_NAME: bus.name}, bus.latency)],
            now,
        ),
        *gauge_metric(
            "service.cache.hit_ratio",
            "1",
            "Cache hits / (hits + misses) since start.",
            [(service_identity(state), state.cache_hit_ratio) for state in services],
            now,
        ),
    ]
    return document, derived


def _quantile_points(
    attributes: Mapping[str, str], latency: Buckets | None
) -> list[tuple[dict[str, str], float | None]]:
    if latency is None:
        return []
    return [({**attributes, "percentile": f"{q * 100:g}"}, latency.quantile(q)) for q in QUANTILES]
