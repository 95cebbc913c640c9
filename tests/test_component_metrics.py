"""``/metrics`` alone describes a collection: components, bus membership, reported health, outcomes."""

from __future__ import annotations

import asyncio
import time

from opentelemetry.sdk.metrics.export import MetricsData, NumberDataPoint

from telemetry_otel import Snapshot, Telemetry
from telemetry_otel.instrumentation import Bus, gauge, instrument_service

DEPTH = gauge("work.queue.depth", "{item}", "Items waiting.")


def _points(data: MetricsData, name: str) -> list[tuple[dict[str, object], float]]:
    found = []
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name == name:
                    for point in metric.data.data_points:
                        assert isinstance(point, NumberDataPoint)
                        found.append((dict(point.attributes or {}), float(point.value)))
    return found


def test_components_health_buses_and_outcomes_are_series_of_the_collection(telemetry: Telemetry) -> None:
    def broken() -> Snapshot:
        raise OSError("disk")

    llm = instrument_service(
        "llm",
        category="runtime",
        snapshot=lambda: {"work.queue.depth": 3},
        metrics=[DEPTH],
        telemetry=telemetry,
    )
    instrument_service("store", category="graph", snapshot=broken, metrics=[DEPTH], telemetry=telemetry)
    provider = instrument_service("openai", telemetry=telemetry)  # a bus-only provider, no snapshot
    bus = Bus("llm_bus", telemetry=telemetry)
    bus.attach(provider)
    llm.report_health("warn", "slow")
    before = time.time_ns()
    collection = asyncio.run(telemetry.collect())
    data = collection.metrics

    info = {str(a["service.name"]): a for a, value in _points(data, "telemetry.component.info") if value == 1}
    assert info["llm"] == {
        "service.name": "llm",
        "component.kind": "service",
        "service.category": "runtime",
        "component.snapshot": "true",
    }
    assert info["openai"] == {
        "service.name": "openai",
        "component.kind": "provider",
        "component.snapshot": "false",
    }
    assert [a for a, _ in _points(data, "telemetry.component.bus")] == [
        {"service.name": "openai", "bus.name": "llm_bus", "bus.provider": "openai"}
    ]
    health = {
        (a["service.name"], a["health.status"]): v for a, v in _points(data, "telemetry.component.health")
    }
    assert health == {("llm", "pass"): 0, ("llm", "warn"): 1, ("llm", "fail"): 0}  # store never reported
    (reported,) = _points(data, "telemetry.component.health.timestamp")
    assert reported[1] == collection.component("llm").health.time_unix_nano / 1e9  # type: ignore[union-attr]
    outcomes = {
        (a["service.name"], a["collection.outcome"]): v
        for a, v in _points(data, "telemetry.collection.outcome")
    }
    assert outcomes == {
        ("llm", "ok"): 1,
        ("llm", "error"): 0,
        ("llm", "timeout"): 0,
        ("store", "ok"): 0,
        ("store", "error"): 1,
        ("store", "timeout"): 0,
    }  # the provider has no snapshot function: no outcome series
    durations = {a["service.name"] for a, _ in _points(data, "telemetry.collection.snapshot.duration")}
    assert durations == {"llm", "store"}
    ((_, read_at),) = _points(data, "telemetry.collection.timestamp")
    assert before / 1e9 <= read_at <= collection.time_unix_nano / 1e9
    bus.close()


def test_a_health_reported_after_the_cycle_shows_from_the_next_one(telemetry: Telemetry) -> None:
    service = instrument_service("llm", category="runtime", telemetry=telemetry)
    first = asyncio.run(telemetry.collect()).metrics
    service.report_health("fail", "down")
    second = asyncio.run(telemetry.collect()).metrics
    assert _points(first, "telemetry.component.health") == []  # unknown: never reported, never 0
    assert {a["health.status"] for a, v in _points(second, "telemetry.component.health") if v == 1} == {
        "fail"
    }


