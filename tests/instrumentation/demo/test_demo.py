"""The demo runtime, tested through its public API and real collection cycles."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import Counter
from collections.abc import Callable, Iterator

import psutil
import pytest
from opentelemetry.sdk.metrics.export import HistogramDataPoint, Metric, NumberDataPoint

from telemetry_otel import Collection, Telemetry, TelemetryConfig
from telemetry_otel.instrumentation.demo import BUSES, SERVICES, DemoRuntime, build_demo

TelemetryFactory = Callable[..., Telemetry]

EXPECTED_SERVICES = {
    "graph": ("memory", "config", "telemetry", "audit", "incident_management", "tsdb_consolidation"),
    "infrastructure": (
        "time",
        "shutdown",
        "initialization",
        "authentication",
        "resource_monitor",
        "database_maintenance",
        "secrets",
    ),
    "governance": ("wise_authority", "adaptive_filter", "visibility", "self_observation"),
    "runtime": ("llm", "runtime_control", "task_scheduler", "secrets_tool"),
}
#: Words that are component names but also name the domain of what is measured: the namespace
#: of ``llm.tokens.input`` (reported by llm and both LLM providers), ``process.memory.usage`` (an OTel
#: semantic-convention name), ``memory.graph.nodes``, ``audit.events`` and ``secrets.accessed`` (reported
#: by secrets and secrets_tool), and ``telemetry.collection.*``: the collector's own namespace, about
#: every component, not the demo's ``telemetry`` service. They name the subject, not the reporter; no
#: other component name may appear as a part of a metric name.
DOMAIN_WORDS = {"llm", "memory", "audit", "secrets", "telemetry"}
#: The collector's series about the whole runtime: the only ones with no component or bus attribute.
RUNTIME_WIDE = {"telemetry.collections", "telemetry.collection.duration", "telemetry.collection.timestamp"}
#: The demo API's HTTP server series: identified by their route, not by a service.
HTTP_SERIES = {"http.server.request.duration", "http.server.active_requests"}


@pytest.fixture
def make_telemetry() -> Iterator[TelemetryFactory]:
    created: list[Telemetry] = []

    def make(disabled: bool = False) -> Telemetry:
        runtime = Telemetry(TelemetryConfig(service_name="demo-test", disabled=disabled))
        created.append(runtime)
        return runtime

    yield make
    for runtime in created:
        runtime.shutdown()


@pytest.fixture
def demo_telemetry(make_telemetry: TelemetryFactory) -> Telemetry:
    return make_telemetry()


def _metrics(collection: Collection) -> dict[str, Metric]:
    found: dict[str, Metric] = {}
    for resource_metrics in collection.metrics.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                found[metric.name] = metric
    return found


def _values(collection: Collection, name: str) -> dict[str, float]:
    """Metric ``name``'s value per ``service.name`` (single-series metrics only)."""
    metric = _metrics(collection).get(name)
    if metric is None:
        return {}
    values: dict[str, float] = {}
    for point in metric.data.data_points:
        assert isinstance(point, NumberDataPoint)
        service = str(point.attributes["service.name"]) if point.attributes else ""
        assert service not in values, f"{name} has several series for {service}"
        values[service] = point.value
    return values


def _collect(telemetry: Telemetry) -> Collection:
    return asyncio.run(telemetry.collect())


def _run(telemetry: Telemetry, seed: int, steps: int) -> DemoRuntime:
    demo = DemoRuntime(telemetry, seed=seed)
    for _ in range(steps):
        demo.step()
    return demo


def test_layout_has_21_services_in_4_categories_and_6_buses(demo_telemetry: Telemetry) -> None:
    assert dict(SERVICES) == EXPECTED_SERVICES
    demo = build_demo(demo_telemetry, seed=1)
    components = {component.name: component for component in demo_telemetry.components}
    services = {name: component.category for name, component in components.items() if component.is_service}
    assert len(services) == 21
    assert services == {name: category for category, names in SERVICES.items() for name in names}
    assert set(demo.services) == set(components)

    buses = demo_telemetry.components.buses()
    assert set(buses) == {"llm", "memory", "communication", "wise", "tool", "runtime_control"}
    assert {bus: tuple(providers) for bus, providers in buses.items()} == dict(BUSES)
    for providers in buses.values():
        for component in providers.values():
            assert component in components
    assert len(buses["llm"]) == 2
    assert not any(components[name].is_service for name in buses["llm"].values())
    assert len(buses["memory"]) == 2
    assert "memory" in buses["memory"].values()
    assert sum(not components[name].is_service for name in buses["memory"].values()) == 1
    assert len(buses["communication"]) >= 1
    assert list(buses["wise"].values()) == ["wise_authority"]
    assert "secrets_tool" in buses["tool"].values()
    assert list(buses["runtime_control"].values()) == ["runtime_control"]


