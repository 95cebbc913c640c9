"""Configuration of the shared telemetry runtime: explicit arguments beat environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeAlias
from urllib.parse import unquote

from telemetry_otel.vocabulary import SERVICE_NAME

__all__ = [
    "DEFAULT_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    "DEFAULT_CACHE_TTL_SECONDS",
    "DEFAULT_CARDINALITY_LIMIT",
    "DEFAULT_COLLECTION_TIMEOUT_MILLIS",
    "DEFAULT_EXEMPLAR_FILTER",
    "DEFAULT_EXPORT_BUFFER_BYTES",
    "DEFAULT_EXPORT_BUFFER_SECONDS",
    "DEFAULT_EXPORT_INTERVAL_MILLIS",
    "DEFAULT_EXPORT_RETRY_INITIAL_MILLIS",
    "DEFAULT_EXPORT_RETRY_MAX_MILLIS",
    "DEFAULT_EXPORT_SPOOL_BYTES",
    "DEFAULT_EXPORT_TIMEOUT_MILLIS",
    "DEFAULT_FLEET_CACHE_TTL_SECONDS",
    "DEFAULT_LIVE_MIN_INTERVAL_MILLIS",
    "DEFAULT_PROCESS_METRICS",
    "DEFAULT_REPORT_INTERVAL_MILLIS",
    "DEFAULT_SERVICE_TIMEOUT_MILLIS",
    "DEFAULT_SHUTDOWN_TIMEOUT_MILLIS",
    "DEFAULT_STALE_AFTER_TTLS",
    "EXEMPLAR_FILTERS",
    "ConfigurationError",
    "ExemplarFilterName",
    "TelemetryConfig",
]

# Every default of the runtime, in this one place.
#: Bound on reading the SDK in one collection (``TELEMETRY_OTEL_COLLECTION_TIMEOUT_MILLIS``).
DEFAULT_COLLECTION_TIMEOUT_MILLIS = 5_000.0
#: Bound on each service's snapshot in one collection (``TELEMETRY_OTEL_SERVICE_TIMEOUT_MILLIS``).
DEFAULT_SERVICE_TIMEOUT_MILLIS = 2_000.0
#: ``OTEL_METRIC_EXPORT_INTERVAL`` default of the OpenTelemetry specification.
DEFAULT_EXPORT_INTERVAL_MILLIS = 60_000.0
#: ``OTEL_METRIC_EXPORT_TIMEOUT`` default of the OpenTelemetry specification.
DEFAULT_EXPORT_TIMEOUT_MILLIS = 30_000.0
#: Bound on ``shutdown()`` of the runtime, the final export to every exporter included
#: (``TELEMETRY_OTEL_SHUTDOWN_TIMEOUT_MILLIS``): well inside the 30 s grace period of Kubernetes.
DEFAULT_SHUTDOWN_TIMEOUT_MILLIS = 10_000.0
#: Age of the oldest batch an exporter holds for retries (``TELEMETRY_OTEL_EXPORT_BUFFER_SECONDS``).
DEFAULT_EXPORT_BUFFER_SECONDS = 900.0
#: Bytes of batches an exporter holds in memory for retries (``TELEMETRY_OTEL_EXPORT_BUFFER_BYTES``).
DEFAULT_EXPORT_BUFFER_BYTES = 64 * 1024 * 1024
#: Bytes an exporter's spool may take on disk (``TELEMETRY_OTEL_EXPORT_SPOOL_BYTES``).
DEFAULT_EXPORT_SPOOL_BYTES = 256 * 1024 * 1024
#: First retry of a failed export (``TELEMETRY_OTEL_EXPORT_RETRY_INITIAL_MILLIS``).
DEFAULT_EXPORT_RETRY_INITIAL_MILLIS = 1_000.0
#: Longest backoff between retries (``TELEMETRY_OTEL_EXPORT_RETRY_MAX_MILLIS``); never longer than
#: the export interval.
DEFAULT_EXPORT_RETRY_MAX_MILLIS = 60_000.0
#: How old a collection the HTTP app (and ``serve --cache-ttl``) accepts before it asks for a new one.
DEFAULT_CACHE_TTL_SECONDS = 30.0
#: How old a fleet read (``create_fleet_app``, ``fleet --cache-ttl``) may be before a request starts a
#: new one: below the usual scrape intervals, so a dead agent shows as down within two of them.
DEFAULT_FLEET_CACHE_TTL_SECONDS = 5.0
#: Fewest milliseconds between two live collections (``TELEMETRY_OTEL_LIVE_MIN_INTERVAL_MILLIS``).
DEFAULT_LIVE_MIN_INTERVAL_MILLIS = 1_000.0
#: A refresh due for this many TTLs without a completed cycle makes the data stale
#: (``TELEMETRY_OTEL_STALE_AFTER_TTLS``).
DEFAULT_STALE_AFTER_TTLS = 3.0

# Workers of one host (issue 18): where the host aggregator listens, and how often workers report.
#: Milliseconds between two reports of a worker to its host aggregator
#: (``TELEMETRY_OTEL_REPORT_INTERVAL_MILLIS``): the most a host picture lags a worker's recording.
DEFAULT_REPORT_INTERVAL_MILLIS = 1_000.0

#: Series (distinct attribute sets) kept per instrument before the rest fold into one overflow
#: series ``otel.metric.overflow=true``: the OpenTelemetry specification's default.
DEFAULT_CARDINALITY_LIMIT = 2_000
#: Characters kept of a string attribute value this package records (the OpenTelemetry default is
#: no limit; metric attributes are series labels, so this package keeps them short).
DEFAULT_ATTRIBUTE_VALUE_LENGTH_LIMIT = 256

#: Process and CPython runtime metrics are opt-in (``setup_telemetry(process_metrics=True)``).
DEFAULT_PROCESS_METRICS = False

#: ``OTEL_METRICS_EXEMPLAR_FILTER`` values, and the specification's default.
ExemplarFilterName: TypeAlias = Literal["trace_based", "always_on", "always_off"]
EXEMPLAR_FILTERS: tuple[ExemplarFilterName, ...] = ("trace_based", "always_on", "always_off")
DEFAULT_EXEMPLAR_FILTER: ExemplarFilterName = "trace_based"

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", ""})


class ConfigurationError(ValueError):
    """A configuration value is not allowed; the message names what is."""


@dataclass(frozen=True)
class TelemetryConfig:
    """Settings of the shared telemetry runtime.

    Build it with :meth:`TelemetryConfig.resolve`, which reads the standard OpenTelemetry
    environment variables and lets explicit arguments override them.
    """

    service_name: str = "unknown_service"
    resource_attributes: Mapping[str, str] = field(default_factory=dict)
    disabled: bool = False
    collection_timeout_millis: float = DEFAULT_COLLECTION_TIMEOUT_MILLIS
    service_timeout_millis: float = DEFAULT_SERVICE_TIMEOUT_MILLIS
    export_interval_millis: float = DEFAULT_EXPORT_INTERVAL_MILLIS
    export_timeout_millis: float = DEFAULT_EXPORT_TIMEOUT_MILLIS
    #: Distinct attribute sets per instrument (``TELEMETRY_OTEL_CARDINALITY_LIMIT``).
    cardinality_limit: int = DEFAULT_CARDINALITY_LIMIT
    #: Characters kept of a string attribute value (``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT``).
    attribute_value_length_limit: int = DEFAULT_ATTRIBUTE_VALUE_LENGTH_LIMIT
    #: Fewest milliseconds between two live collections (``TELEMETRY_OTEL_LIVE_MIN_INTERVAL_MILLIS``).
    live_min_interval_millis: float = DEFAULT_LIVE_MIN_INTERVAL_MILLIS
    #: A refresh due for this many TTLs with no completed cycle is stale
    #: (``TELEMETRY_OTEL_STALE_AFTER_TTLS``).
    stale_after_ttls: float = DEFAULT_STALE_AFTER_TTLS
    #: Produce the process and CPython runtime metrics (``TELEMETRY_OTEL_PROCESS_METRICS``).
    process_metrics: bool = DEFAULT_PROCESS_METRICS
    #: Which measurements may become exemplars (``OTEL_METRICS_EXEMPLAR_FILTER``): ``trace_based``
    #: (those made in a sampled span), ``always_on`` or ``always_off``.
    exemplar_filter: ExemplarFilterName = DEFAULT_EXEMPLAR_FILTER
    #: ``host:port`` of the host aggregator this process reports to as one worker of several
    #: (``TELEMETRY_OTEL_HOST_ENDPOINT``); None: the process answers for itself alone.
    host_endpoint: str | None = None
    #: Milliseconds between two reports to the host (``TELEMETRY_OTEL_REPORT_INTERVAL_MILLIS``).
    report_interval_millis: float = DEFAULT_REPORT_INTERVAL_MILLIS
    #: Bound on ``shutdown()``, the final export included (``TELEMETRY_OTEL_SHUTDOWN_TIMEOUT_MILLIS``).
    shutdown_timeout_millis: float = DEFAULT_SHUTDOWN_TIMEOUT_MILLIS
    #: Oldest batch held for retries, in seconds (``TELEMETRY_OTEL_EXPORT_BUFFER_SECONDS``).
    export_buffer_seconds: float = DEFAULT_EXPORT_BUFFER_SECONDS
    #: Bytes held for retries in memory per exporter (``TELEMETRY_OTEL_EXPORT_BUFFER_BYTES``).
    export_buffer_bytes: int = DEFAULT_EXPORT_BUFFER_BYTES
    #: Directory of the durable spool, None for none (``TELEMETRY_OTEL_EXPORT_SPOOL_DIR``).
    export_spool_dir: str | None = None
    #: Bytes the spool may take on disk per exporter (``TELEMETRY_OTEL_EXPORT_SPOOL_BYTES``).
    export_spool_bytes: int = DEFAULT_EXPORT_SPOOL_BYTES
    #: First retry after a failed export (``TELEMETRY_OTEL_EXPORT_RETRY_INITIAL_MILLIS``).
    export_retry_initial_millis: float = DEFAULT_EXPORT_RETRY_INITIAL_MILLIS
    #: Longest backoff, capped by the export interval (``TELEMETRY_OTEL_EXPORT_RETRY_MAX_MILLIS``).
    export_retry_max_millis: float = DEFAULT_EXPORT_RETRY_MAX_MILLIS

    @classmethod
    def resolve(
        cls,
        *,
        service_name: str | None = None,
        resource_attributes: Mapping[str, str] | None = None,
        disabled: bool | None = None,
        collection_timeout_millis: float | None = None,
        service_timeout_millis: float | None = None,
        export_interval_millis: float | None = None,
        export_timeout_millis: float | None = None,
        cardinality_limit: int | None = None,
        attribute_value_length_limit: int | None = None,
        live_min_interval_millis: float | None = None,
        stale_after_ttls: float | None = None,
        process_metrics: bool | None = None,
        exemplar_filter: str | None = None,
        host_endpoint: str | None = None,
        report_interval_millis: float | None = None,
        shutdown_timeout_millis: float | None = None,
        export_buffer_seconds: float | None = None,
        export_buffer_bytes: int | None = None,
        export_spool_dir: str | os.PathLike[str] | None = None,
        export_spool_bytes: int | None = None,
        export_retry_initial_millis: float | None = None,
        export_retry_max_millis: float | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> TelemetryConfig:
        """Merge explicit arguments over the environment (``OTEL_*`` variables) over defaults."""
        env = os.environ if environ is None else environ
        attributes = _parse_resource_attributes(env.get("OTEL_RESOURCE_ATTRIBUTES", ""))
        if resource_attributes:
            attributes.update(resource_attributes)
        name = service_name or env.get("OTEL_SERVICE_NAME") or attributes.get(SERVICE_NAME)
        if disabled is None:
            disabled = _parse_bool("OTEL_SDK_DISABLED", env.get("OTEL_SDK_DISABLED", "false"))
        collection = _pick_millis(
            "collection_timeout_millis",
            collection_timeout_millis,
            env.get("TELEMETRY_OTEL_COLLECTION_TIMEOUT_MILLIS"),
            cls.collection_timeout_millis,
        )
        per_service = _pick_millis(
            "service_timeout_millis",
            service_timeout_millis,
            env.get("TELEMETRY_OTEL_SERVICE_TIMEOUT_MILLIS"),
            cls.service_timeout_millis,
        )
        interval = _pick_millis(
            "OTEL_METRIC_EXPORT_INTERVAL",
            export_interval_millis,
            env.get("OTEL_METRIC_EXPORT_INTERVAL"),
            cls.export_interval_millis,
        )
        export_timeout = _pick_millis(
            "OTEL_METRIC_EXPORT_TIMEOUT",
            export_timeout_millis,
            env.get("OTEL_METRIC_EXPORT_TIMEOUT"),
            cls.export_timeout_millis,
        )
        limit = _pick_count(
            "TELEMETRY_OTEL_CARDINALITY_LIMIT",
            cardinality_limit,
            env.get("TELEMETRY_OTEL_CARDINALITY_LIMIT"),
            cls.cardinality_limit,
        )
        length = _pick_count(
            "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            attribute_value_length_limit,
            env.get("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"),
            cls.attribute_value_length_limit,
        )
        live_floor = _pick_number(
            "TELEMETRY_OTEL_LIVE_MIN_INTERVAL_MILLIS",
            live_min_interval_millis,
            env.get("TELEMETRY_OTEL_LIVE_MIN_INTERVAL_MILLIS"),
            cls.live_min_interval_millis,
            allow_zero=True,
        )
        stale_after = _pick_number(
            "TELEMETRY_OTEL_STALE_AFTER_TTLS",
            stale_after_ttls,
            env.get("TELEMETRY_OTEL_STALE_AFTER_TTLS"),
            cls.stale_after_ttls,
            allow_zero=False,
        )
        if process_metrics is None:
            raw_process = env.get("TELEMETRY_OTEL_PROCESS_METRICS")
            process_metrics = (
                cls.process_metrics
                if raw_process is None
                else _parse_bool("TELEMETRY_OTEL_PROCESS_METRICS", raw_process)
            )
        exemplars = _pick_exemplar_filter(exemplar_filter, env.get("OTEL_METRICS_EXEMPLAR_FILTER"))
        endpoint = host_endpoint or env.get("TELEMETRY_OTEL_HOST_ENDPOINT", "").strip() or None
        if endpoint is not None:
            _check_host_endpoint(endpoint)
        report_interval = _pick_millis(
            "TELEMETRY_OTEL_REPORT_INTERVAL_MILLIS",
            report_interval_millis,
            env.get("TELEMETRY_OTEL_REPORT_INTERVAL_MILLIS"),
            cls.report_interval_millis,
        )
        shutdown_bound = _pick_millis(
            "TELEMETRY_OTEL_SHUTDOWN_TIMEOUT_MILLIS",
            shutdown_timeout_millis,
            env.get("TELEMETRY_OTEL_SHUTDOWN_TIMEOUT_MILLIS"),
            cls.shutdown_timeout_millis,
        )
        buffer_seconds = _pick_number(
            "TELEMETRY_OTEL_EXPORT_BUFFER_SECONDS",
            export_buffer_seconds,
            env.get("TELEMETRY_OTEL_EXPORT_BUFFER_SECONDS"),
            cls.export_buffer_seconds,
            allow_zero=False,
        )
        buffer_bytes = _pick_count(
            "TELEMETRY_OTEL_EXPORT_BUFFER_BYTES",
            export_buffer_bytes,
            env.get("TELEMETRY_OTEL_EXPORT_BUFFER_BYTES"),
            cls.export_buffer_bytes,
        )
        spool_dir = (
            export_spool_dir if export_spool_dir is not None else env.get("TELEMETRY_OTEL_EXPORT_SPOOL_DIR")
        )
        spool_bytes = _pick_count(
            "TELEMETRY_OTEL_EXPORT_SPOOL_BYTES",
            export_spool_bytes,
            env.get("TELEMETRY_OTEL_EXPORT_SPOOL_BYTES"),
            cls.export_spool_bytes,
        )
        retry_initial = _pick_millis(
            "TELEMETRY_OTEL_EXPORT_RETRY_INITIAL_MILLIS",
            export_retry_initial_millis,
            env.get("TELEMETRY_OTEL_EXPORT_RETRY_INITIAL_MILLIS"),
            cls.export_retry_initial_millis,
        )
        retry_max = _pick_millis(
            "TELEMETRY_OTEL_EXPORT_RETRY_MAX_MILLIS",
            export_retry_max_millis,
            env.get("TELEMETRY_OTEL_EXPORT_RETRY_MAX_MILLIS"),
            cls.export_retry_max_millis,
        )
        if retry_initial > retry_max:
            raise ConfigurationError(
                f"TELEMETRY_OTEL_EXPORT_RETRY_INITIAL_MILLIS ({retry_initial:g}) is more than "
                f"TELEMETRY_OTEL_EXPORT_RETRY_MAX_MILLIS ({retry_max:g})"
            )
        return cls(
            service_name=name or cls.service_name,
            resource_attributes=attributes,
            disabled=disabled,
            collection_timeout_millis=collection,
            service_timeout_millis=per_service,
            export_interval_millis=interval,
            export_timeout_millis=export_timeout,
            cardinality_limit=limit,
            attribute_value_length_limit=length,
            live_min_interval_millis=live_floor,
            stale_after_ttls=stale_after,
            process_metrics=process_metrics,
            exemplar_filter=exemplars,
            host_endpoint=endpoint,
            report_interval_millis=report_interval,
            shutdown_timeout_millis=shutdown_bound,
            export_buffer_seconds=buffer_seconds,
            export_buffer_bytes=buffer_bytes,
            export_spool_dir=str(spool_dir) if spool_dir is not None and str(spool_dir).strip() else None,
            export_spool_bytes=spool_bytes,
            export_retry_initial_millis=retry_initial,
            export_retry_max_millis=retry_max,
        )


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigurationError(f"{name}={raw!r} is not a boolean; use true or false")


def _pick_exemplar_filter(explicit: str | None, raw: str | None) -> ExemplarFilterName:
    """The exemplar filter: argument, else ``OTEL_METRICS_EXEMPLAR_FILTER``, else ``trace_based``."""
    value = explicit if explicit is not None else (raw.strip().lower() if raw and raw.strip() else None)
    if value is None:
        return DEFAULT_EXEMPLAR_FILTER
    if value not in EXEMPLAR_FILTERS:
        raise ConfigurationError(
            f"OTEL_METRICS_EXEMPLAR_FILTER={value!r} is not allowed; use one of {', '.join(EXEMPLAR_FILTERS)}"
        )
    return value


def _pick_millis(name: str, explicit: float | None, raw: str | None, default: float) -> float:
    """A positive number of milliseconds: argument, else environment, else default."""
    return _pick_number(name, explicit, raw, default, allow_zero=False, unit=" of milliseconds", finite=False)


def _pick_number(
    name: str,
    explicit: float | None,
    raw: str | None,
    default: float,
    *,
    allow_zero: bool,
    unit: str = "",
    finite: bool = True,
) -> float:
    """A number, positive (or zero with ``allow_zero``, finite with ``finite``): argument, else
    environment, else default; ``unit`` names it in errors (`` of milliseconds``)."""
    if explicit is not None:
        value = float(explicit)
    elif raw is not None and raw.strip():
        try:
            value = float(raw)
        except ValueError:
            raise ConfigurationError(f"{name}={raw!r} is not a number{unit}") from None
    else:
        value = default
    if not (value >= 0 if allow_zero else value > 0) or (finite and value == float("inf")):
        allowed = f"zero or a positive number{unit}" if allow_zero else f"a positive number{unit}"
        raise ConfigurationError(f"{name} must be {allowed}, got {value!r}")
    return value


def _pick_count(name: str, explicit: int | None, raw: str | None, default: int) -> int:
    """A positive integer: the explicit argument, else the environment variable, else the default."""
    value: object
    if explicit is not None:
        value = explicit
    elif raw is not None and raw.strip():
        try:
            value = int(raw.strip())
        except ValueError:
            raise ConfigurationError(
                f"{name}={raw!r} is not a whole number; use a positive integer"
            ) from None
    else:
        value = default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name} must be a positive integer, got {value!r}")
    return value


def _parse_resource_attributes(raw: str) -> dict[str, str]:
    """Parse ``OTEL_RESOURCE_ATTRIBUTES`` (``k1=v1,k2=v2``, values percent-decoded) per the OTel spec."""
    attributes: dict[str, str] = {}
    for item in raw.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigurationError(f"OTEL_RESOURCE_ATTRIBUTES item {item!r} is not of the form key=value")
        attributes[unquote(key.strip())] = unquote(value.strip())
    return attributes


def _check_host_endpoint(text: str) -> None:
    """``host:port`` (an ``http://`` prefix allowed) with a port in 1-65535, or ConfigurationError."""
    raw = text.strip().removeprefix("http://").rstrip("/")
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise ConfigurationError(
            f"TELEMETRY_OTEL_HOST_ENDPOINT={text!r} is not host:port (for example 127.0.0.1:4319)"
        )
