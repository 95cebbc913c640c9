"""The shared, process-wide telemetry runtime: one MeterProvider, one reader, one collection path."""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import queue
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from opentelemetry import metrics as otel_metrics
from opentelemetry.metrics import Meter, NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import Metric, MetricsData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from telemetry_otel._collection import Collection, CoroutineRunner, collect_snapshots, freeze_components
from telemetry_otel._collector_metrics import CollectorMetrics
from telemetry_otel._components import ComponentRegistry
from telemetry_otel._config import ConfigurationError, TelemetryConfig
from telemetry_otel._cycle import CollectionCycle, run_coroutine_on
from telemetry_otel._deferred import DeferredMeter, EarlyMeasurements, replay
from telemetry_otel._reader import MetricAggregator, MetricProducer, PullReader, merge_produced
from telemetry_otel._scrape_server import ScrapeServer, prometheus_address
from telemetry_otel._snapshot_log import SnapshotLog
from telemetry_otel._version import __version__
from telemetry_otel.exporters import ExportDemand, ExportPipeline, PushExporter, exporters_from_env
from telemetry_otel.exporters._env import metrics_exporter_names

__all__ = ["Telemetry", "current_telemetry", "get_meter", "setup_telemetry", "shutdown_telemetry"]

_logger = logging.getLogger("telemetry_otel")
#: Threads for synchronous snapshot functions: enough for every service of a large runtime at once.
SNAPSHOT_THREADS = 32
#: Longest ``shutdown()`` waits for the runtime's pool threads to finish (idle ones end at once).
THREAD_JOIN_SECONDS = 1.0
_IDLE_JOIN_SECONDS = 0.1

#: Resource attribute that identifies one process of a runtime (OTel resource semantic conventions).
SERVICE_INSTANCE_ID = "service.instance.id"

_P = ParamSpec("_P")
_T = TypeVar("_T")
_WorkItem = tuple[Future[Any], Callable[[], Any]]


class DaemonThreadPool(ThreadPoolExecutor):
    """A ``ThreadPoolExecutor`` whose workers are daemon threads, joined within a bound at shutdown.

    The standard pool joins its workers at interpreter exit, so one snapshot function stuck for
    ever would keep the whole process from exiting. Here a worker stuck in a call is a daemon thread:
    :meth:`shutdown` waits for it at most ``join_seconds`` and leaves it to finish on its own.
    Workers start on demand up to ``max_workers`` and are reused when idle, like the standard pool's.
    """

    def __init__(self, max_workers: int, thread_name_prefix: str) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
        self._limit = max_workers
        self._prefix = thread_name_prefix
        self._items: queue.SimpleQueue[_WorkItem | None] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._pool_lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self._closed = False

    @property
    def threads(self) -> list[threading.Thread]:
        """The worker threads started so far (alive or not)."""
        with self._pool_lock:
            return list(self._workers)

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        """Run ``fn(*args, **kwargs)`` on a worker; RuntimeError after :meth:`shutdown`."""
        future: Future[_T] = Future()
        with self._pool_lock:
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._items.put((future, lambda: fn(*args, **kwargs)))
            if not self._idle.acquire(blocking=False) and len(self._workers) < self._limit:
                worker = threading.Thread(
                    target=self._work, name=f"{self._prefix}_{len(self._workers)}", daemon=True
                )
                self._workers.append(worker)
                worker.start()
        return future

    def shutdown(
        self, wait: bool = True, *, cancel_futures: bool = False, join_seconds: float | None = None
    ) -> None:
        """Stop the workers once their current call returns; a second call does nothing more.

        ``cancel_futures`` cancels the calls not started yet. With ``wait``, waits for the workers
        at most ``join_seconds`` in all (None: until they end).
        """
        with self._pool_lock:
            first = not self._closed
            self._closed = True
            workers = list(self._workers)
        if first:
            if cancel_futures:
                while True:
                    try:
                        item = self._items.get_nowait()
                    except queue.Empty:
                        break
                    if item is not None:
                        item[0].cancel()
            for _ in workers:
                self._items.put(None)
        if not wait:
            return
        deadline = None if join_seconds is None else time.monotonic() + join_seconds
        for worker in workers:
            worker.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def _work(self) -> None:
        while True:
            item = self._items.get()
            if item is None:
                return
            future, call = item
            del item
            if not future.set_running_or_notify_cancel():
                self._idle.release()
                continue
            try:
                result = call()
            except BaseException as exc:  # handed to the caller through the future
                # Idle before the caller hears of it: its next submit reuses this thread.
                self._idle.release()
                future.set_exception(exc)
            else:
                self._idle.release()
                future.set_result(result)
                del result
            del future, call


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
            "service.name": config.service_name,
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
        self._reader: PullReader | None
        self.meter_provider: MeterProvider | NoOpMeterProvider
        if config.disabled:
            self._reader = None
            self.meter_provider = NoOpMeterProvider()
        else:
            self._reader = PullReader(cardinality_limit=config.cardinality_limit)
            self.meter_provider = MeterProvider(resource=self.resource, metric_readers=[self._reader])
        #: The one owner of collection cycles: every consumer asks it for a collection no older than X.
        self.cycle = CollectionCycle(
            self._collect_for_cycle,
            live_min_interval_millis=config.live_min_interval_millis,
            stale_after_ttls=config.stale_after_ttls,
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
        for aggregator in aggregators:
            derived.setdefault(aggregator.scope, []).extend(aggregator.aggregate(merged))
        return merge_produced(merged, self.resource, list(derived.items()), limit)

    def serve_prometheus(self, host: str, port: int) -> tuple[str, int] | None:
        """Serve ``/metrics`` (Prometheus text or OpenMetrics, gzip) on ``host:port`` until
        :meth:`shutdown`, on a daemon thread; each scrape gets a collection from :attr:`cycle` started
        at most ``live_min_interval_millis`` before it. Returns the address bound (port 0: any free
        one), or None when it cannot listen there: logged as a warning, the process runs on."""
        with _state_lock:
            if self._shut_down:
                raise RuntimeError("the telemetry runtime is shut down")
            if self._prometheus is None:
                self._prometheus = ScrapeServer.start(self._scrape_source, host, port)
            return None if self._prometheus is None else self._prometheus.address

    def _close_prometheus(self) -> None:
        """Stop serving ``/metrics`` and release its port (nothing to do when not serving)."""
        with _state_lock:
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
                self.components.snapshot(),
                timeout_seconds=self.config.service_timeout_millis / 1000,
                executor=self._executor,
                run_coroutine=run_coroutine,
            )
            self.collector_metrics.record(outcomes, time.perf_counter() - started)
            self._snapshot_log.report(outcomes)
            # The layout and reported health as of the read, so the collection is one moment whole.
            buses = self.components.buses()
            records = freeze_components(self.components.snapshot(), buses)
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
        with _state_lock:
            if self._shut_down:
                return
            self._shut_down = True
        _forget(self)
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


