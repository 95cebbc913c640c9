"""The shared, process-wide telemetry runtime: one MeterProvider, one reader, one collection path."""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Sequence

from opentelemetry.metrics import Meter, NoOpMeterProvider
from opentelemetry.sdk.metrics import (
    AlwaysOffExemplarFilter,
    AlwaysOnExemplarFilter,
    ExemplarFilter,
    MeterProvider,
    TraceBasedExemplarFilter,
)
from opentelemetry.sdk.metrics.export import Metric, MetricsData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from telemetry_otel._collection import Collection, CoroutineRunner, collect_snapshots, freeze_components
from telemetry_otel._collector_metrics import CollectorMetrics
from telemetry_otel._components import ComponentRegistry
from telemetry_otel._config import TelemetryConfig
from telemetry_otel._cycle import CachedCollection, CollectionCycle, run_coroutine_on
from telemetry_otel._exemplars import read_view
from telemetry_otel._export_hooks import ExportSeries, ExportSeriesHooks, build_pipeline
from telemetry_otel._fork import (
    process_instance_id,
    register_fork_handlers,
    renew_instance_id,
    reset_after_fork,
    zero_sdk_counts,
)
from telemetry_otel._index import IndexMemo, OwnerIndex
from telemetry_otel._pool import DaemonThreadPool
from telemetry_otel._process import ProcessMetrics
from telemetry_otel._reader import (
    MetricAggregator,
    MetricProducer,
    PullReader,
    append_only_metrics,
    merge_produced,
)
from telemetry_otel._scrape_server import ScrapeServer
from telemetry_otel._snapshot_log import SnapshotLog
from telemetry_otel.exporters import ExportDemand, PushExporter
from telemetry_otel.exporters._metrics import ExportMetrics
from telemetry_otel.host._cycle import HostCycle
from telemetry_otel.host._link import HostLink, parse_endpoint
from telemetry_otel.vocabulary import SERVICE_INSTANCE_ID, SERVICE_NAME

__all__ = ["SNAPSHOT_THREADS", "THREAD_JOIN_SECONDS", "ExportSeries", "Telemetry", "process_instance_id"]

_logger = logging.getLogger("telemetry_otel")
#: Threads for synchronous snapshot functions: enough for every service of a large runtime at once.
SNAPSHOT_THREADS = 32
#: Longest ``shutdown()`` waits for the runtime's pool threads to finish (idle ones end at once).
THREAD_JOIN_SECONDS = 1.0
_IDLE_JOIN_SECONDS = 0.1
_EXEMPLAR_FILTERS: dict[str, type[ExemplarFilter]] = {
    "trace_based": TraceBasedExemplarFilter,
    "always_on": AlwaysOnExemplarFilter,
    "always_off": AlwaysOffExemplarFilter,
}
#: Of the shutdown bound, what the provider and the threads keep after the final export.
_AFTER_EXPORT_SECONDS = 0.5