def test_the_process_scrape_server_labels_every_sample_with_the_agent(telemetry: Telemetry) -> None:
    import urllib.request

    instrument_service("llm", category="runtime", telemetry=telemetry)
    address = telemetry.serve_prometheus("127.0.0.1", 0)
    assert address is not None
    with urllib.request.urlopen(f"http://127.0.0.1:{address[1]}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    samples = [line for line in text.splitlines() if line and not line.startswith(("#", "target_info"))]
    assert samples
    agent = telemetry.resource.attributes["service.name"]
    assert all(f'agent="{agent}"' in line for line in samples)
    assert any(line.startswith("telemetry_component_info{") for line in samples)


def test_reason_texts_are_info_series_bounded_in_number_and_length(telemetry: Telemetry) -> None:
    from telemetry_otel.vocabulary import REASON_TEXT_MAX_CHARS

    def broken() -> Snapshot:
        raise OSError("disk")

    llm = instrument_service(
        "llm",
        category="runtime",
        snapshot=lambda: {"work.queue.depth": 3, "not.declared": 1, "also.not": 2},
        metrics=[DEPTH],
        telemetry=telemetry,
    )
    instrument_service("store", category="graph", snapshot=broken, metrics=[DEPTH], telemetry=telemetry)
    quiet = instrument_service("quiet", category="graph", telemetry=telemetry)
    llm.report_health("warn", "slow " * 200)  # longer than any label should be
    quiet.report_health("pass")
    collection = asyncio.run(telemetry.collect())
    points = _points(collection.metrics, "telemetry.component.reason.timestamp")
    texts = {(str(a["service.name"]), str(a["reason.source"])): str(a["reason.text"]) for a, _ in points}
    assert set(texts) == {
        ("llm", "health"),
        ("llm", "snapshot.problems"),
        ("store", "snapshot.error"),
        ("quiet", "health"),
    }  # a reported health always (empty without a reason); nothing else without a text
    assert texts["quiet", "health"] == ""
    assert len(texts["llm", "health"]) == REASON_TEXT_MAX_CHARS
    assert texts["llm", "health"].endswith("\u2026")
    assert texts["llm", "health"].startswith("slow slow")
    assert texts["llm", "snapshot.problems"] == "\n".join(collection.outcomes["llm"].problems)
    assert len(collection.outcomes["llm"].problems) == 2
    assert texts["store", "snapshot.error"] == collection.outcomes["store"].error
    # The value is the collection's time, the same as telemetry.collection.timestamp's.
    ((_, read_at),) = _points(collection.metrics, "telemetry.collection.timestamp")
    assert {value for _, value in points} == {read_at}


def _reason_series(data: MetricsData) -> set[tuple[str, str, str]]:
    return {
        (str(a["service.name"]), str(a["reason.source"]), str(a["reason.text"]))
        for a, _ in _points(data, "telemetry.component.reason.timestamp")
    }


class _Handle:
    """An object whose text names its memory address, as many exceptions' texts do."""


def test_an_error_that_names_addresses_and_ids_is_one_reason_series(telemetry: Telemetry) -> None:
    """The same error raised each collection with another address, id and count is one series; the
    agent's own outcome keeps the full text."""
    calls = 0

    def broken() -> Snapshot:
        nonlocal calls
        calls += 1
        handle = _Handle()
        raise RuntimeError(f"request {1_000_000 + calls} failed on {handle!r} after {calls} tries")

    instrument_service("store", category="graph", snapshot=broken, metrics=[DEPTH], telemetry=telemetry)
    collections = [asyncio.run(telemetry.collect()) for _ in range(5)]
    errors = [collection.outcomes["store"].error for collection in collections]
    assert len(set(errors)) == 5  # the agent's own text: the full one, different each time
    assert all(error is not None and " object at 0x" in error for error in errors)
    seen = set().union(*(_reason_series(collection.metrics) for collection in collections))
    store = {text for name, source, text in seen if (name, source) == ("store", "snapshot.error")}
    # The address and the id masked; a short count stays (the bound below catches what is left).
    assert store == {
        f"RuntimeError: request \u2026 failed on <{__name__}._Handle object at 0x\u2026> after {n} tries"
        for n in range(1, 6)
    }


def test_distinct_reason_texts_per_component_are_bounded(telemetry: Telemetry) -> None:
    """Past the bound, a new text is one fixed text: a TSDB holds a bounded number of reason series."""
    from telemetry_otel._component_metrics import REASON_TEXTS_EXCEEDED, REASON_TEXTS_PER_SOURCE

    service = instrument_service("llm", category="runtime", telemetry=telemetry)
    texts: set[str] = set()
    for attempt in range(REASON_TEXTS_PER_SOURCE + 5):
        service.report_health("warn", f"slow on shard {attempt}")
        collection = asyncio.run(telemetry.collect())
        assert collection.component("llm").health.reason == f"slow on shard {attempt}"  # type: ignore[union-attr]
        texts |= {text for name, source, text in _reason_series(collection.metrics) if name == "llm"}
    assert len(texts) == REASON_TEXTS_PER_SOURCE + 1
    assert REASON_TEXTS_EXCEEDED in texts
    service.report_health("warn", "slow on shard 0")  # a text already written is written again
    collection = asyncio.run(telemetry.collect())
    assert ("llm", "health", "slow on shard 0") in _reason_series(collection.metrics)
