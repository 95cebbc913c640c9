"""The process-wide runtime: set it up once, find it, take meters from it, shut it down.

One runtime is current per process. A measurement made before any set-up puts a provisional one in
place from the environment; the application's own ``setup_telemetry(...)`` replaces it and the
early measurements are replayed into the new one.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import metrics as otel_metrics
from opentelemetry.metrics import Meter

from telemetry_otel._config import ConfigurationError, TelemetryConfig
from telemetry_otel._deferred import DeferredMeter, EarlyMeasurements, replay
from telemetry_otel._runtime import Telemetry
from telemetry_otel._scrape_server import prometheus_address
from telemetry_otel._version import __version__
from telemetry_otel.exporters import PushExporter, exporters_from_env
from telemetry_otel.exporters._env import metrics_exporter_names

__all__ = ["current_telemetry", "get_meter", "setup_telemetry", "shutdown_telemetry"]

_logger = logging.getLogger("telemetry_otel")

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
    shutdown_timeout_millis: float | None = None,
    export_buffer_seconds: float | None = None,
    export_buffer_bytes: int | None = None,
    export_spool_dir: str | os.PathLike[str] | None = None,
    export_spool_bytes: int | None = None,
    export_retry_initial_millis: float | None = None,
    export_retry_max_millis: float | None = None,
    set_global: bool = True,
    process_metrics: bool | None = None,
    exemplar_filter: str | None = None,
    host_endpoint: str | None = None,
    report_interval_millis: float | None = None,
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
    data that stopped refreshing is stale: see ``docs/collection-cycle.md``. ``process_metrics``
    (``TELEMETRY_OTEL_PROCESS_METRICS``, default off) adds the process and CPython runtime metrics of
    the semantic conventions (``process.cpu.time``, ``process.memory.usage``, ...; see
    ``Telemetry.enable_process_metrics``). ``exemplar_filter`` (``OTEL_METRICS_EXEMPLAR_FILTER``:
    ``trace_based``, the default, ``always_on`` or ``always_off``) says which histogram measurements
    keep their trace and span ids as exemplars, on the SDK's instruments and on the fast paths alike.
    data that stopped refreshing is stale: see ``docs/collection-cycle.md``.

    ``host_endpoint`` (``TELEMETRY_OTEL_HOST_ENDPOINT``, ``127.0.0.1:PORT``): this process is one
    worker of several on a host; it reports to the host aggregator there every
    ``report_interval_millis`` (``TELEMETRY_OTEL_REPORT_INTERVAL_MILLIS``, 1000) and answers every
    consumer from the host picture; see ``docs/workers.md``.
    Delivery (``docs/exporters.md``): ``shutdown_timeout_millis`` bounds ``shutdown()`` and the exit
    of the process, final export included (``TELEMETRY_OTEL_SHUTDOWN_TIMEOUT_MILLIS``, 10 s); each
    exporter holds undelivered batches up to ``export_buffer_seconds`` old (900) and
    ``export_buffer_bytes`` (64 MiB); ``export_spool_dir`` keeps them on disk too (at most
    ``export_spool_bytes``, 256 MiB, per exporter) so that a restart sends them; retries back off from
    ``export_retry_initial_millis`` (1 s) to ``export_retry_max_millis`` (60 s), never longer than
    the export interval. Each has its ``TELEMETRY_OTEL_EXPORT_*`` variable.
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
        process_metrics=process_metrics,
        exemplar_filter=exemplar_filter,
        host_endpoint=host_endpoint,
        report_interval_millis=report_interval_millis,
        shutdown_timeout_millis=shutdown_timeout_millis,
        export_buffer_seconds=export_buffer_seconds,
        export_buffer_bytes=export_buffer_bytes,
        export_spool_dir=export_spool_dir,
        export_spool_bytes=export_spool_bytes,
        export_retry_initial_millis=export_retry_initial_millis,
        export_retry_max_millis=export_retry_max_millis,
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
            telemetry._release_hooks.append(_forget)
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
        replaced._release(export=False)
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


def shutdown_telemetry(timeout_millis: float | None = None) -> None:
    """Shut the shared runtime down if one is set up (at process exit, or between tests), within
    ``timeout_millis`` (default: its ``shutdown_timeout_millis``)."""
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