class Telemetry:
    """Handle on the shared telemetry runtime returned by :func:`setup_telemetry`.

    It owns the SDK ``MeterProvider`` (or a no-op provider when the SDK is disabled), the single
    pull reader, the registry of instrumented components and the metric producers.
    """

    def __init__(self, config: TelemetryConfig, exporters: Sequence[PushExporter] = ()) -> None:
        self.config = config
        #: A worker of a multi-process host reports to its aggregator and answers for the host.
        hosted = config.host_endpoint is not None and not config.disabled
        attributes = {
            SERVICE_INSTANCE_ID: process_instance_id(),
            **config.resource_attributes,
            SERVICE_NAME: config.service_name,
        }
        # A host worker has an id of its own (one per runtime), whatever the environment says.
        self._own_instance_id = hosted or SERVICE_INSTANCE_ID not in config.resource_attributes
        attributes[SERVICE_INSTANCE_ID] = str(uuid.uuid4()) if hosted else attributes[SERVICE_INSTANCE_ID]
        self._exporter_objects = list(exporters)
        self.resource = Resource.create(attributes)
        self.components = ComponentRegistry()
        self._producers: list[MetricProducer] = []
        self._aggregators: list[MetricAggregator] = []
        self._index_memo = IndexMemo()  # what earlier reads found unowned (see OwnerIndex.of)
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
                resource=self.resource,
                metric_readers=[self._reader],
                exemplar_filter=_EXEMPLAR_FILTERS[config.exemplar_filter](),
                views=[read_view()],
            )
        longest = (config.service_timeout_millis + config.collection_timeout_millis) / 1000
        #: This process's own collection cycles (a worker's reports are made from them).
        self.local_cycle = CollectionCycle(
            self._collect_for_cycle,
            live_min_interval_millis=config.live_min_interval_millis,
            stale_after_ttls=config.stale_after_ttls,
            longest_cycle_seconds=longest,
        )
        #: The one owner of collection cycles: every consumer asks it for a collection no older than X.
        #: In a worker of a multi-process host, the host picture (:class:`HostCycle`).
        self.cycle: CollectionCycle = self.local_cycle
        self._host: HostLink | None = None
        if hosted:
            assert config.host_endpoint is not None
            self._host = HostLink(
                parse_endpoint(config.host_endpoint),
                collect_local=self.local_cycle.collect_now,
                resource=lambda: self.resource,
                interval_seconds=config.report_interval_millis / 1000,
                timeout_seconds=longest + 1.0,
            )
            self.cycle = HostCycle(
                self._host,
                longest_cycle_seconds=longest,
                live_min_interval_millis=config.live_min_interval_millis,
            )
            if exporters:  # export once per host: the aggregator runs OTEL_METRICS_EXPORTER's exporters
                _logger.warning(
                    "a host worker does not push: %d exporter(s) given here do not run", len(exporters)
                )
            exporters = ()
        self._host_loop: asyncio.AbstractEventLoop | None = None
        self._prometheus: ScrapeServer | None = None
        self._process_metrics: ProcessMetrics | None = None
        if config.process_metrics:
            self.enable_process_metrics()
        #: The newest collection served by the scrape server, with its metrics labelled by agent.
        #: Series derived from a collection for push exporters (the views' status, health score and
        #: alerts), registered with :meth:`set_export_series` (the core never imports the views).
        self._export_hooks = ExportSeriesHooks(lambda: self.resource)
        #: The periodic push of every exporter (idle without exporters or with the SDK disabled).
        self.exports = build_pipeline(
            config, self.export_source, [] if self.disabled else exporters, self._export_hooks.derive
        )
        self._start_exports()
        if self.exports.exporters:
            # A plain script that never calls shutdown() still gets its final export at exit,
            # from the cycle's thread, started now while threads may still be started.
            self.cycle.start()
            self._read_executor.prestart(1)
            self._executor.prestart(1)
            atexit.register(_shutdown_at_exit, weakref.ref(self))
        if self._host is not None:
            self._host.start()
            # A worker that exits gracefully sends its final counts, even without shutdown().
            atexit.register(_shutdown_at_exit, weakref.ref(self))
        register_fork_handlers(weakref.ref(self))

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

    def enable_process_metrics(self) -> bool:
        """Produce the process and CPython runtime metrics from the next collection on.

        ``process.cpu.time``, ``process.memory.usage``, ``process.memory.virtual``,
        ``process.thread.count``, ``process.open_file_descriptor.count``, ``process.context_switches``
        and ``cpython.gc.*``, read once per collection. Returns True when this call enabled them,
        False when they already were or the SDK is disabled.
        """
        with self._producers_lock:
            if self._process_metrics is not None or self.disabled:
                return False
            self._process_metrics = ProcessMetrics()
            self._producers.append(self._process_metrics)
            return True

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
        # Once for every aggregator (each reads only its owners), skipping what earlier reads found unowned.
        append_only = append_only_metrics(self.meter_provider, self._reader)
        index = OwnerIndex.of(merged, self._index_memo, append_only)
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
        served = self.cycle.get_blocking(self.cycle.live_min_interval_seconds, bound)
        return served.collection.metrics  # the encoder labels every sample with its agent

    def report_to_host(self) -> bool:
        """A worker of a multi-process host: send its counts to the host aggregator now (a final
        report before the process stops: a server that ends by re-raising SIGTERM skips ``atexit``).
        False when the report failed (logged) or the process is no worker."""
        return self._host is not None and self._host.report_now()

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
            collection = self.cycle.collect_now(demand.timeout_seconds)
            served = CachedCollection(collection, cached=False, age_seconds=0.0)
        else:
            served = self.cycle.get_blocking(demand.max_age_seconds, demand.timeout_seconds)
        self._export_hooks.remember(served)
        return served.collection.metrics

    def set_export_series(self, key: str, series: ExportSeries | None) -> None:
        """Push ``series(collection)`` with every collection to the exporters that take derived
        series (Graphite, InfluxDB), under ``key`` (a second call with the key replaces it; None
        removes it): how the views add their status, health score and alerts."""
        self._export_hooks.set(key, series)

    def _start_exports(self) -> None:
        """Start :attr:`exports`, with its ``telemetry.export.*`` series when it has exporters."""
        with self._producers_lock:
            self._producers = [p for p in self._producers if not isinstance(p, ExportMetrics)]
            if self.exports.exporters:
                #: ``telemetry.export.*``: how every exporter delivers, in every collection.
                self._producers.append(ExportMetrics(self.exports.stats, time.time_ns()))
        self.exports.start()

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
            self.collector_metrics.record_components(records, buses)
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

    def shutdown(self, timeout_millis: float | None = None) -> None:
        """Shut the provider down and release the runtime within ``timeout_millis`` (default: the
        configured ``shutdown_timeout_millis``, 10 s); a second call does nothing.

        Order: the ``/metrics`` server (:meth:`serve_prometheus`), the final export to every exporter
        and their flush (all within the bound less 0.5 s), the provider, then the pool threads,
        waited for at most ``THREAD_JOIN_SECONDS`` (or what is left of ``timeout_millis``, if
        less, but at least 0.1 s). Idle threads end at once; a thread still inside a stuck snapshot
        function is a daemon thread that ends when the function returns, and never keeps the process
        from exiting.
        """
        self._release(timeout_millis)

    def _release(self, timeout_millis: float | None = None, *, export: bool = True) -> None:
        """:meth:`shutdown`; without ``export``, the exporters are stopped without a final export."""
        started = time.monotonic()
        if timeout_millis is None:
            timeout_millis = self.config.shutdown_timeout_millis
        with self._lifecycle_lock:
            if self._shut_down:
                return
            self._shut_down = True
        for hook in self._release_hooks:  # the process-wide state forgets this runtime
            hook(self)
        self._close_prometheus()  # first: no scrape starts a cycle from now on
        self._host_loop = None  # the final collection runs on the cycle's own loop
        if self._host is not None:  # a worker's final counts go to the host before anything closes
            self._host.close(final_report=export)
        # The final export and flush, before anything closes.
        export_bound = max(timeout_millis / 2, timeout_millis - _AFTER_EXPORT_SECONDS * 1000)
        self.exports.shutdown(export_bound, final=export)
        self.cycle.close()
        self.local_cycle.close()
        if isinstance(self.meter_provider, MeterProvider):
            left_millis = timeout_millis - (time.monotonic() - started) * 1000
            self.meter_provider.shutdown(timeout_millis=max(100.0, left_millis))
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

    # -- fork safety ---------------------------------------------------------------------------------

    def _before_fork(self) -> None:  # the reporter stops while the process forks
        if self._host is not None:
            self._host.stop()

    def _after_fork_in_parent(self) -> None:
        if self._host is not None and not self._shut_down:
            self._host.start()

    def _after_fork_in_child(self) -> None:
        """A forked child is a new instance counting from zero, with threads and locks of its own
        (see ``_fork.py``); threads start afresh when next needed."""
        self._producers_lock = threading.Lock()
        self._collect_lock = threading.Lock()
        self._lifecycle_lock = threading.RLock()
        self._host_loop = None
        self._snapshot_log = SnapshotLog()
        self._index_memo = IndexMemo()  # the emptied storage may be refilled in any order
        self.components.reset_after_fork()
        if self._shut_down:
            return
        provider = self.meter_provider if isinstance(self.meter_provider, MeterProvider) else None
        if self._own_instance_id:
            instance = str(uuid.uuid4()) if self._host is not None else process_instance_id()
            self.resource = self.resource.merge(Resource({SERVICE_INSTANCE_ID: instance}))
            if provider is not None:
                renew_instance_id(provider, instance)
        if provider is not None:
            zero_sdk_counts(provider)
        reset_after_fork([*self._producers, *self._aggregators])
        self.local_cycle.reset_after_fork()
        if self.cycle is not self.local_cycle:
            self.cycle.reset_after_fork()
        self._executor.reset_after_fork()
        self._read_executor.reset_after_fork()
        server, self._prometheus = self._prometheus, None
        if server is not None:
            server.abandon()
        self._export_hooks.reset_after_fork()
        if self.exports.exporters:
            # Connections and locks of its own; the spool stays the parent's (docs/exporters.md).
            reset_after_fork(self._exporter_objects)
            exporters, derive = self._exporter_objects, self._export_hooks.derive
            self.exports = build_pipeline(self.config, self.export_source, exporters, derive, spool=False)
            self._start_exports()
        if self._host is not None:
            self._host.after_fork_in_child()


def _shutdown_at_exit(reference: weakref.ref[Telemetry]) -> None:
    telemetry = reference()
    if telemetry is not None:
        telemetry.shutdown()
