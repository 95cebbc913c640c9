from __future__ import annotations

import asyncio

from telemetry_otel import CollectionCache, Snapshot, Telemetry
from telemetry_otel.instrumentation import gauge, instrument_service


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_concurrent_requests_on_a_cold_cache_cause_exactly_one_collection(telemetry: Telemetry) -> None:
    calls = 0

    async def snapshot() -> Snapshot:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return {"c.depth": calls}

    instrument_service(
        "svc",
        category="graph",
        snapshot=snapshot,
        metrics=[gauge("c.depth", "{item}", "Depth.")],
        telemetry=telemetry,
    )
    cache = CollectionCache(telemetry, ttl_seconds=30)

    async def burst() -> list[bool]:
        served = await asyncio.gather(*(cache.get() for _ in range(50)))
        return [item.cached for item in served]

    cached_flags = asyncio.run(burst())
    assert calls == 1
    assert cache.collections == 1
    assert cached_flags == [False] * 50


def test_ttl_expiry_and_live_bypass(telemetry: Telemetry) -> None:
    clock = _Clock()
    cache = CollectionCache(telemetry, ttl_seconds=30, clock=clock)

    async def scenario() -> list[tuple[bool, float]]:
        seen = []
        seen.append(await cache.get())
        clock.now += 10
        seen.append(await cache.get())
        seen.append(await cache.get(live=True))
        clock.now += 31
        seen.append(await cache.get())
        return [(item.cached, item.age_seconds) for item in seen]

    assert asyncio.run(scenario()) == [(False, 0.0), (True, 10.0), (False, 0.0), (False, 0.0)]
    assert cache.collections == 3
