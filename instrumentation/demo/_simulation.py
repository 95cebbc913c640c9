"""``DemoRuntime``: registers the simulated agent runtime and advances it tick by tick."""

from __future__ import annotations

import asyncio
import math
import random
import threading
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from telemetry_otel import Snapshot, SnapshotFunction, Telemetry, current_telemetry
from telemetry_otel.instrumentation import Bus, InstrumentedService, instrument_service
from telemetry_otel.instrumentation.demo._catalog import BUSES, EXTRA_PROVIDERS, SERVICES, category_of
from telemetry_otel.instrumentation.demo._component import SimulatedComponent
from telemetry_otel.instrumentation.demo._domain import domain_for
from telemetry_otel.instrumentation.demo._http_api import API_PREFIX, DemoApi
from telemetry_otel.instrumentation.demo._llm import route_llm_request
from telemetry_otel.instrumentation.demo._profiles import PROFILES
from telemetry_otel.instrumentation.demo._resources import ProcessResources

__all__ = ["DEFAULT_SEED", "DemoRuntime", "build_demo"]

#: The seed used when none is given, so two default demos behave alike.
DEFAULT_SEED = 4
#: Components whose snapshot function is a coroutine (the others are plain functions).
_ASYNC_SNAPSHOTS = frozenset({"memory"})
_RESOURCE_MONITOR = "resource_monitor"
_LLM_ROUTER = "llm"
#: The name a ``bad_values`` component's snapshot returns without having declared it.
BAD_VALUE = "demo.undeclared"