_state_lock = threading.RLock()
_current: Telemetry | None = None
#: True while ``_current`` is provisional: set up from the environment alone by a measurement made
#: through a meter taken before any set-up. An explicit ``setup_telemetry(...)`` replaces it.
_current_provisional = False
_global_provider_set = False
#: Meters handed out while no runtime, or only a provisional one, was set up: bound to the runtime
#: that is set up, and bound again to the one that replaces a provisional runtime.
_deferred_meters: list[DeferredMeter] = []
_early = EarlyMeasurements()


def setup_telemetry(
    *,
    service_name: str | None = None,
    resource_attributes: Mapping[str, str] | None = None,
    disabled: bool | None = None,
    collection_timeout_millis: float | None = None,
    service_timeout_millis: float | None = None,
    exporters: Sequence[PushExporter] | None = None,
    export_interval_millis: float | None = None,
    export_timeout_millis: float | None = None,
    cardinality_limit: int | None = None,
    attribute_value_length_limit: int | None = None,
    live_min_interval_millis: float | None = None,
    stale_after_ttls: float | None = None,
    prometheus_server: bool | None = None,
    set_global: bool = True,
) -> Telemetry:
    """Configure the shared telemetry runtime once and return its handle.

    Explicit arguments beat the ``OTEL_*`` environment variables, which beat defaults. Calling it
    again with a configuration that resolves the same returns the same handle; a different one is
    a :class:`ConfigurationError` until the handle is shut down. The one exception is the runtime a
    measurement made before any set-up put in place from the environment alone (a module-level
    ``get_meter(...).add(...)``): this call replaces it, and the measurements made through such
    meters are replayed into the new runtime. With ``set_global`` the provider also becomes the
    OpenTelemetry API's global provider, when no other has been set.

    ``exporters`` are the push exporters of the first setup; without them ``OTEL_METRICS_EXPORTER``
    names them (default none). They export every ``export_interval_millis``
    (``OTEL_METRIC_EXPORT_INTERVAL``, 60 s) and a final time at ``shutdown()`` (or at process exit).
    ``prometheus_server``: serve ``/metrics`` on ``OTEL_EXPORTER_PROMETHEUS_HOST``:
    ``OTEL_EXPORTER_PROMETHEUS_PORT`` (default ``localhost:9464``) on a thread of its own; None (the
    default) when ``OTEL_METRICS_EXPORTER`` names ``prometheus``, False never (``telemetry-otel
    serve`` passes False: it serves ``/metrics`` itself), True always. A busy port is logged, not
    raised. ``live_min_interval_millis`` floors live collections and ``stale_after_ttls`` says when
    data that stopped refreshing is stale: see ``docs/collection-cycle.md``.
    """
    config = TelemetryConfig.resolve(
        service_name=service_name,
        resource_attributes=resource_attributes,
        disabled=disabled,
        collection_timeout_millis=collection_timeout_millis,
        service_timeout_millis=service_timeout_millis,
        export_interval_millis=export_interval_millis,
        export_timeout_millis=export_timeout_millis,
        cardinality_limit=cardinality_limit,
        attribute_value_length_limit=attribute_value_length_limit,
        live_min_interval_millis=live_min_interval_millis,
        stale_after_ttls=stale_after_ttls,
    )
    return _setup(config, exporters, prometheus_server, set_global=set_global, provisional=False)


