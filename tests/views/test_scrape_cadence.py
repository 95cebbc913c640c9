"""What docs/grafana.md says of the scrape interval and the cache TTL, through real HTTP: with a TTL
below the interval every scrape gets a new collection (the one the scrape before started); with a
TTL at or above it, scrapes repeat the same collection."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx2 as httpx
import pytest

from telemetry_otel import Telemetry
from telemetry_otel.instrumentation import instrument_service
from telemetry_otel.views import create_app

BASE = "/api/demo/v1/telemetry"
INTERVAL = 0.4


def _scrape_timestamps(base: str, scrapes: int) -> list[str]:
    """The collection each of ``scrapes`` scrapes, ``INTERVAL`` apart, was answered from."""
    stamps = []
    for _ in range(scrapes):
        started = time.monotonic()
        stamps.append(httpx.get(f"{base}{BASE}", timeout=10).json()["timestamp"])
        time.sleep(max(0.0, INTERVAL - (time.monotonic() - started)))
    return stamps


@pytest.mark.parametrize(
    ("ttl", "distinct"),
    [(INTERVAL / 4, 5), (INTERVAL * 2.5, 2)],
    ids=["ttl below the interval: a new collection per scrape", "ttl above it: repeats"],
)
def test_a_scrape_gets_a_new_collection_only_when_the_ttl_is_below_the_interval(
    telemetry: Telemetry, live_server: Callable[..., Any], ttl: float, distinct: int
) -> None:
    instrument_service("memory", category="graph", telemetry=telemetry).report_health("pass")
    base = live_server(create_app(telemetry, agent="demo", cache_ttl_seconds=ttl)).url
    httpx.get(f"{base}{BASE}", timeout=10)  # the first collection, as Prometheus' first scrape makes it
    time.sleep(INTERVAL)
    stamps = _scrape_timestamps(base, 5)
    assert len(set(stamps)) == distinct, stamps
