"""``catalog check`` rules on small catalogs: each violation is found, named by rule, at its line."""

from __future__ import annotations

import pathlib

import pytest

from telemetry_otel.catalog import (
    RULES,
    CatalogError,
    Finding,
    Owner,
    check_catalog,
    demo_catalog,
    load_catalog,
)

VALID = """\
groups:
  - id: registry.jobs
    type: attribute_group
    brief: Attributes of the job runner.
    attributes:
      - id: service.name
        type: string
        stability: development
        brief: Service that ran the job.
        examples: [runner]
      - id: job.kind
        type:
          members:
            - id: import
              value: import
              stability: development
            - id: export
              value: export
              stability: development
        stability: development
        brief: Kind of job.

  - id: metric.jobs.done
    type: metric
    metric_name: jobs.done
    brief: Jobs finished since start.
    instrument: counter
    unit: "{job}"
    stability: development
    attributes:
      - ref: service.name
        requirement_level: required
      - ref: job.kind
    annotations:
      telemetry_otel:
        owner: {services: all}
        priority: HIGH

  - id: metric.jobs.queued
    type: metric
    metric_name: jobs.queued
    brief: Jobs waiting.
    instrument: updowncounter
    unit: "{job}"
    stability: development
    annotations:
      telemetry_otel:
        owner: {service: runner}
        priority: LOW
"""


