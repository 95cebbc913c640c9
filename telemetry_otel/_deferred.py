"""Meters handed out before the shared runtime is set up, bound to it once it is.

Service modules usually take their meter at import time (``meter = get_meter(__name__)``), before
the application calls ``setup_telemetry(...)``. A deferred meter lets that order work: its
instruments bind to the runtime when it is set up, and a measurement made before that sets the
runtime up from the environment, so nothing recorded is lost.

That environment runtime is provisional: the application's own ``setup_telemetry(...)`` still wins.
While it is provisional, every measurement made through a deferred instrument is also kept in
:class:`EarlyMeasurements` (at most ``EARLY_MEASUREMENT_LIMIT``); when an explicit set-up replaces
the provisional runtime, every deferred meter is bound again, to the new runtime, and the kept
measurements are replayed into it, exactly (each histogram value, each gauge value in order).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.metrics import (
    CallbackT,
    Counter,
    Histogram,
    Meter,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
    _Gauge,
)
from opentelemetry.util.types import Attributes

__all__ = ["EARLY_MEASUREMENT_LIMIT", "DeferredMeter", "EarlyMeasurements"]

#: Measurements kept for a replay while the runtime is the provisional one of the environment.
EARLY_MEASUREMENT_LIMIT = 10_000

_logger = logging.getLogger("telemetry_otel")


class EarlyMeasurements:
    """The measurements made through deferred instruments into a provisional runtime, for a replay.

    ``lock`` orders recording against the switch to another runtime: a measurement made while
    :attr:`active` goes to the provisional runtime and into this log under the lock, and the switch
    (:meth:`take`, then binding and :meth:`replay`, under the lock) therefore sees every one of them;
    a measurement made after the switch goes to the new runtime only.
    """

    def __init__(self, limit: int = EARLY_MEASUREMENT_LIMIT) -> None:
        self.lock = threading.Lock()
        self.active = False
        self._limit = limit
        self._entries: list[tuple[_DeferredSync, str, int | float, Attributes]] = []
        #: Measurements beyond the limit, not kept for a replay.
        self.overflow = 0

    def start_locked(self) -> None:
        """Keep measurements from now on: the runtime is provisional (called under :attr:`lock`)."""
        self.active, self._entries, self.overflow = True, [], 0

    def stop(self) -> None:
        """Keep nothing more and forget what was kept (the runtime is final)."""
        with self.lock:
            self.active, self._entries, self.overflow = False, [], 0

    def keep(
        self, instrument: _DeferredSync, method: str, amount: int | float, attributes: Attributes
    ) -> None:
        """Keep one measurement (called under :attr:`lock` while :attr:`active`)."""
        if len(self._entries) >= self._limit:
            self.overflow += 1
            return
        self._entries.append((instrument, method, amount, dict(attributes) if attributes else None))

    def take(self) -> tuple[list[tuple[_DeferredSync, str, int | float, Attributes]], int]:
        """Stop keeping and return what was kept, with the overflow (called under :attr:`lock`)."""
        entries, overflow = self._entries, self.overflow
        self.active, self._entries, self.overflow = False, [], 0
        return entries, overflow


def replay(entries: list[tuple[_DeferredSync, str, int | float, Attributes]], overflow: int) -> None:
    """Record ``entries`` again, into the instruments' new runtime (called under the log's lock)."""
    for instrument, method, amount, attributes in entries:
        getattr(instrument._real, method)(amount, attributes)
    if overflow:
        _logger.warning(
            "%d measurements made before setup_telemetry() beyond the first %d were not carried over "
            "from the environment's provisional runtime; call setup_telemetry() earlier",
            overflow,
            len(entries),
        )


class DeferredMeter(Meter):
    """A meter whose instruments bind to the shared runtime's meter when it exists.

    ``resolve`` sets the runtime up (from the environment) and binds every deferred meter; it is
    called by the first measurement made before an explicit ``setup_telemetry``. ``early`` keeps the
    measurements made while that runtime is provisional. A deferred meter may be bound again, to the
    runtime that replaces a provisional one: every instrument it made is then bound again.
    """

    def __init__(
        self,
        name: str,
        version: str | None,
        schema_url: str | None,
        resolve: Callable[[], None],
        early: EarlyMeasurements | None = None,
    ) -> None:
        super().__init__(name, version, schema_url)
        self._resolve = resolve
        self.early = early if early is not None else EarlyMeasurements()
        self._lock = threading.Lock()
        self._real: Meter | None = None
        self._binders: list[Callable[[Meter], None]] = []

    def bind(self, meter: Meter) -> None:
        """Bind every instrument created so far (and every later one) to ``meter``."""
        with self._lock:
            self._real = meter
            binders = list(self._binders)
        for binder in binders:
            binder(meter)

    def _defer(self, binder: Callable[[Meter], None]) -> bool:
        """Remember ``binder`` (to bind again on a new runtime); True when not bound yet."""
        with self._lock:
            self._binders.append(binder)
            return self._real is None

    def _meter(self) -> Meter:
        with self._lock:
            real = self._real
        if real is None:
            self._resolve()
            with self._lock:
                real = self._real
        if real is None:  # resolve() must bind us; this is a programming error if it did not
            raise RuntimeError(f"deferred meter {self.name!r} was not bound by setting up telemetry")
        return real

    def create_counter(self, name: str, unit: str = "", description: str = "") -> Counter:
        """A counter that records into the shared runtime once it exists."""
        counter = _DeferredCounter(name, unit, description, self)
        if not self._defer(counter.bind):
            counter.bind(self._meter())
        return counter

    def create_up_down_counter(self, name: str, unit: str = "", description: str = "") -> UpDownCounter:
        """An up-down counter that records into the shared runtime once it exists."""
        counter = _DeferredUpDownCounter(name, unit, description, self)
        if not self._defer(counter.bind):
            counter.bind(self._meter())
        return counter

    def create_histogram(
        self,
        name: str,
        unit: str = "",
        description: str = "",
        *,
        explicit_bucket_boundaries_advisory: Sequence[float] | None = None,
    ) -> Histogram:
        """A histogram that records into the shared runtime once it exists."""
        histogram = _DeferredHistogram(name, unit, description, self, explicit_bucket_boundaries_advisory)
        if not self._defer(histogram.bind):
            histogram.bind(self._meter())
        return histogram

    def create_gauge(self, name: str, unit: str = "", description: str = "") -> _Gauge:
        """A synchronous gauge that records into the shared runtime once it exists."""
        gauge = _DeferredGauge(name, unit, description, self)
        if not self._defer(gauge.bind):
            gauge.bind(self._meter())
        return gauge

    def create_observable_counter(
        self, name: str, callbacks: Sequence[CallbackT] | None = None, unit: str = "", description: str = ""
    ) -> ObservableCounter:
        """An observable counter registered with the shared runtime when it is set up."""
        instrument = _DeferredObservableCounter(name, unit, description)
        self._observe(lambda m: m.create_observable_counter(name, callbacks, unit, description))
        return instrument

    def create_observable_gauge(
        self, name: str, callbacks: Sequence[CallbackT] | None = None, unit: str = "", description: str = ""
    ) -> ObservableGauge:
        """An observable gauge registered with the shared runtime when it is set up."""
        instrument = _DeferredObservableGauge(name, unit, description)
        self._observe(lambda m: m.create_observable_gauge(name, callbacks, unit, description))
        return instrument

    def create_observable_up_down_counter(
        self, name: str, callbacks: Sequence[CallbackT] | None = None, unit: str = "", description: str = ""
    ) -> ObservableUpDownCounter:
        """An observable up-down counter registered with the shared runtime when it is set up."""
        instrument = _DeferredObservableUpDownCounter(name, unit, description)
        self._observe(lambda m: m.create_observable_up_down_counter(name, callbacks, unit, description))
        return instrument

    def _observe(self, create: Callable[[Meter], Any]) -> None:
        if not self._defer(create):
            create(self._meter())


class _DeferredSync:
    """Shared binding and recording logic of the deferred synchronous instruments."""

    _real: Any
    _spec: tuple[str, str, str]
    _owner: DeferredMeter

    def _target(self, owner: DeferredMeter) -> Any:
        real = self._real
        if real is None:
            owner._meter()  # sets the runtime up and binds this instrument
            real = self._real
        return real

    def _record(
        self, method: str, amount: int | float, attributes: Attributes, context: Context | None
    ) -> None:
        real = self._target(self._owner)  # first: this may set the provisional runtime up
        early = self._owner.early
        if early.active:
            with early.lock:
                if early.active:  # still provisional: record there, and keep it for a replay
                    getattr(self._real, method)(amount, attributes, context)
                    early.keep(self, method, amount, attributes)
                    return
            real = self._real  # replaced meanwhile: bound to the new runtime by now
        getattr(real, method)(amount, attributes, context)


class _DeferredCounter(_DeferredSync, Counter):
    def __init__(self, name: str, unit: str, description: str, owner: DeferredMeter) -> None:
        # The API's Instrument.__init__ is abstract and empty: the spec is kept here instead.
        self._spec = (name, unit, description)
        self._owner = owner
        self._real: Counter | None = None

    def bind(self, meter: Meter) -> None:
        self._real = meter.create_counter(*self._spec)

    def add(self, amount: int | float, attributes: Attributes = None, context: Context | None = None) -> None:
        self._record("add", amount, attributes, context)


class _DeferredUpDownCounter(_DeferredSync, UpDownCounter):
    def __init__(self, name: str, unit: str, description: str, owner: DeferredMeter) -> None:
        # The API's Instrument.__init__ is abstract and empty: the spec is kept here instead.
        self._spec = (name, unit, description)
        self._owner = owner
        self._real: UpDownCounter | None = None

    def bind(self, meter: Meter) -> None:
        self._real = meter.create_up_down_counter(*self._spec)

    def add(self, amount: int | float, attributes: Attributes = None, context: Context | None = None) -> None:
        self._record("add", amount, attributes, context)


class _DeferredHistogram(_DeferredSync, Histogram):
    def __init__(
        self,
        name: str,
        unit: str,
        description: str,
        owner: DeferredMeter,
        boundaries: Sequence[float] | None,
    ) -> None:
        # The API's Instrument.__init__ is abstract and empty: the spec is kept here instead.
        self._spec = (name, unit, description)
        self._owner = owner
        self._boundaries = boundaries
        self._real: Histogram | None = None

    def bind(self, meter: Meter) -> None:
        self._real = meter.create_histogram(*self._spec, explicit_bucket_boundaries_advisory=self._boundaries)

    def record(
        self, amount: int | float, attributes: Attributes = None, context: Context | None = None
    ) -> None:
        self._record("record", amount, attributes, context)


class _DeferredGauge(_DeferredSync, _Gauge):
    def __init__(self, name: str, unit: str, description: str, owner: DeferredMeter) -> None:
        # The API's Instrument.__init__ is abstract and empty: the spec is kept here instead.
        self._spec = (name, unit, description)
        self._owner = owner
        self._real: _Gauge | None = None

    def bind(self, meter: Meter) -> None:
        self._real = meter.create_gauge(*self._spec)

    def set(self, amount: int | float, attributes: Attributes = None, context: Context | None = None) -> None:
        self._record("set", amount, attributes, context)


class _DeferredObservableCounter(ObservableCounter):
    def __init__(self, name: str, unit: str = "", description: str = "") -> None:
        super().__init__(name, unit=unit, description=description)


class _DeferredObservableGauge(ObservableGauge):
    def __init__(self, name: str, unit: str = "", description: str = "") -> None:
        super().__init__(name, unit=unit, description=description)


class _DeferredObservableUpDownCounter(ObservableUpDownCounter):
    def __init__(self, name: str, unit: str = "", description: str = "") -> None:
        super().__init__(name, unit=unit, description=description)
