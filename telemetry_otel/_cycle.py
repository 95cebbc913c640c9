"""The collection cycle's one owner: the schedule, the cache, and who waits for what.

Every consumer (the HTTP app, the push exporters, the CLI, a final export at shutdown) asks the
runtime's :class:`CollectionCycle` for *a collection no older than X*. Cycles run one at a time on
the cycle's own thread and event loop, whoever asked, so no consumer drives collection its own way
and no consumer's event loop runs another's cycles.

Who waits:

* a request with a completed collection never waits: it is served that collection with its true
  age, and if the collection is older than asked a refresh starts in the background
  (stale-while-revalidate, one refresh in flight);
* the very first collection, a ``max_age`` of 0 and a live request wait for a cycle, bounded by the
  runtime's timeouts; live requests are floored: at most one live cycle per
  ``live_min_interval_seconds``, and a live request beyond that gets the newest collection, flagged;
* a push exporter waits at most its interval for a fresh cycle; when none completes in time it gets
  the newest collection and the miss is counted as late.

Staleness: when a refresh has been due for ``stale_after_ttls`` times the asked age without any
cycle completing, what is served is flagged ``stale``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from telemetry_otel._collection import Collection
from telemetry_otel._config import DEFAULT_LIVE_MIN_INTERVAL_MILLIS, DEFAULT_STALE_AFTER_TTLS

__all__ = ["CachedCollection", "CollectionCycle", "CycleStats", "run_coroutine_on"]

_logger = logging.getLogger("telemetry_otel")
#: Longest :meth:`CollectionCycle.close` waits for the cycle thread.
_CLOSE_JOIN_SECONDS = 1.0
#: Added to the longest cycle when a consumer waits for one (scheduling, the read's hand-over).
_WAIT_SLACK_SECONDS = 1.0


@dataclass(frozen=True)
class CachedCollection:
    """A collection as handed to one consumer, with how it was obtained.

    ``age_seconds`` is the collection's age when it was handed out, measured from the start of its
    cycle. ``cached`` is true when the collection was made before the consumer asked (served from
    the cache), false when its cycle was started or joined for this consumer. ``stale`` is true when
    a refresh has been due for ``stale_after_ttls`` times the asked age and no cycle completed.
    ``limited`` is true for a live request answered with the newest collection because the live floor
    allowed no new cycle yet. ``previous`` is the collection before it (for rates), None after the
    first.
    """

    collection: Collection
    cached: bool
    age_seconds: float
    previous: Collection | None = None
    stale: bool = False
    limited: bool = False
    stale_reason: str | None = None


@dataclass(frozen=True)
class CycleStats:
    """Counts of what the cycle did, since it was made."""

    #: Cycles that completed.
    completed: int
    #: Cycles that failed (the metric read raised or timed out); the newest collection stayed.
    failed: int
    #: Requests answered from a completed collection while a refresh ran in the background.
    served_while_refreshing: int
    #: Live requests answered with the newest collection because of the live floor.
    live_limited: int
    #: Exports that got the newest collection because no fresh one completed within their interval.
    late: int


@dataclass(frozen=True)
class _Entry:
    collection: Collection
    previous: Collection | None
    #: ``clock()`` at the start of the cycle.
    started: float


class CollectionCycle:
    """Runs collection cycles one at a time and hands out the newest one by age.

    ``collect`` makes one collection (the runtime's); it runs on the cycle's own thread and event loop,
    started on first use. All methods are thread-safe and may be called from any thread or event
    loop. ``clock`` is a monotonic clock in seconds (tests pass their own).
    """

    def __init__(
        self,
        collect: Callable[[], Awaitable[Collection]],
        *,
        live_min_interval_millis: float = DEFAULT_LIVE_MIN_INTERVAL_MILLIS,
        stale_after_ttls: float = DEFAULT_STALE_AFTER_TTLS,
        longest_cycle_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not live_min_interval_millis >= 0:
            raise ValueError(
                f"live_min_interval_millis must be zero or more, got {live_min_interval_millis!r}"
            )
        if not stale_after_ttls > 0:
            raise ValueError(f"stale_after_ttls must be positive, got {stale_after_ttls!r}")
        self._collect = collect
        #: The longest a healthy cycle can take (the runtime's service plus collection timeouts): no
        #: consumer waits longer for one, and data is never stale sooner.
        self.longest_cycle_seconds = longest_cycle_seconds
        self.live_min_interval_seconds = live_min_interval_millis / 1000
        self.stale_after_ttls = stale_after_ttls
        self._clock = clock
        self._lock = threading.Lock()
        self._latest: _Entry | None = None
        self._inflight: concurrent.futures.Future[_Entry] | None = None
        #: ``clock()`` since when a refresh has been wanted and no cycle completed (None: none due).
        self._due_since: float | None = None
        self._last_failure: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._closed = False
        self._completed = 0
        self._failed = 0
        self._served_while_refreshing = 0
        self._live_limited = 0
        self._late = 0

    # -- what consumers call -------------------------------------------------------------------

    async def get(self, max_age_seconds: float, *, live: bool = False) -> CachedCollection:
        """A collection no older than ``max_age_seconds`` if one exists, without waiting on a refresh.

        Waits only for the first collection, for ``max_age_seconds == 0`` and for ``live`` (floored),
        at most :attr:`longest_cycle_seconds` (then ``TimeoutError``). Raises what the cycle raised
        when a cycle it waits for fails.
        """
        plan = self._plan(max_age_seconds, live=live)
        if isinstance(plan, CachedCollection):
            return plan
        # Shielded: a client that goes away must not cancel a cycle other consumers share.
        waited = asyncio.shield(asyncio.wrap_future(plan))
        try:
            entry = await asyncio.wait_for(waited, self.longest_cycle_seconds + _WAIT_SLACK_SECONDS)
        except asyncio.CancelledError:
            if plan.cancelled():  # the cycle was cancelled (closed), not this request
                raise RuntimeError("the collection cycle was closed while a cycle ran") from None
            raise
        except TimeoutError:
            raise TimeoutError(
                f"no collection completed within {self.longest_cycle_seconds + _WAIT_SLACK_SECONDS:g} s"
            ) from None
        return self._served(entry, max_age_seconds, cached=False)

    def get_blocking(self, max_age_seconds: float, timeout_seconds: float) -> CachedCollection:
        """From a thread: a collection whose cycle started at most ``max_age_seconds`` ago.

        Waits up to ``timeout_seconds`` for a fresh cycle; when none completes in time (or it fails),
        returns the newest collection and counts the miss as late. Raises when there is none at all.
        """
        plan = self._plan(max_age_seconds, live=False, wait_for_fresh=True)
        if isinstance(plan, CachedCollection):
            return plan
        try:
            entry = plan.result(timeout=timeout_seconds)
        except (concurrent.futures.TimeoutError, Exception) as exc:
            with self._lock:
                latest = self._latest
                if latest is None:
                    raise
                self._late += 1
            why = (
                f"no collection completed within {timeout_seconds:.3f} s"
                if isinstance(exc, concurrent.futures.TimeoutError)
                else f"the collection failed ({type(exc).__name__}: {exc})"
            )
            _logger.warning(
                "%s; the newest, %.1f s old, is used instead", why, self._clock() - latest.started
            )
            return self._served(latest, max_age_seconds, cached=True)
        return self._served(entry, max_age_seconds, cached=False)

    def collect_now(self, timeout_seconds: float) -> Collection:
        """From a thread: a collection from a cycle that starts now (after any cycle in flight).

        For the final export at shutdown. Raises ``TimeoutError`` after ``timeout_seconds``.
        """
        deadline = time.monotonic() + timeout_seconds
        with self._lock:
            inflight = self._inflight
        if inflight is not None and not inflight.done():
            try:
                inflight.result(timeout=max(0.0, deadline - time.monotonic()))
            except concurrent.futures.TimeoutError:
                raise TimeoutError(f"a collection cycle still ran after {timeout_seconds:.3f} s") from None
            except Exception:  # a failed cycle is the cycle's to report; a new one starts below
                pass
        with self._lock:
            future = self._start_locked()
        try:
            return future.result(timeout=max(0.0, deadline - time.monotonic())).collection
        except concurrent.futures.TimeoutError:
            raise TimeoutError(f"the final collection took longer than {timeout_seconds:.3f} s") from None

    @property
    def latest(self) -> Collection | None:
        """The newest completed collection, or None before the first."""
        latest = self._latest
        return None if latest is None else latest.collection

    def status(self, max_age_seconds: float) -> CachedCollection | None:
        """The newest collection as :meth:`get` would serve it, without waiting (None before the first).

        Starts a background refresh when it is older than ``max_age_seconds``, so that staleness is
        noticed by whoever looks (a readiness probe) even when nothing else asks.
        """
        with self._lock:
            latest = self._latest
            due = max(max_age_seconds, self.live_min_interval_seconds)
            if not self._closed and (latest is None or self._clock() - latest.started > due):
                self._start_locked()
        return None if latest is None else self._served(latest, max_age_seconds, cached=True)

    def stats(self) -> CycleStats:
        """What the cycle has done so far."""
        with self._lock:
            return CycleStats(
                completed=self._completed,
                failed=self._failed,
                served_while_refreshing=self._served_while_refreshing,
                live_limited=self._live_limited,
                late=self._late,
            )

    def start(self) -> None:
        """Start the cycle's thread now rather than on first use (a process about to exit may not be
        allowed to start threads any more: the runtime starts it when it has exporters)."""
        with self._lock:
            if not self._closed:
                self._ensure_loop_locked()

    def close(self) -> None:
        """Stop the cycle thread; a cycle in flight is cancelled and whoever waits for it gets a
        ``RuntimeError``; later requests raise ``RuntimeError``."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread, inflight = self._loop, self._thread, self._inflight
        if inflight is not None and not inflight.done():
            # Before the loop cancels the cycle: whoever waits for it hears why, not a cancellation.
            with contextlib.suppress(concurrent.futures.InvalidStateError, RuntimeError):
                inflight.set_exception(RuntimeError("the collection cycle was closed while a cycle ran"))
        if loop is not None and thread is not None and not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(_CLOSE_JOIN_SECONDS)

    # -- planning, under the lock ----------------------------------------------------------------

    def _plan(
        self, max_age_seconds: float, *, live: bool, wait_for_fresh: bool = False
    ) -> CachedCollection | concurrent.futures.Future[_Entry]:
        if not max_age_seconds >= 0:
            raise ValueError(f"max_age_seconds must be zero or more, got {max_age_seconds!r}")
        with self._lock:
            now = self._clock()
            latest = self._latest
            if live:
                if self._inflight is not None and not self._inflight.done():
                    return self._inflight
                if latest is not None and now - latest.started < self.live_min_interval_seconds:
                    self._live_limited += 1
                    return self._served_locked(latest, max_age_seconds, now, cached=True, limited=True)
                return self._start_locked()
            if latest is None:
                return self._start_locked()
            if max_age_seconds > 0 and now - latest.started <= max_age_seconds:
                return self._served_locked(latest, max_age_seconds, now, cached=True)
            future = self._start_locked()
            if max_age_seconds == 0 or wait_for_fresh:
                return future
            self._served_while_refreshing += 1
            return self._served_locked(latest, max_age_seconds, now, cached=True)

    def _served(self, entry: _Entry, max_age_seconds: float, *, cached: bool) -> CachedCollection:
        with self._lock:
            return self._served_locked(entry, max_age_seconds, self._clock(), cached=cached)

    def _served_locked(
        self, entry: _Entry, max_age_seconds: float, now: float, *, cached: bool, limited: bool = False
    ) -> CachedCollection:
        stale_reason = None
        if self._due_since is not None:
            waited = now - self._due_since
            # Never sooner than a healthy cycle can take, whatever the TTL (0 included).
            floor = max(max_age_seconds, self.live_min_interval_seconds, self.longest_cycle_seconds)
            if waited >= self.stale_after_ttls * floor:
                failure = f": {self._last_failure}" if self._last_failure else ""
                stale_reason = f"no collection has completed for {waited:.1f} s{failure}"
        return CachedCollection(
            collection=entry.collection,
            cached=cached,
            age_seconds=max(0.0, now - entry.started),
            previous=entry.previous,
            stale=stale_reason is not None,
            limited=limited,
            stale_reason=stale_reason,
        )

    def _start_locked(self) -> concurrent.futures.Future[_Entry]:
        """The cycle in flight, or a new one started now (called under the lock)."""
        if self._closed:
            raise RuntimeError("the collection cycle is closed (the runtime was shut down)")
        self._forget_parent_locked()
        if self._inflight is not None and not self._inflight.done():
            return self._inflight
        now = self._clock()
        if self._due_since is None:
            self._due_since = now
        loop = self._ensure_loop_locked()
        self._inflight = asyncio.run_coroutine_threadsafe(self._run(now), loop)
        return self._inflight

    def reset_after_fork(self) -> None:
        """In a forked child (called before any other thread runs): nothing of the parent's cycles
        is kept, neither its collections (they hold the parent's counts) nor its thread and lock."""
        self._lock = threading.Lock()
        self._pid, self._loop, self._thread, self._inflight = os.getpid(), None, None, None
        self._latest = None
        self._due_since = None
        self._last_failure = None

    def _forget_parent_locked(self) -> None:
        """In a forked child, the parent's cycle thread and the cycle it ran do not exist."""
        if self._pid != os.getpid():
            self._pid, self._loop, self._thread, self._inflight = os.getpid(), None, None, None

    def _ensure_loop_locked(self) -> asyncio.AbstractEventLoop:
        self._forget_parent_locked()
        if self._loop is None:
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                try:
                    loop.run_forever()
                finally:
                    tasks = asyncio.all_tasks(loop)
                    for task in tasks:
                        task.cancel()
                    if tasks:  # let cancelled cycles unwind (bounded: a stuck read is a daemon thread)
                        loop.run_until_complete(asyncio.wait(tasks, timeout=_CLOSE_JOIN_SECONDS / 2))
                    loop.close()

            self._thread = threading.Thread(target=run, name="telemetry-cycle", daemon=True)
            self._thread.start()
            ready.wait()
            self._loop = loop
        return self._loop

    async def _run(self, started: float) -> _Entry:
        try:
            collection = await self._collect()
        except BaseException as exc:
            with self._lock:
                self._failed += 1
                self._last_failure = f"{type(exc).__name__}: {exc}"
            raise
        with self._lock:
            previous = None if self._latest is None else self._latest.collection
            entry = _Entry(collection, previous, started)
            self._latest = entry
            self._due_since = None
            self._last_failure = None
            self._completed += 1
        return entry


def run_coroutine_on(
    loop: asyncio.AbstractEventLoop,
) -> Callable[[Coroutine[Any, Any, Any]], asyncio.Future[Any]]:
    """A runner that runs a coroutine on ``loop`` and returns a future of the running loop.

    Raises ``RuntimeError`` when ``loop`` is closed (the coroutine is then not started).
    """

    def run(coroutine: Coroutine[Any, Any, Any]) -> asyncio.Future[Any]:
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, loop))

    return run
