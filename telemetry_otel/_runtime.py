"""The shared, process-wide telemetry runtime: one MeterProvider, one reader, one collection path."""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Sequence

from opentelemetry.metrics import Meter, NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import Metric, MetricsData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from telemetry_otel._collection import Collection, CoroutineRunner, collect_snapshots, freeze_components
from telemetry_otel._collector_metrics import CollectorMetrics
from telemetry_otel._components import ComponentRegistry
from telemetry_otel._config import TelemetryConfig
from telemetry_otel._cycle import CollectionCycle, run_coroutine_on
from telemetry_otel._exemplars import read_view
from telemetry_otel._index import OwnerIndex
from telemetry_otel._pool import DaemonThreadPool
from telemetry_otel._reader import MetricAggregator, MetricProducer, PullReader, merge_produced
from telemetry_otel._scrape_server import ScrapeServer
from telemetry_otel._snapshot_log import SnapshotLog
from telemetry_otel.exporters import ExportDemand, ExportPipeline, PushExporter
from telemetry_otel.vocabulary import SERVICE_INSTANCE_ID, SERVICE_NAME

__all__ = ["SNAPSHOT_THREADS", "THREAD_JOIN_SECONDS", "Telemetry", "process_instance_id"]

_logger = logging.getLogger("telemetry_otel")
#: Threads for synchronous snapshot functions: enough for every service of a large runtime at once.
SNAPSHOT_THREADS = 32
#: Longest ``shutdown()`` waits for the runtime's pool threads to finish (idle ones end at once).
THREAD_JOIN_SECONDS = 1.0
_IDLE_JOIN_SECONDS = 0.1


