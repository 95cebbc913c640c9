"""A bus name is unique per runtime, like a service name, and a bus's numbers keep their type."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

import httpx2 as httpx
import pytest

from telemetry_otel import Telemetry, TelemetryConfig
from telemetry_otel.instrumentation import Bus, gauge, instrument_service
from telemetry_otel.views import create_app

BASE = "/api/demo/v1/telemetry"


def test_a_second_bus_of_the_same_name_is_refused_like_a_duplicate_service(telemetry: Telemetry) -> None:
    instrument_service("llm", category="runtime", telemetry=telemetry)
    with pytest.raises(ValueError, match="a component named 'llm' is already registered"):
        instrument_service("llm", category="runtime", telemetry=telemetry)
    first = Bus("llm", telemetry=telemetry)
    with pytest.raises(ValueError, match="a bus named 'llm' is already registered"):
        Bus("llm", telemetry=telemetry)
    first.close()
    Bus("llm", telemetry=telemetry)  # a closed bus frees its name


def test_names_equal_once_cut_to_the_length_limit_are_the_same_bus() -> None:
    runtime = Telemetry(TelemetryConfig(service_name="t", attribute_value_length_limit=16))
    try:
        Bus("bus-" + "x" * 20, telemetry=runtime)
        with pytest.raises(ValueError, match="already registered"):
            Bus("bus-" + "x" * 30, telemetry=runtime)
    finally:
        runtime.shutdown()


def test_the_exposition_has_one_sample_per_bus_series_and_integer_gauges_stay_integers(
    telemetry: Telemetry, live_server: Callable[..., Any]
) -> None:
    depth = gauge("service.queue.depth", "{item}", "Requests waiting.")
    bus = Bus("llm", telemetry=telemetry)
    for name, waiting in (("openai_primary", 2), ("openai_fallback", 4)):
        provider = instrument_service(
            name, snapshot=lambda n=waiting: {"service.queue.depth": n}, metrics=[depth], telemetry=telemetry
        )
        provider.report_health("pass")
        bus.attach(provider)
    service = instrument_service(
        "memory",
        category="graph",
        snapshot=lambda: {"service.queue.depth": 6},
        metrics=[depth],
        telemetry=telemetry,
    )
    service.report_health("pass")
    base = live_server(create_app(telemetry, agent="demo", cache_ttl_seconds=0)).url
    raw = httpx.get(f"{base}{BASE}", params={"view": "operational"}, timeout=10).text
    document = json.loads(raw)
    assert document["buses"]["llm"]["queue_depth"] == 6
    assert document["services"]["memory"]["queue_depth"] == 6
    # The same type for the same kind of number: 6, never 6.0 for a bus.
    assert '"queue_depth":6,' in raw
    assert '"queue_depth":6.0' not in raw
    scrape = httpx.get(f"{base}/metrics", timeout=10).text
    samples = [line for line in scrape.splitlines() if line and not line.startswith("#")]
    assert len(samples) == len({line.rsplit(" ", 1)[0] for line in samples})  # no two with one label set
    check = subprocess.run(
        ["promtool", "check", "metrics"], input=scrape, capture_output=True, text=True, check=False
    )
    assert (check.returncode, check.stdout + check.stderr) == (0, "")