def _setup(
    config: TelemetryConfig,
    exporters: Sequence[PushExporter] | None,
    prometheus_server: bool | None,
    *,
    set_global: bool,
    provisional: bool,
) -> Telemetry:
    global _current, _current_provisional
    early: list[Any] = []
    with _state_lock:
        replaced: Telemetry | None = None
        if _current is not None:
            if _current.config == config:
                if not provisional:
                    _make_final(set_global)
                return _current
            if provisional or not _current_provisional:
                raise ConfigurationError(
                    "telemetry is already set up with a different configuration "
                    f"({_current.config}); call setup_telemetry(...) before anything registers a "
                    "service or a bus, or call shutdown() on its handle before setting it up again"
                )
            replaced = _current
        pushed = (
            list(exporters)
            if exporters is not None
            else exporters_from_env(export_timeout_millis=config.export_timeout_millis)
        )
        serve_metrics = (
            "prometheus" in metrics_exporter_names() if prometheus_server is None else prometheus_server
        )
        address = prometheus_address() if serve_metrics else None  # a bad address: refused before any change
        with _early.lock:
            if replaced is not None:
                early, overflow = _early.take()
                _current = None
                replaced._close_prometheus()  # its port is the new runtime's
            telemetry = Telemetry(config, pushed)
            _current, _current_provisional = telemetry, provisional
            for meter in _deferred_meters:
                meter.bind(telemetry.get_meter(meter.name, meter.version, meter.schema_url))
            if replaced is not None:
                replay(early, overflow)
            if provisional:  # from the first measurement on, before any other thread records
                _early.start_locked()
        if not provisional:
            _make_final(set_global)
        if address is not None:
            telemetry.serve_prometheus(*address)
    if replaced is not None:
        # Its recordings were replayed: no final export of them under its configuration. Released
        # outside the locks: a flush must not hold up measurements or another set-up.
        replaced._release(replaced.config.export_timeout_millis, export=False)
        _logger.info(
            "telemetry set up for %s replaces the runtime a measurement made before set-up had put in "
            "place from the environment (%s); its %d measurements were carried over",
            config.service_name,
            replaced.config.service_name,
            len(early),
        )
    _logger.debug("telemetry-otel %s set up for %s", __version__, config.service_name)
    return telemetry


def _make_final(set_global: bool) -> None:
    """The current runtime is final from now on: no more replays (called under ``_state_lock``)."""
    global _current_provisional, _global_provider_set
    _current_provisional = False
    _early.stop()
    _deferred_meters.clear()
    telemetry = _current
    if telemetry is not None and set_global and not _global_provider_set and not telemetry.disabled:
        _global_provider_set = True
        otel_metrics.set_meter_provider(telemetry.meter_provider)


def _forget(telemetry: Telemetry) -> None:
    """``telemetry`` is shut down: if it is the current runtime, there is none any more."""
    global _current, _current_provisional
    with _state_lock:
        if _current is telemetry:
            _current, _current_provisional = None, False
            _early.stop()


def shutdown_telemetry(timeout_millis: float = 30_000) -> None:
    """Shut the shared runtime down if one is set up (at process exit, or between tests)."""
    with _state_lock:
        current = _current
    if current is not None:
        current.shutdown(timeout_millis)


def current_telemetry() -> Telemetry:
    """The shared runtime, set up from the environment alone if nothing has set it up yet.

    The runtime it returns is final: a later ``setup_telemetry(...)`` with another configuration is
    a :class:`ConfigurationError` (so set up before registering services and buses).
    """
    with _state_lock:
        if _current is not None:
            if _current_provisional:
                _make_final(set_global=True)
            return _current
        return setup_telemetry()


def get_meter(name: str, version: str | None = None, schema_url: str | None = None) -> Meter:
    """A meter from the one shared ``MeterProvider``.

    Before :func:`setup_telemetry` has run (a module-level ``get_meter(__name__)``), the meter is
    deferred: its instruments bind to the runtime when it is set up. A measurement made before that
    sets a provisional runtime up from the environment, so nothing is lost; the application's own
    ``setup_telemetry(...)`` later replaces it, and those measurements are replayed into it.
    """
    with _state_lock:
        if _current is None or _current_provisional:
            meter = DeferredMeter(name, version, schema_url, resolve=_resolve_deferred, early=_early)
            _deferred_meters.append(meter)
            if _current is not None:
                meter.bind(_current.get_meter(name, version, schema_url))
            return meter
        return _current.get_meter(name, version, schema_url)


def _resolve_deferred() -> None:
    """Set the provisional runtime up from the environment (the first early measurement)."""
    with _state_lock:
        if _current is None:
            _setup(TelemetryConfig.resolve(), None, None, set_global=False, provisional=True)