class Telemetry:
    """Handle on the shared telemetry runtime returned by :func:`setup_telemetry`.

    It owns the SDK ``MeterProvider`` (or a no-op provider when the SDK is disabled), the single
    pull reader, the registry of instrumented components and the metric producers.
    """

    def __init__(self, config: TelemetryConfig, exporters: Sequence[PushExporter] = ()) -> None:
        self.config = config
        attributes = {
            SERVICE_INSTANCE_ID: process_instance_id(),
            **config.resource_attributes,
            SERVICE_NAME: config.service_name,
        }
        self.resource = Resource.create(attributes)
        self.components = ComponentRegistry()
        self._producers: list[MetricProducer] = []
        self._aggregators: list[MetricAggregator] = []
        #: How collection cycles went, as metrics (``telemetry.collection.*``).
        self.collector_metrics = CollectorMetrics()
        #: Warnings about failed snapshots and dropped values, rate-limited per service and subject.
        self._snapshot_log = SnapshotLog()
        self._producers.append(self.collector_metrics)
        self._producers_lock = threading.Lock()
        self._collect_lock = threading.Lock()
        # Synchronous snapshots run here, all services at once; the SDK read has its own thread so
        # it never queues behind a snapshot that is stuck.
        self._executor = DaemonThreadPool(SNAPSHOT_THREADS, "telemetry-snapshot")
        self._read_executor = DaemonThreadPool(1, "telemetry-read")
        self._shut_down = False
        self._lifecycle_lock = threading.RLock()
        #: Called with this runtime when it is shut down (the process-wide set-up forgets it).
        self._release_hooks: list[Callable[[Telemetry], None]] = []
        self._reader: PullReader | None
        self.meter_provider: MeterProvider | NoOpMeterProvider
        if config.disabled:
            self._reader = None
            self.meter_provider = NoOpMeterProvider()
        else:
            self._reader = PullReader(cardinality_limit=config.cardinality_limit)
            self.meter_provider = MeterProvider(
                resource=self.resource, metric_readers=[self._reader], views=[read_view()]
            )
        #: The one owner of collection cycles: every consumer asks it for a collection no older than X.
        self.cycle = CollectionCycle(
            self._collect_for_cycle,
            live_min_interval_millis=config.live_min_interval_millis,
            stale_after_ttls=config.stale_after_ttls,
            longest_cycle_seconds=(config.service_timeout_millis + config.collection_timeout_millis) / 1000,
        )
        self._host_loop: asyncio.AbstractEventLoop | None = None
        self._prometheus: ScrapeServer | None = None
        #: The periodic push of every exporter (idle without exporters or with the SDK disabled).
        self.exports = ExportPipeline(
            self.export_source,
            [] if self.disabled else exporters,
            interval_millis=config.export_interval_millis,
            timeout_millis=config.export_timeout_millis,
        )
        self.exports.start()
        if self.exports.exporters:
            # A plain script that never calls shutdown() still gets its final export at exit,
            # from the cycle's thread, started now while threads may still be started.
            self.cycle.start()
            self._read_executor.prestart(1)
            self._executor.prestart(1)
            atexit.register(_shutdown_at_exit, weakref.ref(self))

    @property
    def disabled(self) -> bool:
        """True when ``OTEL_SDK_DISABLED`` (or ``disabled=True``) turned every instrument into a no-op."""
        return self._reader is None

    def get_meter(self, name: str, version: str | None = None, schema_url: str | None = None) -> Meter:
        """A meter of the shared provider."""
        return self.meter_provider.get_meter(name, version, schema_url)

    def add_producer(self, producer: MetricProducer) -> None:
        """Merge ``producer``'s metrics into every collection from now on."""
        with self._producers_lock:
            self._producers.append(producer)

    def remove_producer(self, producer: MetricProducer) -> None:
        """Stop merging ``producer``'s metrics (unknown producers are ignored)."""
        with self._producers_lock:
            if producer in self._producers:
                self._producers.remove(producer)

    def add_aggregator(self, aggregator: MetricAggregator) -> None:
        """Add ``aggregator``'s derived metrics to every full read from now on."""
        with self._producers_lock:
            self._aggregators.append(aggregator)

    def remove_aggregator(self, aggregator: MetricAggregator) -> None:
        """Stop deriving ``aggregator``'s metrics (unknown aggregators are ignored)."""
        with self._producers_lock:
            if aggregator in self._aggregators:
                self._aggregators.remove(aggregator)

    def read_metrics(self, timeout_millis: float | None = None, *, aggregates: bool = True) -> MetricsData:
        """Read the current cumulative metrics without refreshing snapshots.

        The data holds what the SDK recorded plus every producer's metrics and, with
        ``aggregates``, every aggregator's metrics derived from those.
        """
        if self._reader is None:
            return MetricsData(resource_metrics=[])
        timeout = self.config.collection_timeout_millis if timeout_millis is None else timeout_millis
        data = self._reader.read(timeout_millis=timeout)
        now = time.time_ns()
        with self._producers_lock:
            producers = list(self._producers)
            aggregators = list(self._aggregators) if aggregates else []
        produced: dict[InstrumentationScope, list[Metric]] = {}
        for producer in producers:
            produced.setdefault(producer.scope, []).extend(producer.produce(now))
        limit = self.config.cardinality_limit
        merged = merge_produced(data, self.resource, list(produced.items()), limit)
        if not aggregators:
            return merged
        derived: dict[InstrumentationScope, list[Metric]] = {}
        index = OwnerIndex.of(merged)  # once for every aggregator: each reads only its owners
        for aggregator in aggregators:
            derived.setdefault(aggregator.scope, []).extend(aggregator.aggregate(merged, index))
        return merge_produced(merged, self.resource, list(derived.items()), limit)

    def serve_prometheus(self, host: str, port: int) -> tuple[str, int] | None:
        """Serve ``/metrics`` (Prometheus text or OpenMetrics, gzip) on ``host:port`` until
        :meth:`shutdown`, on a daemon thread; each scrape gets a collection from :attr:`cycle` started
        at most ``live_min_interval_millis`` before it. Returns the address bound (port 0: any free
        one), or None when it cannot listen there: logged as a warning, the process runs on."""
        with self._lifecycle_lock:
            if self._shut_down:
                raise RuntimeError("the telemetry runtime is shut down")
            if self._prometheus is None:
                self._prometheus = ScrapeServer.start(self._scrape_source, host, port)
            return None if self._prometheus is None else self._prometheus.address

    def _close_prometheus(self) -> None:
        """Stop serving ``/metrics`` and release its port (nothing to do when not serving)."""
        with self._lifecycle_lock:
            server, self._prometheus = self._prometheus, None
        if server is not None:
            server.close()

    def _scrape_source(self) -> MetricsData:
        """A scrape's collection: one started at most the live floor before it (concurrent scrapes
        share a cycle), waiting at most a cycle's own bounds for it."""
        bound = (self.config.service_timeout_millis + self.config.collection_timeout_millis) / 1000
        return self.cycle.get_blocking(self.cycle.live_min_interval_seconds, bound).collection.metrics

    @property
    def prometheus_address(self) -> tuple[str, int] | None:
        """Where :meth:`serve_prometheus` serves ``/metrics`` (host, port), or None."""
        server = self._prometheus
        return None if server is None else server.address

    def use_event_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Run async snapshot functions on ``loop`` (a server's, where their resources live); None:
        on the collection cycle's own loop. A server binds its loop at start-up and unbinds it before
        shutting the runtime down."""
        self._host_loop = loop

    async def _collect_for_cycle(self) -> Collection:
        host = self._host_loop
        runner: CoroutineRunner | None = None
        if host is not None and host.is_running() and not host.is_closed():
            runner = run_coroutine_on(host)
        return await self.collect(run_coroutine=runner)

    def export_source(self, demand: ExportDemand) -> MetricsData:
        """The metric data an :class:`ExportPipeline` asks for, from :attr:`cycle`: a collection no
        older than the demand's age (the newest, counted late, when none completes in time), or for
        the final export one that starts now."""
        if demand.final:
            return self.cycle.collect_now(demand.timeout_seconds).metrics
        return self.cycle.get_blocking(demand.max_age_seconds, demand.timeout_seconds).collection.metrics

    async def collect(self, *, run_coroutine: CoroutineRunner | None = None) -> Collection:
        """Run one collection cycle: every snapshot in parallel, bounded per component, then one read.

        Concurrent callers are serialised, so snapshot functions never run twice at once. Consumers
        normally ask :attr:`cycle` for a collection instead, which caches and shares cycles. Async
        snapshot functions run on the running loop, or through ``run_coroutine``.
        """
        loop = asyncio.get_running_loop()
        # One cycle at a time across every thread and event loop (the server's, the exporters').
        while not self._collect_lock.acquire(blocking=False):
            await asyncio.sleep(0.002)
        try:
            started = time.perf_counter()
            start_unix_nano = time.time_ns()
            outcomes = await collect_snapshots(
                self.components.registered(),
                timeout_seconds=self.config.service_timeout_millis / 1000,
                executor=self._executor,
                run_coroutine=run_coroutine,
            )
            self.collector_metrics.record(outcomes, time.perf_counter() - started)
            self._snapshot_log.report(outcomes)
            # The layout and reported health as of the read, so the collection is one moment whole.
            buses = self.components.buses()
            records = freeze_components(self.components.registered(), buses)
            read = loop.run_in_executor(self._read_executor, self.read_metrics)
            bound = self.config.collection_timeout_millis
            try:
                metrics = await asyncio.wait_for(read, bound / 1000)
            except TimeoutError:
                raise TimeoutError(
                    f"reading the metrics took longer than collection_timeout_millis ({bound:g} ms)"
                ) from None
            return Collection(
                metrics=metrics,
                outcomes=outcomes,
                time_unix_nano=time.time_ns(),
                duration_seconds=time.perf_counter() - started,
                sdk_disabled=self.disabled,
                components=records,
                buses=buses,
                start_unix_nano=start_unix_nano,
            )
        finally:
            self._collect_lock.release()

    def shutdown(self, timeout_millis: float = 30_000) -> None:
        """Shut the provider down and release the runtime; a second call does nothing.

        Order: the ``/metrics`` server (:meth:`serve_prometheus`), the final export and flush
        (bounded by ``timeout_millis``), the provider, then the pool threads, waited for at most
        ``THREAD_JOIN_SECONDS`` (or what is left of ``timeout_millis``, if less, but at least
        0.1 s). Idle threads end at once; a thread still inside a stuck snapshot function is a
        daemon thread that ends when the function returns, and never keeps the process from exiting.
        """
        self._release(timeout_millis)

    def _release(self, timeout_millis: float = 30_000, *, export: bool = True) -> None:
        """:meth:`shutdown`; without ``export``, the exporters are stopped without a final export."""
        started = time.monotonic()
        with self._lifecycle_lock:
            if self._shut_down:
                return
            self._shut_down = True
        for hook in self._release_hooks:  # the process-wide state forgets this runtime
            hook(self)
        self._close_prometheus()  # first: no scrape starts a cycle from now on
        self._host_loop = None  # the final collection runs on the cycle's own loop
        # The final export and flush, before anything closes.
        self.exports.shutdown(timeout_millis, final=export)
        self.cycle.close()
        if isinstance(self.meter_provider, MeterProvider):
            self.meter_provider.shutdown(timeout_millis=timeout_millis)
        # Idle threads end within microseconds of their stop signal: give them that much even when
        # the final export used up ``timeout_millis``.
        left = timeout_millis / 1000 - (time.monotonic() - started)
        deadline = time.monotonic() + min(THREAD_JOIN_SECONDS, max(left, _IDLE_JOIN_SECONDS))
        pools = (self._executor, self._read_executor)
        for pool in pools:  # signal every worker first, then wait for all of them together
            pool.shutdown(wait=False, cancel_futures=True)
        for pool in pools:
            pool.shutdown(join_seconds=max(0.0, deadline - time.monotonic()))
        stuck = [
            thread.name
            for thread in self._executor.threads + self._read_executor.threads
            if thread.is_alive()
        ]
        if stuck:
            _logger.warning(
                "telemetry shut down with %d thread(s) still inside a snapshot or read call (%s); "
                "they are daemon threads and end when the call returns",
                len(stuck),
                ", ".join(stuck),
            )


def _shutdown_at_exit(reference: weakref.ref[Telemetry]) -> None:
    telemetry = reference()
    if telemetry is not None:
        telemetry.shutdown(telemetry.config.export_timeout_millis)


_instance_id: tuple[int, str] | None = None


def process_instance_id() -> str:
    """This process's ``service.instance.id``: a random UUID, new in every process (a forked child
    gets its own). ``OTEL_RESOURCE_ATTRIBUTES`` may set another for the runtime's resource."""
    global _instance_id
    pid = os.getpid()
    if _instance_id is None or _instance_id[0] != pid:
        _instance_id = (pid, str(uuid.uuid4()))
    return _instance_id[1]
