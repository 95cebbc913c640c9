"""Exemplars on this package's fast paths: the sampled span a measurement was made in, found cheaply.

The SDK's own instruments keep exemplars through its ``ExemplarFilter`` and
``AlignedHistogramBucketExemplarReservoir``. The vitals and the HTTP server metrics bypass the SDK's
measurement path, so they apply the same rules here, at a cost close to nothing when no span can
exist:

* ``always_off``: nothing is looked at (the recorder without exemplars is bound instead).
* ``trace_based`` (the default): with no ``TracerProvider`` installed through the OpenTelemetry API
  (``trace.set_tracer_provider``), no span can be sampled, so the span check is skipped entirely
  (one attribute read). Otherwise an empty OpenTelemetry context holds no span (one context-variable
  read); only a context that holds a span is asked for it, and its ids are kept when it is sampled.
* ``always_on``: every measurement is a candidate, with the ids of the current span when it is valid.

Like the SDK's aligned reservoir, each histogram bucket keeps its latest exemplar. Unlike it, the
exemplar is not cleared when a collection reads it: every consumer of the shared collection
(``/metrics``, OTLP, the views) sees the latest exemplar of each bucket.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any, Final, TypeAlias

from opentelemetry import context as _context_api
from opentelemetry import trace as _trace_api
from opentelemetry.sdk.metrics import Exemplar
from opentelemetry.trace import INVALID_SPAN

__all__ = [
    "ALWAYS_ON",
    "OFF",
    "TRACE_BASED",
    "StoredExemplar",
    "candidate",
    "current_context",
    "exemplar_mode",
    "span_ids",
    "to_exemplars",
    "tracing",
]

#: Exemplar modes, as small integers for the fast paths.
OFF: Final = 0
TRACE_BASED: Final = 1
ALWAYS_ON: Final = 2
_MODES: Final = {"always_off": OFF, "trace_based": TRACE_BASED, "always_on": ALWAYS_ON}

#: A kept exemplar: (value, time in ns since the epoch, trace id or None, span id or None).
StoredExemplar: TypeAlias = tuple[float, int, int | None, int | None]

#: The OpenTelemetry API module: ``tracing._TRACER_PROVIDER`` is None until a provider is installed.
tracing: Final = _trace_api


def _context_getter() -> Callable[[], Any]:
    """The fastest way to the current OpenTelemetry context: its context variable's ``get`` when the
    default (contextvars) runtime context is in use, else the public ``get_current``."""
    variable = getattr(getattr(_context_api, "_RUNTIME_CONTEXT", None), "_current_context", None)
    return variable.get if isinstance(variable, ContextVar) else _context_api.get_current


#: The current OpenTelemetry context (a mapping; empty when nothing was attached).
current_context: Final = _context_getter()
_get_current_span: Final = _trace_api.get_current_span


def exemplar_mode(name: str) -> int:
    """The fast-path mode of an ``OTEL_METRICS_EXEMPLAR_FILTER`` value (the runtime's config)."""
    return _MODES[name]


def span_ids(context: Any, sampled_only: bool = True) -> tuple[int, int] | None:
    """(trace id, span id) of the span in ``context`` when it is valid (and sampled); else None."""
    span = _get_current_span(context)
    if span is INVALID_SPAN:
        return None
    span_context = span.get_span_context()
    if not span_context.is_valid or (sampled_only and not span_context.trace_flags.sampled):
        return None
    return span_context.trace_id, span_context.span_id


def candidate(value: float, mode: int) -> StoredExemplar | None:
    """The exemplar a measurement of ``value`` made now yields under ``mode`` (None: no exemplar).

    The general (slower) form: the fast paths inline the checks that make the common case free.
    """
    if mode == OFF:
        return None
    ids = None
    if tracing._TRACER_PROVIDER is not None:
        context = current_context()
        if context:
            ids = span_ids(context, sampled_only=mode == TRACE_BASED)
    if ids is None:
        return None if mode == TRACE_BASED else (value, time.time_ns(), None, None)
    return value, time.time_ns(), ids[0], ids[1]


def to_exemplars(stored: Sequence[StoredExemplar | None]) -> list[Exemplar]:
    """The SDK exemplars of one data point's kept exemplars, in bucket order."""
    return [
        Exemplar({}, value, time_unix_nano, span_id, trace_id)
        for entry in stored
        if entry is not None
        for value, time_unix_nano, trace_id, span_id in (entry,)
    ]
