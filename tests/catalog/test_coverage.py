"""Coverage: real metric data from a real runtime compared with small catalogs, one finding kind at a time."""

from __future__ import annotations

import asyncio
import json
import pathlib
from collections.abc import Callable, Iterator

import pytest
from opentelemetry.metrics import Meter
from opentelemetry.sdk.metrics.export import MetricsData

from telemetry_otel import Telemetry, TelemetryConfig
from telemetry_otel.catalog import (
    FINDING_KINDS,
    Catalog,
    CoverageReport,
    compare,
    coverage_json,
    demo_catalog,
    load_catalog,
    next_json,
    render_coverage,
    render_next,
    render_todo,
    todo_json,
)
from telemetry_otel.instrumentation.demo import DemoRuntime

CATALOG = """\
groups:
  - id: registry.jobs
    type: attribute_group
    brief: Attributes of the job runner.
    attributes:
      - id: service.name
        type: string
        stability: development
        brief: Service.
      - id: bus.name
        type: string
        stability: development
        brief: Bus.
      - id: job.kind
        type:
          members:
            - {id: import, value: import, stability: development}
            - {id: export, value: export, stability: development}
        stability: development
        brief: Kind of job.

  - id: metric.jobs.done
    type: metric
    metric_name: jobs.done
    brief: Jobs finished.
    instrument: counter
    unit: "{job}"
    stability: development
    attributes:
      - ref: service.name
        requirement_level: required
      - ref: job.kind
    annotations: {telemetry_otel: {owner: {services: all}, priority: HIGH}}

  - id: metric.jobs.queued
    type: metric
    metric_name: jobs.queued
    brief: Jobs waiting.
    instrument: updowncounter
    unit: "{job}"
    stability: development
    attributes:
      - ref: service.name
    annotations: {telemetry_otel: {owner: {service: a}, priority: MEDIUM}}

  - id: metric.jobs.failed
    type: metric
    metric_name: jobs.failed
    brief: Jobs that failed.
    instrument: counter
    unit: "{job}"
    stability: development
    attributes:
      - ref: service.name
    annotations: {telemetry_otel: {owner: {services: all}, priority: LOW}}

  - id: metric.jobs.duration
    type: metric
    metric_name: jobs.duration
    brief: Time a job took.
    instrument: histogram
    unit: s
    stability: development
    attributes:
      - ref: service.name
    annotations: {telemetry_otel: {owner: {services: all}, priority: MEDIUM}}

  - id: metric.bus.jobs
    type: metric
    metric_name: bus.jobs
    brief: Jobs across a bus.
    instrument: counter
    unit: "{job}"
    stability: development
    attributes:
      - ref: bus.name
        requirement_level: required
    annotations: {telemetry_otel: {owner: {buses: all}, priority: HIGH}}

  - id: metric.runner.cycles
    type: metric
    metric_name: runner.cycles
    brief: Cycles the runner ran.
    instrument: gauge
    unit: "{cycle}"
    stability: development
    annotations: {telemetry_otel: {owner: {component: runner}, priority: LOW}}
"""

A = {"service.name": "a"}
B = {"service.name": "b"}


@pytest.fixture
def catalog(tmp_path: pathlib.Path) -> Catalog:
    path = tmp_path / "jobs.yaml"
    path.write_text(CATALOG, encoding="utf-8")
    loaded = load_catalog(path)
    assert loaded.ok, [str(finding) for finding in loaded.findings]
    return loaded


def _conforming(meter: Meter, *, skip: frozenset[str] = frozenset()) -> None:
    """Everything the catalog declares, from services a and b, bus x and the runner."""
    done = meter.create_counter("jobs.done", "{job}", "Jobs finished.")
    done.add(2, {**A, "job.kind": "import"})
    if "b.jobs.done" not in skip:
        done.add(1, B)
    meter.create_up_down_counter("jobs.queued", "{job}", "Jobs waiting.").add(3, A)
    if "jobs.failed" not in skip:
        failed = meter.create_counter("jobs.failed", "{job}", "Jobs that failed.")
        failed.add(1, A)
        failed.add(0, B)
    duration = meter.create_histogram("jobs.duration", "s", "Time a job took.")
    duration.record(0.5, A)
    duration.record(0.1, B)
    meter.create_counter("bus.jobs", "{job}", "Jobs across a bus.").add(3, {"bus.name": "x"})
    if "runner.cycles" not in skip:
        meter.create_gauge("runner.cycles", "{cycle}", "Cycles the runner ran.").set(7)