def _write(tmp_path: pathlib.Path, text: str, name: str = "catalog.yaml") -> pathlib.Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _line(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line of the ``occurrence``-th line containing ``needle``."""
    hits = [number for number, line in enumerate(text.splitlines(), start=1) if needle in line]
    return hits[occurrence - 1]


def _broken(tmp_path: pathlib.Path, old: str, new: str) -> tuple[str, pathlib.Path, tuple[Finding, ...]]:
    assert old in VALID
    text = VALID.replace(old, new, 1)
    path = _write(tmp_path, text)
    return text, path, check_catalog(path)


def _only(findings: tuple[Finding, ...], rule: str) -> Finding:
    assert [finding.rule for finding in findings] == [rule], [str(finding) for finding in findings]
    return findings[0]


def test_the_valid_example_has_no_findings_and_resolves_everything(tmp_path: pathlib.Path) -> None:
    catalog = load_catalog(_write(tmp_path, VALID))
    assert catalog.ok, [str(finding) for finding in catalog.findings]
    done = catalog.metric("jobs.done")
    assert (done.instrument, done.unit, done.brief, done.priority) == (
        "counter",
        "{job}",
        "Jobs finished since start.",
        "HIGH",
    )
    assert dict(done.attributes) == {"service.name": "required", "job.kind": "recommended"}
    assert done.owner == Owner("service", None)
    assert done.location.line == _line(VALID, "- id: metric.jobs.done")
    assert catalog.metric("jobs.queued").owner == Owner("service", ("runner",))
    assert catalog.attributes["job.kind"].members == ("import", "export")


def test_the_shipped_demo_catalog_passes_every_rule() -> None:
    catalog = demo_catalog()
    assert catalog.ok, [str(finding) for finding in catalog.findings]
    assert len(catalog.metrics) >= 50
    assert catalog.sources[0].endswith("catalog.yaml")


def test_bad_metric_name(tmp_path: pathlib.Path) -> None:
    text, path, findings = _broken(tmp_path, "metric_name: jobs.done", "metric_name: Jobs-Done")
    finding = _only(findings, "bad_metric_name")
    assert finding.location.path == str(path)
    assert finding.location.line == _line(text, "metric_name: Jobs-Done")
    assert "'Jobs-Done' is not a dotted OTel name" in finding.message
    assert str(finding).startswith(f"{path}:{finding.location.line}: bad_metric_name: ")


def test_metric_id_must_follow_the_metric_name(tmp_path: pathlib.Path) -> None:
    text, _, findings = _broken(tmp_path, "id: metric.jobs.done", "id: metric.jobs.finished")
    finding = _only(findings, "bad_id")
    assert finding.location.line == _line(text, "id: metric.jobs.finished")
    assert "'metric.jobs.done'" in finding.message


@pytest.mark.parametrize(
    "unit",
    [
        "1",
        "s",
        "ms",
        "By",
        "KiBy",
        "By/s",
        "{request}",
        "{request}/s",
        "/s",
        "%",
        "m.s-2",
        "By{compressed}",
        "Cel",
    ],
)
def test_ucum_units_and_annotations_pass(tmp_path: pathlib.Path, unit: str) -> None:
    _, _, findings = _broken(tmp_path, 'unit: "{job}"', f'unit: "{unit}"')
    assert findings == ()


@pytest.mark.parametrize(
    ("unit", "problem"),
    [
        ("seconds", "unknown unit 'seconds'"),
        ("bytes", "unknown unit 'bytes'"),
        ("KB", "unknown unit 'KB'"),
        ("req/s", "unknown unit 'req'"),
        ("{}", "annotation"),
        ("{two words}", "contains spaces"),
        ("s/", "expected a unit at the end"),
        ("", "empty"),
    ],
)
def test_non_ucum_unit(tmp_path: pathlib.Path, unit: str, problem: str) -> None:
    text, _, findings = _broken(tmp_path, 'unit: "{job}"', f'unit: "{unit}"')
    finding = _only(findings, "bad_unit")
    assert problem in finding.message
    assert finding.location.line == _line(text, f'unit: "{unit}"')


def test_an_unquoted_number_unit_is_reported_with_the_fix(tmp_path: pathlib.Path) -> None:
    _, _, findings = _broken(tmp_path, 'unit: "{job}"', "unit: 1")
    assert 'quote it: "1"' in _only(findings, "bad_unit").message


def test_duplicate_metric_name(tmp_path: pathlib.Path) -> None:
    text, _, findings = _broken(tmp_path, "metric_name: jobs.queued", "metric_name: jobs.done")
    rules = sorted(finding.rule for finding in findings)
    assert rules == ["bad_id", "duplicate_metric"]
    duplicate = next(finding for finding in findings if finding.rule == "duplicate_metric")
    assert duplicate.location.line == _line(text, "metric_name: jobs.done", occurrence=2)
    assert f"already declared at {tmp_path / 'catalog.yaml'}:{_line(text, 'metric_name: jobs.done')}" in (
        duplicate.message
    )


def test_a_directory_is_one_catalog_and_duplicates_across_its_files_are_found(tmp_path: pathlib.Path) -> None:
    _write(tmp_path, VALID, "a.yaml")
    _write(tmp_path, VALID.replace("id: registry.jobs", "id: registry.jobs.copy"), "b.yml")
    catalog = load_catalog(tmp_path)
    assert catalog.sources == (str(tmp_path / "a.yaml"), str(tmp_path / "b.yml"))
    found = {(finding.rule, finding.location.path) for finding in catalog.findings}
    # The metric groups repeat their ids (metric.<name>), the attributes their definitions.
    assert found == {
        ("duplicate_id", str(tmp_path / "b.yml")),
        ("duplicate_attribute", str(tmp_path / "b.yml")),
    }
    assert list(catalog.metrics) == ["jobs.done", "jobs.queued"]


@pytest.mark.parametrize(
    ("instrument", "hint"), [("up_down_counter", "write 'updowncounter'"), ("summary", "")]
)
def test_unknown_instrument_kind(tmp_path: pathlib.Path, instrument: str, hint: str) -> None:
    text, _, findings = _broken(tmp_path, "instrument: updowncounter", f"instrument: {instrument}")
    finding = _only(findings, "unknown_instrument")
    assert "counter, updowncounter, gauge, histogram" in finding.message
    assert hint in finding.message
    assert finding.location.line == _line(text, f"instrument: {instrument}")


def test_attribute_ref_not_defined_in_the_catalog(tmp_path: pathlib.Path) -> None:
    text, _, findings = _broken(tmp_path, "- ref: job.kind", "- ref: job.owner")
    finding = _only(findings, "undefined_attribute")
    assert "'job.owner'" in finding.message
    assert finding.location.line == _line(text, "- ref: job.owner")


def test_missing_brief(tmp_path: pathlib.Path) -> None:
    text, _, findings = _broken(tmp_path, "    brief: Jobs waiting.\n", "")
    finding = _only(findings, "missing_brief")
    assert "metric.jobs.queued" in finding.message
    assert finding.location.line == _line(text, "- id: metric.jobs.queued")


def test_empty_attribute_brief(tmp_path: pathlib.Path) -> None:
    _, _, findings = _broken(tmp_path, "brief: Kind of job.", 'brief: ""')
    assert "attribute 'job.kind'" in _only(findings, "missing_brief").message


@pytest.mark.parametrize(("priority", "hint"), [("URGENT", ""), ("high", "write 'HIGH'")])
def test_bad_priority(tmp_path: pathlib.Path, priority: str, hint: str) -> None:
    text, _, findings = _broken(tmp_path, "priority: HIGH", f"priority: {priority}")
    finding = _only(findings, "bad_priority")
    assert "HIGH, MEDIUM, LOW" in finding.message
    assert hint in finding.message
    assert finding.location.line == _line(text, f"priority: {priority}")


@pytest.mark.parametrize(
    "owner",
    [
        "{team: payments}",
        "{service: runner, bus: llm}",
        "{services: []}",
        "{services: [a, a]}",
        "{services: everything}",
        '{service: ""}',
        "runner",
    ],
)
def test_bad_owner(tmp_path: pathlib.Path, owner: str) -> None:
    text, _, findings = _broken(tmp_path, "owner: {service: runner}", f"owner: {owner}")
    finding = _only(findings, "bad_owner")
    assert finding.location.line == _line(text, f"owner: {owner}")


@pytest.mark.parametrize(
    ("owner", "expected"),
    [
        ("{bus: llm}", Owner("bus", ("llm",))),
        ("{buses: all}", Owner("bus", None)),
        ("{buses: [llm, memory]}", Owner("bus", ("llm", "memory"))),
        ("{component: collector}", Owner("component", ("collector",))),
        ("{services: [a, b]}", Owner("service", ("a", "b"))),
    ],
)
def test_every_owner_form(tmp_path: pathlib.Path, owner: str, expected: Owner) -> None:
    path = _write(tmp_path, VALID.replace("owner: {service: runner}", f"owner: {owner}"))
    catalog = load_catalog(path)
    assert catalog.ok
    assert catalog.metric("jobs.queued").owner == expected


def test_missing_annotations_report_owner_and_priority(tmp_path: pathlib.Path) -> None:
    old = "    annotations:\n      telemetry_otel:\n        owner: {service: runner}\n        priority: LOW\n"
    _, _, findings = _broken(tmp_path, old, "")
    assert sorted(finding.rule for finding in findings) == ["bad_owner", "bad_priority"]


def test_bad_stability(tmp_path: pathlib.Path) -> None:
    _, _, findings = _broken(
        tmp_path, "stability: development\n    annotations", "stability: experimental\n    annotations"
    )
    assert "`experimental` is now `development`" in _only(findings, "bad_stability").message


def test_unknown_field_catches_typos(tmp_path: pathlib.Path) -> None:
    text, _, findings = _broken(
        tmp_path, "instrument: updowncounter", "instrument: updowncounter\n    units: s"
    )
    finding = _only(findings, "unknown_field")
    assert "'units'" in finding.message
    assert finding.location.line == _line(text, "units: s")


def test_duplicate_yaml_key(tmp_path: pathlib.Path) -> None:
    text, _, findings = _broken(tmp_path, "brief: Jobs waiting.", "brief: Jobs waiting.\n    brief: Again.")
    finding = _only(findings, "duplicate_key")
    assert finding.location.line == _line(text, "brief: Again.")


def test_unknown_group_type_and_extends(tmp_path: pathlib.Path) -> None:
    owner = "    annotations:\n      telemetry_otel:\n        owner: {service"
    text = VALID.replace("type: attribute_group", "type: attributes").replace(
        f"    stability: development\n{owner}", f"    stability: development\n    extends: nowhere\n{owner}"
    )
    findings = check_catalog(_write(tmp_path, text))
    assert {finding.rule: finding.location.line for finding in findings} == {
        "unknown_group_type": _line(text, "type: attributes"),
        "unknown_extends": _line(text, "extends: nowhere"),
    }


def test_extends_inherits_attributes_and_detects_cycles(tmp_path: pathlib.Path) -> None:
    text = VALID + (
        "\n  - id: attrs.base\n    type: attribute_group\n    brief: Base.\n    extends: attrs.top\n"
        "    attributes:\n      - ref: service.name\n        requirement_level: required\n"
        "\n  - id: attrs.top\n    type: attribute_group\n    brief: Top.\n    extends: attrs.base\n"
        "    attributes:\n      - ref: job.kind\n"
        "\n  - id: metric.jobs.failed\n    type: metric\n    metric_name: jobs.failed\n    brief: Failed.\n"
        "    instrument: counter\n    unit: '{job}'\n    stability: stable\n    extends: attrs.base\n"
        "    annotations:\n      telemetry_otel:\n"
        "        owner: {services: [runner]}\n        priority: MEDIUM\n"
    )
    catalog = load_catalog(_write(tmp_path, text))
    assert [finding.rule for finding in catalog.findings] == ["unknown_extends"]
    assert "cycle" in catalog.findings[0].message
    assert set(catalog.metric("jobs.failed").attributes) == {"service.name", "job.kind"}


def test_attribute_definitions_are_checked(tmp_path: pathlib.Path) -> None:
    text = VALID.replace("- id: service.name\n        type: string", "- id: Service-Name\n        type: text")
    text = text.replace("- ref: service.name", "- ref: Service-Name")
    findings = check_catalog(_write(tmp_path, text))
    assert sorted(finding.rule for finding in findings) == ["bad_attribute_name", "bad_attribute_type"]


def test_bad_requirement_level(tmp_path: pathlib.Path) -> None:
    text, _, findings = _broken(tmp_path, "requirement_level: required", "requirement_level: mandatory")
    assert _only(findings, "bad_requirement_level").location.line == _line(text, "mandatory")


def test_structure_problems_are_findings_not_crashes(tmp_path: pathlib.Path) -> None:
    for text in ("", "- just\n- a list\n", "groups: 3\n", "groups:\n  - 7\n  - brief: no id\n", "other: 1\n"):
        findings = check_catalog(_write(tmp_path, text))
        assert findings, text
        assert {finding.rule for finding in findings} <= {"structure", "unknown_field"}, text


def test_a_metric_catalog_lists_only_well_formed_metrics(tmp_path: pathlib.Path) -> None:
    _, path, _ = _broken(tmp_path, "instrument: updowncounter", "instrument: summary")
    catalog = load_catalog(path)
    assert not catalog.ok
    assert list(catalog.metrics) == ["jobs.done"]
    with pytest.raises(KeyError, match=r"'jobs\.queued' is not declared"):
        catalog.metric("jobs.queued")


def test_invalid_yaml_is_an_error_naming_file_and_line(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path, "groups:\n  - id: a\n    brief: [unclosed\n")
    with pytest.raises(CatalogError, match=rf"^{path}:4: invalid YAML: "):
        load_catalog(path)
    path = _write(tmp_path, "groups:\n  - id: x\n\tbrief: tab\n", "tabs.yaml")
    with pytest.raises(CatalogError, match=rf"^{path}:3: invalid YAML"):
        load_catalog(path)


def test_unreadable_sources_are_errors(tmp_path: pathlib.Path) -> None:
    with pytest.raises(CatalogError, match="no such catalog file"):
        load_catalog(tmp_path / "absent.yaml")
    with pytest.raises(CatalogError, match="no catalog files"):
        load_catalog(tmp_path)
    (tmp_path / "latin1.yaml").write_bytes(b"groups: []\n# caf\xe9\n")
    with pytest.raises(CatalogError, match="not UTF-8"):
        load_catalog(tmp_path / "latin1.yaml")
    with pytest.raises(CatalogError, match="no catalog file given"):
        load_catalog()


def test_every_rule_is_documented() -> None:
    documented = (pathlib.Path(__file__).parents[2] / "docs" / "catalog.md").read_text(encoding="utf-8")
    for rule in RULES:
        assert f"`{rule}`" in documented, rule
