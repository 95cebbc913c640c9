"""The host's merge of its workers' components: worst health, worst outcome, the union of buses."""

from __future__ import annotations

from opentelemetry.sdk.metrics.export import MetricsData

from telemetry_otel import Collection, ComponentOutcome, ComponentRecord, HealthReport
from telemetry_otel.host._state import merge_states, state_document


def _document(health: str | None, outcome: str, buses: dict[str, dict[str, str]]) -> dict[str, object]:
    record = ComponentRecord(
        name="svc",
        category="runtime",
        attributes={"k": 1},
        has_snapshot=True,
        health=None if health is None else HealthReport(health, f"{health} reason", 5),  # type: ignore[arg-type]
        buses=tuple(sorted(buses)),
    )
    collection = Collection(
        metrics=MetricsData([]),
        outcomes={"svc": ComponentOutcome("svc", outcome, None if outcome == "ok" else "boom", 0.1, 9)},  # type: ignore[arg-type]
        time_unix_nano=10,
        duration_seconds=0.1,
        sdk_disabled=False,
        components=(record,),
        buses=buses,
    )
    return state_document(collection)


def test_a_component_s_host_health_and_outcome_are_the_worst_of_its_workers() -> None:
    components, outcomes, buses = merge_states(
        [
            _document("pass", "ok", {"llm": {"svc": "svc"}}),
            _document("fail", "error", {"tool": {"svc": "svc"}}),
            _document("warn", "timeout", {}),
        ]
    )
    [record] = components
    assert record.health is not None
    assert (record.health.status, record.health.reason) == ("fail", "fail reason")
    assert record.attributes == {"k": 1}
    assert (outcomes["svc"].outcome, outcomes["svc"].error) == ("error", "boom")
    assert buses == {"llm": {"svc": "svc"}, "tool": {"svc": "svc"}}


def test_a_component_no_worker_reported_health_for_stays_unknown() -> None:
    [record], _, _ = merge_states([_document(None, "ok", {}), _document(None, "ok", {})])
    assert record.health is None