def _report(telemetry: Telemetry, catalog: Catalog, *recorders: Callable[[Meter], None]) -> CoverageReport:
    meter = telemetry.get_meter("jobs.test")
    for record in recorders:
        record(meter)
    return compare(catalog, telemetry.read_metrics())


def _kinds(report: CoverageReport) -> list[str]:
    return [finding.kind for finding in report.findings]


def test_a_conforming_run_covers_everything(telemetry: Telemetry, catalog: Catalog) -> None:
    report = _report(telemetry, catalog, _conforming)
    assert report.findings == ()
    assert report.percent == 100.0
    assert report.passed(100.0)
    assert [(owner.label, len(owner.declared), owner.percent) for owner in report.owners] == [
        ("service a", 4, 100.0),  # jobs.done, jobs.queued, jobs.failed, jobs.duration
        ("service b", 3, 100.0),  # the same but jobs.queued, which only a owns
        ("bus x", 1, 100.0),
        ("component runner", 1, 100.0),
    ]


def test_missing_declared_metric_with_its_priority(telemetry: Telemetry, catalog: Catalog) -> None:
    report = _report(telemetry, catalog, lambda meter: _conforming(meter, skip=frozenset({"jobs.failed"})))
    assert _kinds(report) == ["missing_metric"]
    finding = report.findings[0]
    assert (finding.metric, finding.priority) == ("jobs.failed", "LOW")
    assert finding.location is not None
    assert finding.location.line == CATALOG.splitlines().index("  - id: metric.jobs.failed") + 1
    assert [(gap.name, gap.priority, gap.emitted) for gap in report.missing] == [
        ("jobs.failed", "LOW", False)
    ]
    assert report.seen == ("jobs.done", "jobs.queued", "jobs.duration", "bus.jobs", "runner.cycles")
    assert report.percent == pytest.approx(100 * 5 / 6)
    # A missing metric is not a violation: only --fail-under turns it into a failure.
    assert report.violations == ()
    assert report.passed()
    assert not report.passed(100.0)
    assert report.below(100.0) == ["overall (83.3 %)", "service a (75.0 %)", "service b (66.7 %)"]
    assert report.passed(66.0)


def test_a_metric_missing_for_one_declared_owner(telemetry: Telemetry, catalog: Catalog) -> None:
    report = _report(telemetry, catalog, lambda meter: _conforming(meter, skip=frozenset({"b.jobs.done"})))
    assert _kinds(report) == ["missing_metric"]
    assert report.findings[0].message == "not emitted by service b (HIGH)"
    (gap,) = report.missing
    assert (gap.name, gap.emitted, gap.missing_for) == ("jobs.done", True, ("service b",))
    assert report.percent == 100.0  # seen somewhere...
    assert {owner.label: owner.missing for owner in report.owners}["service b"] == ("jobs.done",)
    assert report.below(100.0) == ["service b (66.7 %)"]  # ...but not by every owner


def test_undeclared_emitted_metric(telemetry: Telemetry, catalog: Catalog) -> None:
    def extra(meter: Meter) -> None:
        meter.create_counter("jobs.retried", "{job}", "Retries.").add(1, A)

    report = _report(telemetry, catalog, _conforming, extra)
    assert _kinds(report) == ["undeclared_metric"]
    finding = report.findings[0]
    assert finding.metric == "jobs.retried"
    assert (
        finding.message
        == "emitted as a counter in '{job}' by service a (1 points) but not declared in the catalog"
    )
    assert finding.location is None
    assert not report.passed()
    assert "jobs.retried" in report.emitted
    assert "jobs.retried" not in report.seen


