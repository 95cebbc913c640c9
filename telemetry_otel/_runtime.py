"""The shared, process-wide telemetry runtime: one MeterProvider, one reader, one collection path."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from opentelemetry import metrics as otel_metrics
from opentelemetry.metrics import Meter, NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import Metric, MetricsData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from telemetry_otel._collection import Collection, collect_snapshots
from telemetry_otel._collector_metrics import CollectorMetrics
from telemetry_otel._components import ComponentRegistry
from telemetry_otel._config import ConfigurationError, TelemetryConfig
from telemetry_otel._deferred import DeferredMeter
from telemetry_otel._reader import MetricAggregator, MetricProducer, PullReader, merge_produced
from telemetry_otel._version import __version__
from telemetry_otel.exporters import ExportPipeline, PushExporter, exporters_from_env

__all__ = ["Telemetry", "current_telemetry", "get_meter", "setup_telemetry", "shutdown_telemetry"]

_logger = logging.getLogger("telemetry_otel")
#: Threads for synchronous snapshot functions: enough for every service of a large runtime at once.
SNAPSHOT_THREADS = 32


class Telemetry:
    """Handle on the shared telemetry runtime returned by :func:`setup_telemetry`.

    It owns the SDK ``MeterProvider`` (or a no-op provider when the SDK is disabled), the single
    pull reader, the registry of instrumented components and the metric producers.
    """

    def __init__(self, config: TelemetryConfig, exporters: Sequence[PushExporter] = ()) -> None:
        self.config = config
        attributes = {**config.resource_attributes, "service.name": config.service_name}
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
        self._executor = ThreadPoolExecutor(
            max_workers=SNAPSHOT_THREADS, thread_name_prefix="telemetry-snapshot"
        )
        self._read_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="telemetry-read")
        self._shut_down = False
        self._reader: PullReader | None
        self.meter_provider: MeterProvider | NoOpMeterProvider
        if config.disabled:
            self._reader = None
            self.meter_provider = NoOpMeterProvider()
        else:
            self._reader = PullReader()
            self.meter_provider = MeterProvider(resource=self.resource, metric_readers=[self._reader])
        #: The periodic push of every exporter (idle without exporters or with the SDK disabled).
        self.exports = ExportPipeline(
            self,
            [] if self.disabled else exporters,
            interval_millis=config.export_interval_millis,
            timeout_millis=config.export_timeout_millis,
        )
        self.exports.start()

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
        merged = merge_produced(data, self.resource, list(produced.items()))
        if not aggregators:
            return merged
        derived: dict[InstrumentationScope, list[Metric]] = {}
        for aggregator in aggregators:
            derived.setdefault(aggregator.scope, []).extend(aggregator.aggregate(merged))
        return merge_produced(merged, self.resource, list(derived.items()))

    async def collect(self) -> Collection:
        """Run one collection cycle: every snapshot in parallel, bounded per component, then one read.

        Concurrent callers are serialised, so snapshot functions never run twice at once.
        """
        loop = asyncio.get_running_loop()
        # One cycle at a time across every thread and event loop (the server's, the exporters').
        while not self._collect_lock.acquire(blocking=False):
            await asyncio.sleep(0.002)
        try:
            started = time.perf_counter()
            outcomes = await collect_snapshots(
                self.components.snapshot(),
                timeout_seconds=self.config.service_timeout_millis / 1000,
                executor=self._executor,
            )
            self.collector_metrics.record(outcomes, time.perf_counter() - started)
            read = loop.run_in_executor(self._read_executor, self.read_metrics)
            metrics = await asyncio.wait_for(read, self.config.collection_timeout_millis / 1000)
            return Collection(
                metrics=metrics,
                outcomes=outcomes,
                time_unix_nano=time.time_ns(),
                duration_seconds=time.perf_counter() - started,
                sdk_disabled=self.disabled,
            )
        finally:
            self._collect_lock.release()

    def shutdown(self, timeout_millis: float = 30_000) -> None:
        """Shut the provider down and release the runtime; a second call does nothing."""
        with _state_lock:
            global _current
            if self._shut_down:
                return
            self._shut_down = True
            if _current is self:
                _current = None
        self.exports.shutdown(timeout_millis)  # the final export and flush, before anything closes
        if isinstance(self.meter_provider, MeterProvider):
            self.meter_provider.shutdown(timeout_millis=timeout_millis)
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._read_executor.shutdown(wait=False, cancel_futures=True)


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
    set_global: bool = True,
) -> Telemetry:
    """Configure the shared telemetry runtime once and return its handle.

    Explicit arguments beat the ``OTEL_*`` environment variables, which beat defaults. Calling it
    again with a configuration that resolves the same returns the same handle; a different one is
    a :class:`ConfigurationError` until the handle is shut down. With ``set_global`` the provider
    also becomes the OpenTelemetry API's global provider, when no other has been set.

    ``exporters`` are the push exporters of the first setup; without them ``OTEL_METRICS_EXPORTER``
    names them (default none). They export every ``export_interval_millis``
    (``OTEL_METRIC_EXPORT_INTERVAL``, 60 s) and a final time at ``shutdown()``.
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
    )
    with _state_lock:
        if _current is not None:
            if _current.config != config:
                raise ConfigurationError(
                    "telemetry is already set up with a different configuration "
                    f"({_current.config}); call shutdown() on its handle before setting it up again"
                )
            return _current
        pushed = list(exporters) if exporters is not None else exporters_from_env()
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
