"""Meters handed out before the shared runtime is set up, bound to it once it is.

Service modules usually take their meter at import time (``meter = get_meter(__name__)``), before
the application calls ``setup_telemetry(...)``. A deferred meter lets that order work: its
instruments bind to the runtime when it is set up, and a measurement made before that sets the
runtime up from the environment, so nothing recorded is lost.
"""

from __future__ import annotations

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

__all__ = ["DeferredMeter"]


class DeferredMeter(Meter):
    """A meter whose instruments bind to the shared runtime's meter when it exists.

    ``resolve`` sets the runtime up (from the environment) and binds every deferred meter; it is
    called by the first measurement made before an explicit ``setup_telemetry``.
    """

    def __init__(
        self, name: str, version: str | None, schema_url: str | None, resolve: Callable[[], None]
    ) -> None:
        super().__init__(name, version, schema_url)
        self._resolve = resolve
        self._lock = threading.Lock()
        self._real: Meter | None = None
        self._binders: list[Callable[[Meter], None]] = []

    def bind(self, meter: Meter) -> None:
        """Bind every instrument created so far (and every later one) to ``meter``."""
        with self._lock:
            self._real = meter
            binders, self._binders = self._binders, []
        for binder in binders:
            binder(meter)

    def _defer(self, binder: Callable[[Meter], None]) -> bool:
        """Remember ``binder`` unless already bound; True when it was deferred."""
        with self._lock:
            if self._real is None:
                self._binders.append(binder)
                return True
        return False

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
    """Shared binding logic of the deferred synchronous instruments."""

    _real: Any
    _spec: tuple[str, str, str]

    def _target(self, owner: DeferredMeter) -> Any:
        real = self._real
        if real is None:
            owner._meter()  # sets the runtime up and binds this instrument
            real = self._real
        return real


class _DeferredCounter(_DeferredSync, Counter):
    def __init__(self, name: str, unit: str, description: str, owner: DeferredMeter) -> None:
        # The API's Instrument.__init__ is abstract and empty: the spec is kept here instead.
        self._spec = (name, unit, description)
        self._owner = owner
        self._real: Counter | None = None

    def bind(self, meter: Meter) -> None:
        self._real = meter.create_counter(*self._spec)

    def add(self, amount: int | float, attributes: Attributes = None, context: Context | None = None) -> None:
        self._target(self._owner).add(amount, attributes, context)


class _DeferredUpDownCounter(_DeferredSync, UpDownCounter):
    def __init__(self, name: str, unit: str, description: str, owner: DeferredMeter) -> None:
        # The API's Instrument.__init__ is abstract and empty: the spec is kept here instead.
        self._spec = (name, unit, description)
        self._owner = owner
        self._real: UpDownCounter | None = None

    def bind(self, meter: Meter) -> None:
        self._real = meter.create_up_down_counter(*self._spec)

    def add(self, amount: int | float, attributes: Attributes = None, context: Context | None = None) -> None:
        self._target(self._owner).add(amount, attributes, context)


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
        self._target(self._owner).record(amount, attributes, context)


class _DeferredGauge(_DeferredSync, _Gauge):
    def __init__(self, name: str, unit: str, description: str, owner: DeferredMeter) -> None:
        # The API's Instrument.__init__ is abstract and empty: the spec is kept here instead.
        self._spec = (name, unit, description)
        self._owner = owner
        self._real: _Gauge | None = None

    def bind(self, meter: Meter) -> None:
        self._real = meter.create_gauge(*self._spec)

    def set(self, amount: int | float, attributes: Attributes = None, context: Context | None = None) -> None:
        self._target(self._owner).set(amount, attributes, context)


class _DeferredObservableCounter(ObservableCounter):
    def __init__(self, name: str, unit: str = "", description: str = "") -> None:
        super().__init__(name, unit=unit, description=description)


class _DeferredObservableGauge(ObservableGauge):
    def __init__(self, name: str, unit: str = "", description: str = "") -> None:
        super().__init__(name, unit=unit, description=description)


class _DeferredObservableUpDownCounter(ObservableUpDownCounter):
    def __init__(self, name: str, unit: str = "", description: str = "") -> None:
        super().__init__(name, unit=unit, description=description)
