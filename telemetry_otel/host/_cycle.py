"""A worker's collection source when it answers for the whole host: the host picture, asked per request.

Every consumer of the runtime (``/metrics``, the views, health, the scrape server) asks
``telemetry.cycle``; in a worker of a multi-process host that cycle is a :class:`HostCycle`. Each
request asks the aggregator for the picture as it stands *after the request arrived* (a conditional
``GET /v1/host?generation=N``, answered 304 while nothing changed, so the same :class:`Collection`
object and its cached renderings are reused). Whichever worker takes a scrape, it can therefore
never answer with an older picture than one already served: host counters never go backwards,
whatever the workers' caches. A picture costs one loopback round trip per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

from telemetry_otel._collection import Collection
from telemetry_otel._cycle import CachedCollection, CollectionCycle, CycleStats
from telemetry_otel.host._link import HostLink

__all__ = ["HostCycle"]


class HostCycle(CollectionCycle):
    """The host picture through ``link``, with the consumer-facing API of :class:`CollectionCycle`."""

    def __init__(
        self, link: HostLink, *, longest_cycle_seconds: float, live_min_interval_millis: float
    ) -> None:
        super().__init__(
            _never,
            longest_cycle_seconds=longest_cycle_seconds,
            live_min_interval_millis=live_min_interval_millis,
        )
        self._link = link
        self._host_lock = threading.Lock()
        self._current: tuple[int, Collection, Collection | None] | None = None
        self._fetched = 0
        self._unchanged = 0
        self._fetch_failed = 0
        #: Why the newest attempt to fetch the picture failed (None: it succeeded): what was fetched
        #: before is then stale, and readiness says so, rather than passing on an old picture.
        self._unreachable: str | None = None
        self._host_closed = False

    async def get(self, max_age_seconds: float, *, live: bool = False) -> CachedCollection:
        """The host picture as it stands now (fetched on a thread of the running loop's executor)."""
        return await asyncio.get_running_loop().run_in_executor(None, self._served_now)

    def get_blocking(self, max_age_seconds: float, timeout_seconds: float) -> CachedCollection:
        """The host picture as it stands now."""
        return self._served_now()

    def collect_now(self, timeout_seconds: float) -> Collection:
        """The host picture as it stands now."""
        return self._served_now().collection

    @property
    def latest(self) -> Collection | None:
        """The newest host picture fetched, or None before the first."""
        current = self._current
        return None if current is None else current[1]

    def status(self, max_age_seconds: float) -> CachedCollection | None:
        """The newest host picture fetched, without waiting; starts a fetch in the background."""
        threading.Thread(target=self._try_fetch, name="telemetry-host-status", daemon=True).start()
        current = self._current
        if current is None:
            return None
        return self._entry(current, cached=True)

    def stats(self) -> CycleStats:
        """Fetches that brought a new picture (completed) or failed."""
        with self._host_lock:
            return CycleStats(self._fetched, self._fetch_failed, self._unchanged, 0, 0)

    def start(self) -> None:
        """Nothing to start: a host picture is fetched on the caller's thread."""

    def close(self) -> None:
        """Later requests raise ``RuntimeError``; the connections to the aggregator are closed."""
        self._host_closed = True
        self._link.close_connections()

    def reset_after_fork(self) -> None:
        """A forked child keeps nothing of its parent's fetches."""
        self._host_lock = threading.Lock()
        self._current = None

    def _try_fetch(self) -> None:
        # A readiness probe's background fetch: a failure is the next request's to report. Its
        # thread ends here, so its connection does not outlive it.
        with contextlib.suppress(Exception):
            self._served_now()
        self._link.drop_connection()

    def _served_now(self) -> CachedCollection:
        if self._host_closed:
            raise RuntimeError("the collection cycle is closed (the runtime was shut down)")
        known = self._current
        try:
            picture = self._link.fetch(None if known is None else known[0])
        except Exception as exc:
            with self._host_lock:
                self._fetch_failed += 1
                self._unreachable = f"{type(exc).__name__}: {exc}"
            raise
        with self._host_lock:
            self._unreachable = None
            current = self._current
            if picture is None:
                self._unchanged += 1
                if current is None:  # pragma: no cover - a 304 answers only a known generation
                    raise RuntimeError("the host answered 304 to a first request")
                return self._entry(current, cached=True)
            if current is not None and current[0] >= picture.generation:
                return self._entry(current, cached=True)  # a concurrent fetch brought a newer one
            self._fetched += 1
            previous = None if current is None else current[1]
            self._current = (picture.generation, picture.collection, previous)
            return self._entry(self._current, cached=False)

    def _entry(self, current: tuple[int, Collection, Collection | None], *, cached: bool) -> CachedCollection:
        collection = current[1]
        age = max(0.0, (time.time_ns() - collection.time_unix_nano) / 1e9)
        unreachable = self._unreachable
        return CachedCollection(
            collection=collection,
            cached=cached,
            age_seconds=age,
            previous=current[2],
            stale=unreachable is not None,
            stale_reason=None
            if unreachable is None
            else f"the host picture cannot be fetched: {unreachable}",
        )


async def _never() -> Collection:  # pragma: no cover - a host cycle never runs local cycles
    raise RuntimeError("a host cycle fetches the host picture; it runs no local cycle")
