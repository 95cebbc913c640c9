"""``catalog check`` and ``coverage``, run as real processes on the installed package."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from telemetry_otel.catalog import demo_catalog

COMMAND = [sys.executable, "-m", "telemetry_otel"]
#: ``python -m`` puts the working directory first on sys.path: run outside the source tree so the
#: installed package is the one under test.
NEUTRAL_CWD = "/"

BAD = """\
groups:
  - id: metric.jobs.done
    type: metric
    metric_name: jobs.done
    brief: Jobs finished.
    instrument: counter
    unit: jobs
    stability: development
    attributes:
      - ref: job.kind
    annotations:
      telemetry_otel:
        owner: {services: all}
        priority: URGENT
"""

EXTRA = """\
groups:
  - id: metric.llm.cache.hits
    type: metric
    metric_name: llm.cache.hits
    brief: Prompts answered from the prompt cache.
    instrument: counter
    unit: "{prompt}"
    stability: development
    annotations:
      telemetry_otel:
        owner: {service: llm}
        priority: HIGH

  - id: metric.audit.bytes
    type: metric
    metric_name: audit.bytes
    brief: Bytes of audit log written.
    instrument: counter
    unit: By
    stability: development
    annotations:
      telemetry_otel:
        owner: {service: audit}
        priority: LOW
"""

APP = '''\
"""A tiny application for ``coverage --app``."""

from telemetry_otel.instrumentation import counter, instrument_service


class Jobs:
    def __init__(self, telemetry):
        self.done = 0
        self.service = instrument_service(
            "jobs",
            snapshot=lambda: {"jobs.done": self.done},
            metrics=[counter("jobs.done", "{job}", "Jobs finished.")],
            telemetry=telemetry,
        )

    def step(self):
        self.done += 1
        self.service.record_request(0.01)


class Runner:
    def __init__(self, telemetry):
        self.jobs = Jobs(telemetry)

    async def run(self):
        import asyncio

        while True:
            self.jobs.step()
            await asyncio.sleep(0.01)



def build(telemetry):
    return Jobs(telemetry)


def build_async(telemetry):
    return Runner(telemetry)


def broken(telemetry):
    raise RuntimeError("no database")
'''

APP_CATALOG = """\
groups:
  - id: registry.jobs
    type: attribute_group
    brief: Job attributes.
    attributes:
      - {id: service.name, type: string, stability: development, brief: Service.}
  - id: metric.jobs.done
    type: metric
    metric_name: jobs.done
    brief: Jobs finished.
    instrument: counter
    unit: "{job}"
    stability: development
    attributes: [{ref: service.name, requirement_level: required}]
    annotations: {telemetry_otel: {owner: {service: jobs}, priority: HIGH}}