class DemoRuntime:
    """A simulated AI-agent runtime: 21 services in 4 categories and 6 buses, with live activity.

    The constructor registers every component on ``telemetry``, attaches the bus providers and
    runs one :meth:`step`, in which every component handles at least one request (its start-up
    call), so the first collection already shows activity everywhere. All simulated values
    come from one ``random.Random(seed)`` (``seed=None`` means a fixed default seed), so a seed
    and a sequence of ``step`` durations always give the same numbers. ``resource_monitor`` is the
    exception: it reports this process's real CPU and memory. With ``max_requests``, :meth:`run`
    stops the simulated traffic after the tick in which that many requests were handled: from then
    on the counts, health and snapshots stay as they are (a frozen agent, for comparing exports).
    """

    def __init__(
        self,
        telemetry: Telemetry,
        *,
        seed: int | None = None,
        tick_seconds: float = 0.25,
        max_requests: int | None = None,
        bad_values: Iterable[str] = (),
        request_rate_per_second: float | None = None,
    ) -> None:
        _check_duration("tick_seconds", tick_seconds)
        if request_rate_per_second is not None:
            _check_duration("request_rate_per_second", request_rate_per_second)
        #: A fixed traffic instead of the random one: exactly this many requests per second of
        #: simulated time (whole requests, the remainder carried to the next tick), spread in turn
        #: over the services that take requests by themselves and have no breaker (none is ever
        #: rejected) among the runtime services, so the runtime's requests total grows at this rate.
        #: None: random traffic.
        self.request_rate_per_second = request_rate_per_second
        self._owed = 0.0
        self._turn = 0
        if max_requests is not None and max_requests < 1:
            raise ValueError(f"max_requests must be a positive number of requests, not {max_requests!r}")
        #: Components whose snapshot also returns :data:`BAD_VALUE`, a name they never declared: it
        #: is dropped and counted, and the component shows ``warn`` with the problem as its reason.
        self.bad_values = frozenset(bad_values)
        #: :meth:`run` stops its traffic after the tick in which this many requests were handled.
        self.max_requests = max_requests
        self._requests = 0
        self._telemetry = telemetry
        self._tick_seconds = tick_seconds
        self._rng = random.Random(DEFAULT_SEED if seed is None else seed)
        self._lock = threading.Lock()
        self._now = 0.0
        self._failing = 0
        self._closed = False
        self._started = False
        names = [name for names in SERVICES.values() for name in names] + list(EXTRA_PROVIDERS)
        unknown = sorted(self.bad_values - set(names))
        if unknown:
            raise ValueError(f"unknown component {unknown[0]!r}; known: {', '.join(sorted(names))}")
        self._components = {
            name: SimulatedComponent(name, PROFILES[name], domain_for(name)) for name in names
        }
        self._llm_providers = [self._components[name] for name in BUSES["llm"]]
        self._resources = ProcessResources()
        # Its own generator, so the API's simulated clients leave the simulation's numbers as they were.
        self._api = DemoApi(telemetry, self._statuses, seed=(DEFAULT_SEED if seed is None else seed) + 1)
        self._failures: dict[str, tuple[float, float]] = {}
        self._services: dict[str, InstrumentedService] = {}
        self._buses: dict[str, Bus] = {}
        try:
            self._register()
        except BaseException:
            self.close()
            raise
        self.step()

    @property
    def requests(self) -> int:
        """Requests handled since the runtime started (every component's, routed ones included)."""
        return self._requests

    @property
    def services(self) -> Mapping[str, InstrumentedService]:
        """Every component this runtime registered (services and bus providers), by name."""
        return MappingProxyType(self._services)

    @property
    def buses(self) -> Mapping[str, Bus]:
        """The runtime's buses, by name, each with its providers attached."""
        return MappingProxyType(self._buses)

    @property
    def http_apps(self) -> Mapping[str, object]:
        """The runtime's own HTTP API by mount path (``/demo``), measured by ``HTTPMetricsMiddleware``:
        ``telemetry-otel serve --demo`` serves it next to the telemetry routes."""
        return MappingProxyType({API_PREFIX: self._api.app})

    def _statuses(self) -> dict[str, str]:
        return {name: component.health for name, component in self._components.items()}

    def step(self, dt_seconds: float | None = None) -> None:
        """Advance the simulation by one tick of ``dt_seconds`` (default: ``tick_seconds``).

        Draws each component's requests for the tick and records them, moves breakers, queues and
        domain state on, and makes every component report its health; then the API's simulated
        clients send their requests (unless an event loop runs in this thread: :meth:`run` does).
        """
        dt = self._tick_seconds if dt_seconds is None else dt_seconds
        _check_duration("dt_seconds", dt)
        if not self._advance(dt):
            raise RuntimeError("the demo runtime is closed")
        self._api.simulate_clients()

    async def run(self) -> None:
        """Call :meth:`step` every ``tick_seconds`` of wall time until cancelled or closed, or until
        ``max_requests`` requests were handled."""
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            deadline += self._tick_seconds
            delay = deadline - loop.time()
            if delay < 0:  # fell behind (a blocked loop): resume the rhythm instead of bursting
                deadline, delay = loop.time(), 0.0
            await asyncio.sleep(delay)
            if self.max_requests is not None and self._requests >= self.max_requests:
                return  # the traffic stops: every count stays where it is
            if not self._advance(self._tick_seconds):
                return
            await self._api.simulate_clients_async()

    def _advance(self, dt: float) -> bool:
        """One tick of ``dt`` seconds; False (and nothing done) once the runtime is closed."""
        with self._lock:
            if self._closed:
                return False
            self._now += dt
            now, rng = self._now, self._rng
            simulated = list(self._components.values())
            self._apply_failures(now)
            for component in simulated:
                component.begin_tick(rng, now, dt)
            router = self._components[_LLM_ROUTER]
            fixed = self._fixed_counts(simulated, router, dt)
            for component in simulated:
                count = component.own_traffic(rng, dt) if fixed is None else fixed.get(component.name, 0)
                if not self._started and not component.profile.routed:
                    count = max(count, 1)  # every component answers its start-up call
                for _ in range(count):
                    if component is router:
                        route_llm_request(rng, router, self._llm_providers, now)
                    else:
                        component.serve(rng, now)
            if not self._started:  # the llm service probes each provider once at start-up
                for provider in self._llm_providers:
                    route_llm_request(rng, router, [provider], now)
            for component in simulated:
                self._requests += component.tick_requests
                component.end_tick(rng, now, dt, self._failing)
            self._failing = sum(component.health == "fail" for component in simulated)
            self._started = True
            return True

    def _fixed_counts(
        self, simulated: list[SimulatedComponent], router: SimulatedComponent, dt: float
    ) -> dict[str, int] | None:
        """Each component's requests of this tick under a fixed rate (None: the traffic is random)."""
        rate = self.request_rate_per_second
        if rate is None:
            return None
        takers = [
            c
            for c in simulated
            if c is not router and not c.profile.routed and c.breaker is None and category_of(c.name)
        ]
        self._owed += rate * dt
        due = int(self._owed)
        self._owed -= due
        counts: dict[str, int] = {}
        for offset in range(due):
            name = takers[(self._turn + offset) % len(takers)].name
            counts[name] = counts.get(name, 0) + 1
        self._turn = (self._turn + due) % len(takers)
        return counts

    def fail(self, name: str, *, after_seconds: float = 0.0, for_seconds: float | None = None) -> None:
        """Make component ``name`` fail on purpose, so a real alert can be seen: from ``after_seconds``
        of simulated time from now, for ``for_seconds`` (None: until :meth:`recover`). While it fails,
        every request it handles is an error (a breaker, if it has one, opens) and it reports ``fail``;
        afterwards it recovers as it would from any failure (a breaker cools down first)."""
        if name not in self._components:
            raise ValueError(f"unknown component {name!r}; known: {', '.join(sorted(self._components))}")
        if not (math.isfinite(after_seconds) and after_seconds >= 0):
            raise ValueError(f"after_seconds must be >= 0, not {after_seconds!r}")
        if for_seconds is not None:
            _check_duration("for_seconds", for_seconds)
        with self._lock:
            start = self._now + after_seconds
            self._failures[name] = (start, math.inf if for_seconds is None else start + for_seconds)

    def recover(self, name: str) -> None:
        """End a failure :meth:`fail` caused (nothing happens when there is none)."""
        with self._lock:
            self._failures.pop(name, None)
            if name in self._components:
                self._components[name].forced_failure = False

    def _apply_failures(self, now: float) -> None:
        for name, (start, end) in list(self._failures.items()):
            self._components[name].forced_failure = start <= now < end
            if now >= end:
                del self._failures[name]

    def close(self) -> None:
        """Unregister every component (a second call does nothing)."""
        with self._lock:
            self._closed = True
            services = list(self._services.items())
            self._services.clear()
            buses = list(self._buses.values())
            self._buses.clear()
        for bus in buses:
            bus.close()
        for _, service in reversed(services):
            service.close()

    def _register(self) -> None:
        for name, component in self._components.items():
            metrics = component.metrics()
            if name == _RESOURCE_MONITOR:
                metrics += self._resources.metrics
            if name in self.bad_values and not metrics:
                raise ValueError(f"{name!r} has no snapshot function to return a bad value")
            service = instrument_service(
                name,
                category=category_of(name),
                snapshot=self._snapshot_function(component) if metrics else None,
                metrics=metrics,
                telemetry=self._telemetry,
            )
            component.service = service
            self._services[name] = service
        for name, providers in BUSES.items():
            bus = Bus(name, telemetry=self._telemetry)
            for provider in providers:
                bus.attach(self._services[provider])
            self._buses[name] = bus

    def _snapshot_function(self, component: SimulatedComponent) -> SnapshotFunction:
        def read() -> Snapshot:
            with self._lock:
                values = component.snapshot()
            if component.name == _RESOURCE_MONITOR:
                values.update(self._resources.sample())
            if component.name in self.bad_values:
                values[BAD_VALUE] = 1
            return values

        async def read_async() -> Snapshot:
            await asyncio.sleep(0)  # stands for an awaited store query
            return read()

        return read_async if component.name in _ASYNC_SNAPSHOTS else read