def test_unit_mismatch(telemetry: Telemetry, catalog: Catalog) -> None:
    def wrong_unit(meter: Meter) -> None:
        meter.create_gauge("runner.cycles", "1", "Cycles.").set(1)

    report = _report(
        telemetry, catalog, lambda meter: _conforming(meter, skip=frozenset({"runner.cycles"})), wrong_unit
    )
    assert _kinds(report) == ["unit_mismatch"]
    assert report.findings[0].message == "emitted in '1', declared in '{cycle}'"
    assert report.findings[0].priority == "LOW"


def test_instrument_mismatch(telemetry: Telemetry, catalog: Catalog) -> None:
    def as_up_down(meter: Meter) -> None:
        meter.create_up_down_counter("jobs.failed", "{job}", "Jobs that failed.").add(1, A)

    report = _report(
        telemetry, catalog, lambda meter: _conforming(meter, skip=frozenset({"jobs.failed"})), as_up_down
    )
    assert _kinds(report) == ["missing_metric", "instrument_mismatch"]  # and b no longer reports it
    assert report.findings[1].message == "emitted as an updowncounter, declared as a counter"


def test_undeclared_attribute(telemetry: Telemetry, catalog: Catalog) -> None:
    def with_queue(meter: Meter) -> None:
        meter.create_counter("jobs.done", "{job}", "Jobs finished.").add(1, {**A, "job.queue": "slow"})

    report = _report(telemetry, catalog, _conforming, with_queue)
    assert _kinds(report) == ["undeclared_attribute"]
    assert report.findings[0].message == (
        "points carry attribute 'job.queue' (e.g. 'slow'), which the catalog does not list for this metric"
    )


def test_value_outside_an_enum_and_missing_required_attribute(telemetry: Telemetry, catalog: Catalog) -> None:
    def odd_points(meter: Meter) -> None:
        done = meter.create_counter("jobs.done", "{job}", "Jobs finished.")
        done.add(1, {**A, "job.kind": "purge"})
        done.add(1, {"job.kind": "export"})

    report = _report(telemetry, catalog, _conforming, odd_points)
    assert _kinds(report) == ["undefined_enum_value", "missing_attribute"]
    assert (
        report.findings[0].message
        == "attribute 'job.kind' takes 'purge', not a member of its enum ('import', 'export')"
    )
    assert report.findings[1].message == "1 of 4 points lack the required attribute 'service.name'"


def test_emitted_by_an_owner_the_catalog_does_not_name(telemetry: Telemetry, catalog: Catalog) -> None:
    def queued_by_b(meter: Meter) -> None:
        meter.create_up_down_counter("jobs.queued", "{job}", "Jobs waiting.").add(1, B)

    report = _report(telemetry, catalog, _conforming, queued_by_b)
    assert _kinds(report) == ["undeclared_owner"]
    assert report.findings[0].message == "emitted by service b, which its owner (service: a) does not name"


def test_next_and_todo_order_by_priority_then_what_is_worse(telemetry: Telemetry, catalog: Catalog) -> None:
    def only_done_by_a(meter: Meter) -> None:
        meter.create_counter("jobs.done", "{job}", "Jobs finished.").add(1, A)
        meter.create_counter("jobs.failed", "{job}", "Jobs that failed.").add(1, B)

    report = _report(telemetry, catalog, only_done_by_a)
    assert [(gap.name, gap.priority, gap.emitted) for gap in report.missing] == [
        ("bus.jobs", "HIGH", False),
        ("jobs.done", "HIGH", True),
        ("jobs.duration", "MEDIUM", False),
        ("jobs.queued", "MEDIUM", False),
        ("runner.cycles", "LOW", False),
        ("jobs.failed", "LOW", True),
    ]
    gap = report.next_missing()
    assert gap is not None
    assert gap.name == "bus.jobs"
    assert render_next(report).startswith(
        "HIGH bus.jobs: not emitted (counter in '{job}', owner buses: all, "
    )
    todo = render_todo(report)
    assert todo.index("HIGH (2):") < todo.index("MEDIUM (2):") < todo.index("LOW (2):")
    assert "  jobs.failed: not emitted by service a" in todo
    assert [item["metric"] for item in todo_json(report)["todo"]["HIGH"]] == ["bus.jobs", "jobs.done"]
    assert next_json(report)["next"]["metric"] == "bus.jobs"


