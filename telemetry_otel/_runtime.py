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
from collections.abc import Mapping, Sequence

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
from telemetry_otel._deferred import DeferredMeter
from telemetry_otel._index import OwnerIndex
from telemetry_otel._pool import DaemonThreadPool
from telemetry_otel._reader import MetricAggregator, MetricProducer, PullReader, merge_produced
from telemetry_otel._version import __version__
from telemetry_otel.exporters import ExportDemand, ExportPipeline, PushExporter, exporters_from_env
from telemetry_otel.vocabulary import SERVICE_INSTANCE_ID, SERVICE_NAME

__all__ = ["Telemetry", "current_telemetry", "get_meter", "setup_telemetry", "shutdown_telemetry"]

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
        index = OwnerIndex.of(merged)  # once for every aggregator: each reads only its owners
        for aggregator in aggregators:
            derived.setdefault(aggregator.scope, []).extend(aggregator.aggregate(merged, index))
        return merge_produced(merged, self.resource, list(derived.items()), limit)

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

        Order: the final export and flush (bounded by ``timeout_millis``), the provider, then the
        pool threads, waited for at most ``THREAD_JOIN_SECONDS`` (or what is left of
        ``timeout_millis``, if less, but at least 0.1 s). Idle threads end at once; a thread still
        inside a stuck snapshot function is a daemon thread that ends when the function returns,
        and never keeps the process from exiting.
        """
        started = time.monotonic()
        with _state_lock:
            global _current
            if self._shut_down:
                return
            self._shut_down = True
            if _current is self:
                _current = None
        self._host_loop = None  # the final collection runs on the cycle's own loop
        self.exports.shutdown(timeout_millis)  # the final export and flush, before anything closes
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
_global_provider_set = False


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
    set_global: bool = True,
) -> Telemetry:
    """Configure the shared telemetry runtime once and return its handle.

    Explicit arguments beat the ``OTEL_*`` environment variables, which beat defaults. Calling it
    again with a configuration that resolves the same returns the same handle; a different one is
    a :class:`ConfigurationError` until the handle is shut down. With ``set_global`` the provider
    also becomes the OpenTelemetry API's global provider, when no other has been set.

    ``exporters`` are the push exporters of the first setup; without them ``OTEL_METRICS_EXPORTER``
    names them (default none). They export every ``export_interval_millis``
    (``OTEL_METRIC_EXPORT_INTERVAL``, 60 s) and a final time at ``shutdown()`` (or at process exit).
    ``live_min_interval_millis`` floors live collections and ``stale_after_ttls`` says when data that
    stopped refreshing is stale: see ``docs/collection-cycle.md``.
    """
    global _current, _global_provider_set
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
    with _state_lock:
        if _current is not None:
            if _current.config != config:
                raise ConfigurationError(
                    "telemetry is already set up with a different configuration "
                    f"({_current.config}); call shutdown() on its handle before setting it up again"
                )
            return _current
        pushed = (
            list(exporters)
            if exporters is not None
            else exporters_from_env(export_timeout_millis=config.export_timeout_millis)
        )
        telemetry = Telemetry(config, pushed)
        _current = telemetry
        _bind_pending(telemetry)
        if set_global and not _global_provider_set and not telemetry.disabled:
            _global_provider_set = True
            otel_metrics.set_meter_provider(telemetry.meter_provider)
    _logger.debug("telemetry-otel %s set up for %s", __version__, config.service_name)
    return telemetry


_pending_meters: list[DeferredMeter] = []


def _bind_pending(telemetry: Telemetry) -> None:
    """Bind every meter handed out before ``telemetry`` was set up (called under ``_state_lock``)."""
    pending = list(_pending_meters)
    _pending_meters.clear()
    for meter in pending:
        meter.bind(telemetry.get_meter(meter.name, meter.version, meter.schema_url))


def shutdown_telemetry(timeout_millis: float = 30_000) -> None:
    """Shut the shared runtime down if one is set up (at process exit, or between tests)."""
    with _state_lock:
        current = _current
    if current is not None:
        current.shutdown(timeout_millis)


def current_telemetry() -> Telemetry:
    """The shared runtime, set up from the environment alone if nothing has set it up yet."""
    with _state_lock:
        if _current is not None:
            return _current
        return setup_telemetry()


def get_meter(name: str, version: str | None = None, schema_url: str | None = None) -> Meter:
    """A meter from the one shared ``MeterProvider``.

    Before :func:`setup_telemetry` has run (a module-level ``get_meter(__name__)``), the meter is
    deferred: its instruments bind to the runtime when it is set up, and a measurement made before
    that sets the runtime up from the environment, so nothing is lost.
    """
    with _state_lock:
        if _current is None:
            meter = DeferredMeter(name, version, schema_url, resolve=_resolve_deferred)
            _pending_meters.append(meter)
            return meter
        return _current.get_meter(name, version, schema_url)


def _resolve_deferred() -> None:
    current_telemetry()