def test_activity_reaches_every_component_and_every_snapshot_succeeds(demo_telemetry: Telemetry) -> None:
    demo = _run(demo_telemetry, seed=3, steps=40)
    collection = _collect(demo_telemetry)

    requests = _values(collection, "service.requests")
    assert set(requests) == set(demo.services)
    assert all(count > 0 for count in requests.values()), requests
    llm_components = {"llm", *BUSES["llm"]}
    for name in ("llm.tokens.input", "llm.tokens.output", "llm.cost"):
        values = _values(collection, name)
        assert set(values) == llm_components
        assert all(value > 0 for value in values.values()), (name, values)
        # the llm service's totals are what it consumed through its providers
        assert values["llm"] == pytest.approx(sum(values[provider] for provider in BUSES["llm"]))
    assert _values(collection, "service.queue.depth")
    assert any(hits > 0 for hits in _values(collection, "service.cache.hits").values())

    with_snapshot = {name for name, outcome in collection.outcomes.items() if outcome.outcome != "none"}
    assert {"memory", "resource_monitor", "openai_primary", "wise_authority"} <= with_snapshot
    for name, outcome in collection.outcomes.items():
        assert outcome.outcome in ("ok", "none"), (name, outcome)
        assert not outcome.problems, (name, outcome.problems)
    assert all(component.health is not None for component in demo_telemetry.components)


@pytest.mark.parametrize("seed", [None, 0, 11])
def test_first_collection_already_shows_activity_everywhere(
    demo_telemetry: Telemetry, seed: int | None
) -> None:
    demo = build_demo(demo_telemetry, seed=seed)
    requests = _values(_collect(demo_telemetry), "service.requests")
    assert set(requests) == set(demo.services)
    assert all(count > 0 for count in requests.values()), requests


def test_breaker_state_is_one_series_per_state_with_exactly_one_set(demo_telemetry: Telemetry) -> None:
    _run(demo_telemetry, seed=3, steps=8)
    metric = _metrics(_collect(demo_telemetry))["service.circuit_breaker.state"]
    states: dict[str, dict[str, float]] = {}
    for point in metric.data.data_points:
        assert isinstance(point, NumberDataPoint)
        assert point.attributes is not None
        service = str(point.attributes["service.name"])
        states.setdefault(service, {})[str(point.attributes["circuit_breaker.state"])] = point.value
    assert {"openai_primary", "openai_fallback", "llm", "wise_authority", "memory_replica"} <= set(states)
    for by_state in states.values():
        assert set(by_state) == {"closed", "open", "half_open"}
        assert sorted(by_state.values()) == [0, 0, 1]


def test_same_seed_gives_the_same_values_and_another_seed_does_not(make_telemetry: TelemetryFactory) -> None:
    def simulated(seed: int) -> tuple[dict[str, float], ...]:
        telemetry = make_telemetry()
        _run(telemetry, seed=seed, steps=30)
        collection = _collect(telemetry)
        names = ("service.requests", "service.errors", "llm.tokens.input", "llm.tokens.output", "llm.cost")
        return tuple(_values(collection, name) for name in names)

    first = simulated(11)
    assert simulated(11) == first
    assert simulated(12) != first


def test_resource_monitor_reports_this_process(demo_telemetry: Telemetry) -> None:
    build_demo(demo_telemetry, seed=1)
    collection = _collect(demo_telemetry)
    rss = psutil.Process().memory_info().rss

    def reading(name: str) -> float:
        values = _values(collection, name)
        assert set(values) == {"resource_monitor"}, (name, values)
        return values["resource_monitor"]

    assert reading("process.memory.usage") == pytest.approx(rss, rel=0.2)
    assert reading("process.memory.virtual") >= reading("process.memory.usage")
    assert 0 <= reading("process.cpu.utilization") <= (os.cpu_count() or 1)
    assert reading("process.threads") >= 1
    assert 0 < reading("system.memory.utilization") <= 1