def test_the_overflow_series_is_exempt_from_attribute_checks(telemetry: Telemetry, catalog: Catalog) -> None:
    def overflowed(meter: Meter) -> None:
        meter.create_counter("jobs.done", "{job}", "Jobs finished.").add(5, {"otel.metric.overflow": True})

    report = _report(telemetry, catalog, _conforming, overflowed)
    assert report.findings == ()


def test_the_views_derived_series_are_not_coverage(telemetry: Telemetry, catalog: Catalog) -> None:
    telemetry.get_meter("telemetry_otel.views").create_gauge("telemetry.view.score", "1", "Score.").set(0.9)
    report = _report(telemetry, catalog, _conforming)
    assert report.findings == ()
    assert "telemetry.view.score" not in report.emitted


def test_text_and_json_reports(telemetry: Telemetry, catalog: Catalog) -> None:
    def extra(meter: Meter) -> None:
        meter.create_counter("jobs.retried", "{job}", "Retries.").add(1, A)

    report = _report(
        telemetry, catalog, lambda meter: _conforming(meter, skip=frozenset({"jobs.failed"})), extra
    )
    text = render_coverage(report, source="a test", fail_under=90)
    assert "coverage: 5/6 declared metrics seen (83.3 %), 6 metrics emitted" in text
    assert "  LOW    jobs.failed: not emitted (" in text
    assert "undeclared metrics (1):\n  jobs.retried: emitted as a counter" in text
    assert "unit mismatches: none" in text
    assert text.endswith(
        "result: FAIL (1 conformance finding; below --fail-under 90 %: overall (83.3 %), "
        "service a (75.0 %), service b (66.7 %))"
    )
    document = json.loads(json.dumps(coverage_json(report, source="a test", fail_under=90)))
    assert document["coverage"] == {"declared": 6, "seen": 5, "percent": 83.33}
    assert document["undeclared"] == ["jobs.retried"]
    assert document["missing"][0]["metric"] == "jobs.failed"
    assert document["missing"][0]["priority"] == "LOW"
    assert document["counts"] == {
        kind: int(kind in ("missing_metric", "undeclared_metric")) for kind in FINDING_KINDS
    }
    assert document["passed"] is False


@pytest.fixture
def demo_run() -> Iterator[MetricsData]:
    runtime = Telemetry(TelemetryConfig(service_name="demo"))
    demo = DemoRuntime(runtime, seed=5)
    try:
        for _ in range(10):
            demo.step()
        yield asyncio.run(runtime.collect()).metrics
    finally:
        demo.close()
        runtime.shutdown()


def test_the_demo_catalog_covers_everything_the_demo_emits(demo_run: MetricsData) -> None:
    report = compare(demo_catalog(), demo_run)
    assert [str(finding) for finding in report.findings] == []
    assert report.percent == 100.0
    assert report.emitted == tuple(sorted(report.declared))
    assert all(owner.percent == 100.0 for owner in report.owners)
    labels = {owner.label for owner in report.owners}
    assert {
        "service llm",
        "service openai_primary",
        "bus llm",
        "bus runtime_control",
        "component collector",
    } <= labels
    assert report.passed(100.0)


def test_the_demo_catalog_briefs_are_the_emitted_descriptions(demo_run: MetricsData) -> None:
    catalog = demo_catalog()
    described = {
        metric.name: metric.description
        for resource_metrics in demo_run.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
    }
    assert {name: catalog.metric(name).brief for name in described} == described
