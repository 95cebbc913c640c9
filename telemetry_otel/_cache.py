"""A TTL cache over collection cycles with one refresh in flight at a time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from telemetry_otel._collection import Collection
from telemetry_otel._runtime import Telemetry

__all__ = ["CachedCollection", "CollectionCache"]

DEFAULT_TTL_SECONDS = 30.0


@dataclass(frozen=True)
class CachedCollection:
    """A collection and whether the cache served it, with its age in seconds.

    ``previous`` is the collection before it (for rates), None after the first.
    """

    collection: Collection
    cached: bool
    age_seconds: float
    previous: Collection | None = None


class CollectionCache:
    """Serves the latest collection while it is younger than ``ttl_seconds``.

    Concurrent callers on a cold or expired cache share one refresh: N requests cause exactly one
    collection. ``live=True`` bypasses the cache (and refreshes it).
    """

    def __init__(
        self,
        telemetry: Telemetry,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not ttl_seconds >= 0:
            raise ValueError(f"ttl_seconds must be zero or positive, got {ttl_seconds!r}")
        self.telemetry = telemetry
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._latest: tuple[Collection, float] | None = None
        self._previous: Collection | None = None
        self._inflight: asyncio.Task[Collection] | None = None
        self.collections = 0  #: how many collection cycles this cache started

    async def get(self, *, live: bool = False) -> CachedCollection:
        """The cached collection if fresh (and not ``live``), else the result of one shared refresh."""
        latest = self._latest
        if not live and latest is not None:
            age = self._clock() - latest[1]
            if age < self.ttl_seconds:
                return CachedCollection(latest[0], cached=True, age_seconds=age, previous=self._previous)
        task = self._inflight
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            task = asyncio.get_running_loop().create_task(self._refresh())
            self._inflight = task
        collection = await asyncio.shield(task)
        return CachedCollection(
            collection, cached=False, age_seconds=0.0, previous=self._previous_of(collection)
        )

    @property
    def latest(self) -> Collection | None:
        """The newest collection, or None before the first."""
        latest = self._latest
        return None if latest is None else latest[0]

    def _previous_of(self, collection: Collection) -> Collection | None:
        return self._previous if self._latest is not None and self._latest[0] is collection else None

    async def _refresh(self) -> Collection:
        self.collections += 1
        collection = await self.telemetry.collect()
        if self._latest is not None:
            self._previous = self._latest[0]
        self._latest = (collection, self._clock())
        return collection