def test_metric_names_never_name_a_component_and_always_have_unit_and_description(
    demo_telemetry: Telemetry,
) -> None:
    demo = _run(demo_telemetry, seed=5, steps=4)
    metrics = _metrics(_collect(demo_telemetry))
    components = set(demo.services) | set(BUSES)
    instance_only = set(demo.services) - {name for names in SERVICES.values() for name in names}
    assert len(metrics) >= 20
    for name, metric in metrics.items():
        assert not (components - DOMAIN_WORDS) & set(name.split(".")), name
        assert not any(provider in name for provider in instance_only), name
        assert metric.unit, name
        assert metric.description, name
        for point in metric.data.data_points:
            assert isinstance(point, NumberDataPoint | HistogramDataPoint)
            if name in RUNTIME_WIDE:
                continue
            assert point.attributes, name
            if name in HTTP_SERIES:
                assert point.attributes["http.request.method"] in {"GET", "POST"}, name
                assert point.attributes.get("http.route", "/demo/").startswith("/demo/"), name
                continue
            owner = point.attributes.get("service.name")
            if owner is None:  # a bus series: identified by its bus
                assert point.attributes["bus.name"] in demo.buses, name
            else:
                assert owner in demo.services, name


def test_default_seed_mostly_passes_with_varying_health_over_a_minute(demo_telemetry: Telemetry) -> None:
    demo = build_demo(demo_telemetry)
    seen: Counter[str] = Counter()
    history: dict[str, list[str]] = {name: [] for name in demo.services}
    for _ in range(240):  # 60 simulated seconds
        demo.step()
        for component in demo_telemetry.components:
            health = component.health
            assert health is not None
            assert (health.status == "pass") == (health.reason is None), health
            seen[health.status] += 1
            history[component.name].append(health.status)
    assert seen["pass"] / sum(seen.values()) > 0.9
    assert seen["warn"] > 0
    assert seen["fail"] > 0
    recovered = [name for name, statuses in history.items() if "fail" in statuses and statuses[-1] == "pass"]
    assert recovered, "an open breaker should half-open and close again"


def test_close_unregisters_everything(make_telemetry: TelemetryFactory) -> None:
    for disabled in (False, True):
        telemetry = make_telemetry(disabled)
        demo = build_demo(telemetry, seed=2)
        assert len(telemetry.components) == len(demo.services) > 21
        demo.close()
        demo.close()
        assert len(telemetry.components) == 0
        assert not demo.services
        assert all(not providers for providers in telemetry.components.buses().values())
        with pytest.raises(RuntimeError):
            demo.step()
        if not disabled:
            assert not _values(_collect(telemetry), "service.requests")
        build_demo(telemetry, seed=2).close()  # the names are free again


def test_run_steps_on_wall_time_until_cancelled_or_closed(demo_telemetry: Telemetry) -> None:
    demo = DemoRuntime(demo_telemetry, seed=9, tick_seconds=0.01)

    async def main() -> None:
        task = asyncio.create_task(demo.run())
        await asyncio.sleep(0.15)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    before = sum(_values(_collect(demo_telemetry), "service.requests").values())
    asyncio.run(main())
    after = sum(_values(_collect(demo_telemetry), "service.requests").values())
    assert after > before
    demo.close()
    asyncio.run(asyncio.wait_for(demo.run(), timeout=1.0))  # a closed runtime's run() just returns


def test_durations_must_be_positive(demo_telemetry: Telemetry) -> None:
    with pytest.raises(ValueError, match="tick_seconds"):
        DemoRuntime(demo_telemetry, tick_seconds=0)
    demo = DemoRuntime(demo_telemetry, seed=1)
    with pytest.raises(ValueError, match="dt_seconds"):
        demo.step(-1.0)
    with pytest.raises(ValueError, match="dt_seconds"):
        demo.step(float("nan"))


def test_max_requests_stops_the_traffic_of_run_and_freezes_the_counts(demo_telemetry: Telemetry) -> None:
    demo = DemoRuntime(demo_telemetry, seed=8, tick_seconds=0.01, max_requests=300)

    async def run_a_while() -> None:
        task = asyncio.create_task(demo.run())
        done, _ = await asyncio.wait({task}, timeout=20)
        assert task in done  # run() ended by itself once the requests were handled

    asyncio.run(run_a_while())
    handled = demo.requests
    assert handled >= 300
    frozen = _metrics(_collect(demo_telemetry))["service.requests"]
    later = _metrics(_collect(demo_telemetry))["service.requests"]
    assert [p.value for p in frozen.data.data_points] == [p.value for p in later.data.data_points]
    assert demo.requests == handled
    with pytest.raises(ValueError, match="max_requests must be a positive number"):
        DemoRuntime(demo_telemetry, max_requests=0)
    demo.close()