"""


#: How many metrics the shipped demo catalog declares (read from it, not assumed).
DEMO_METRICS = len(demo_catalog().metrics)


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args], capture_output=True, text=True, timeout=120, check=False, cwd=NEUTRAL_CWD, env=env
    )


def _no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr + result.stdout


def _write(tmp_path: pathlib.Path, name: str, text: str) -> pathlib.Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_catalog_check_passes_the_shipped_demo_catalog() -> None:
    result = _run("catalog", "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith(
        f"{demo_catalog().sources[0]}: ok ({DEMO_METRICS} metrics, 16 attributes)"
    )


def test_catalog_check_names_each_violation_at_its_line_and_exits_1(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path, "bad.yaml", BAD)
    result = _run("catalog", "check", str(path))
    _no_traceback(result)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[:3] == [
        f"{path}:7: bad_unit: unit 'jobs' is not UCUM: unknown unit 'jobs' at position 1",
        f"{path}:10: undefined_attribute: group 'metric.jobs.done' refers to attribute 'job.kind', "
        "which no group of the catalog defines",
        f"{path}:14: bad_priority: priority 'URGENT' is not one of HIGH, MEDIUM, LOW",
    ]
    assert lines[-1] == f"{path}: 3 violations"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, "no such catalog file or directory"),
        ("groups:\n  - id: x\n    brief: [open\n", ":4: invalid YAML"),
    ],
)
def test_catalog_check_usage_errors_exit_2(tmp_path: pathlib.Path, text: str | None, expected: str) -> None:
    path = tmp_path / "catalog.yaml"
    if text is not None:
        path.write_text(text, encoding="utf-8")
    result = _run("catalog", "check", str(path))
    _no_traceback(result)
    assert result.returncode == 2
    assert result.stderr.startswith(f"telemetry-otel: error: {path}")
    assert expected in result.stderr


def test_catalog_without_an_action_is_a_usage_error() -> None:
    result = _run("catalog")
    assert result.returncode == 2
    assert "ACTION" in result.stderr


def test_demo_coverage_is_complete_with_fail_under_100() -> None:
    result = _run("coverage", "--fail-under", "100")
    assert result.returncode == 0, result.stdout + result.stderr
    n = DEMO_METRICS
    assert f"coverage: {n}/{n} declared metrics seen (100.0 %), {n} metrics emitted" in result.stdout
    assert "undeclared metrics: none" in result.stdout
    assert result.stdout.rstrip().endswith("at or above --fail-under 100 %)")


def test_demo_coverage_as_json() -> None:
    result = _run("coverage", "--json", "--seed", "3", "--steps", "5", "--fail-under", "100")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["coverage"] == {"declared": DEMO_METRICS, "seen": DEMO_METRICS, "percent": 100.0}
    assert document["missing"] == []
    assert document["undeclared"] == []
    assert document["findings"] == []
    assert document["passed"] is True
    assert document["source"] == "the demo runtime (seed 3), 5 steps, one collection"
    owners = {(owner["kind"], owner["name"]): owner for owner in document["owners"]}
    assert len([key for key in owners if key[0] == "service"]) == 27  # 21 services and 6 bus providers
    assert len([key for key in owners if key[0] == "bus"]) == 6
    assert all(owner["percent"] == 100.0 for owner in owners.values())


def test_missing_metrics_fail_under_and_todo_and_next(tmp_path: pathlib.Path) -> None:
    extra = str(_write(tmp_path, "extra.yaml", EXTRA))
    demo = demo_catalog().sources[0]
    below = _run("coverage", "--catalog", demo, "--catalog", extra, "--fail-under", "100")
    assert below.returncode == 1
    n, percent = DEMO_METRICS, round(100 * DEMO_METRICS / (DEMO_METRICS + 2), 1)
    assert f"coverage: {n}/{n + 2} declared metrics seen ({percent} %)" in below.stdout
    assert "  HIGH   llm.cache.hits: not emitted (" in below.stdout
    assert f"below --fail-under 100 %: overall ({percent} %), service audit" in below.stdout
    assert _run("coverage", "--catalog", demo, "--catalog", extra, "--fail-under", "90").returncode == 1
    assert _run("coverage", "--catalog", demo, "--catalog", extra, "--fail-under", "80").returncode == 0
    assert _run("coverage", "--catalog", demo, "--catalog", extra).returncode == 0  # missing is no violation

    todo = _run("coverage", "todo", "--catalog", demo, "--catalog", extra)
    assert todo.returncode == 0
    assert todo.stdout.splitlines() == [
        f"2 declared metrics to add (coverage {n}/{n + 2}, {percent} %):",
        "HIGH (1):",
        f"  llm.cache.hits: not emitted ({extra}:2)",
        "LOW (1):",
        f"  audit.bytes: not emitted ({extra}:14)",
    ]
    following = _run("coverage", "next", "--catalog", demo, "--catalog", extra)
    assert following.stdout.strip() == (
        "HIGH llm.cache.hits: not emitted "
        f"(counter in '{{prompt}}', owner service: llm, declared at {extra}:2)"
    )
    as_json = json.loads(_run("coverage", "next", "--json", "--catalog", demo, "--catalog", extra).stdout)
    assert as_json["next"]["metric"] == "llm.cache.hits"
    expected = f"nothing missing: all {DEMO_METRICS} declared metrics are emitted"
    assert _run("coverage", "next").stdout.strip() == expected


def test_undeclared_metrics_fail_even_todo(tmp_path: pathlib.Path) -> None:
    demo = pathlib.Path(demo_catalog().sources[0]).read_text(encoding="utf-8")
    start = demo.index("  - id: metric.audit.events")
    end = demo.index("\n\n", start)
    trimmed = _write(tmp_path, "trimmed.yaml", demo[:start] + demo[end + 2 :])
    result = _run("coverage", "--catalog", str(trimmed), "--json")
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["undeclared"] == ["audit.events"]
    assert document["coverage"]["percent"] == 100.0
    todo = _run("coverage", "todo", "--catalog", str(trimmed))
    assert todo.returncode == 1
    assert "1 conformance finding(s)" in todo.stderr


def test_coverage_refuses_a_catalog_with_violations(tmp_path: pathlib.Path) -> None:
    result = _run("coverage", "--catalog", str(_write(tmp_path, "bad.yaml", BAD)))
    _no_traceback(result)
    assert result.returncode == 1
    assert ":7: bad_unit:" in result.stderr
    assert "telemetry-otel: error: the catalog has violations" in result.stderr


def test_coverage_of_an_application(tmp_path: pathlib.Path) -> None:
    _write(tmp_path, "jobs_app.py", APP)
    catalog = str(_write(tmp_path, "jobs.yaml", APP_CATALOG))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    for factory, driven in [("jobs_app:build", "40 steps"), ("jobs_app:build_async", "run() for 0.2 s")]:
        result = _run(
            "coverage", "--app", factory, "--catalog", catalog, "--json", "--run-seconds", "0.2", env=env
        )
        _no_traceback(result)
        document = json.loads(result.stdout)
        assert document["source"] == f"application {factory}, {driven}, one collection"
        assert document["coverage"] == {"declared": 1, "seen": 1, "percent": 100.0}, factory
        # The vitals and the collector's series are emitted too, and this catalog leaves them out.
        assert {"service.requests", "service.uptime", "telemetry.collections"} <= set(document["undeclared"])
        assert result.returncode == 1


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--app", "jobs_app:broken"], "application jobs_app:broken failed: RuntimeError: no database"),
        (["--app", "jobs_app:absent"], "module 'jobs_app' has no attribute 'absent'"),
        (["--app", "jobs_app:build", "--seed", "1"], "--seed applies to the demo only"),
        (["--fail-under", "120"], "is not a percentage"),
        (["--steps", "-1"], "must be zero or more steps"),
        (["sideways"], "invalid choice: 'sideways'"),
    ],
)
def test_coverage_errors_are_one_line(tmp_path: pathlib.Path, args: list[str], expected: str) -> None:
    _write(tmp_path, "jobs_app.py", APP)
    result = _run("coverage", *args, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    _no_traceback(result)
    assert result.returncode in (1, 2)
    assert result.returncode == (1 if "failed" in expected else 2)
    assert expected in result.stderr