def build_demo(
    telemetry: Telemetry | None = None,
    *,
    seed: int | None = None,
    failures: Mapping[str, tuple[float, float | None]] | None = None,
    max_requests: int | None = None,
    bad_values: Iterable[str] = (),
    request_rate_per_second: float | None = None,
) -> DemoRuntime:
    """A :class:`DemoRuntime` on ``telemetry`` (default: :func:`telemetry_otel.current_telemetry`).

    ``failures`` maps component names to ``(after_seconds, for_seconds)``: see :meth:`DemoRuntime.fail`;
    ``max_requests`` stops the simulated traffic once that many requests were handled;
    ``bad_values`` names components whose snapshot also returns a value that is dropped;
    ``request_rate_per_second`` makes the traffic a fixed rate.
    """
    runtime = telemetry if telemetry is not None else current_telemetry()
    demo = DemoRuntime(
        runtime,
        seed=seed,
        max_requests=max_requests,
        bad_values=bad_values,
        request_rate_per_second=request_rate_per_second,
    )
    try:
        for name, (after, duration) in (failures or {}).items():
            demo.fail(name, after_seconds=after, for_seconds=duration)
    except BaseException:
        demo.close()
        raise
    return demo


def _check_duration(name: str, seconds: float) -> None:
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"{name} must be a positive number of seconds, not {seconds!r}")
