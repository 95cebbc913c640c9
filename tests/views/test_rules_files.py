"""The shipped ``promtool test rules`` files (tests/rules/) against the generated rule files, and the
SLO file's validation (``file:line`` errors, exit 1)."""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from telemetry_otel.views import SloFileError, load_slo_file
from telemetry_otel.views._rules import ALERT_NAMES
from tests.views._promtool import promtool

RULES = pathlib.Path(__file__).parent.parent / "rules"
COMMAND = [sys.executable, "-m", "telemetry_otel", "rules"]


def _generate(tmp_path: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args, "--output", str(tmp_path / "rules.yml")], cwd="/", capture_output=True, text=True
    )


def _promtool_test(tmp_path: pathlib.Path, name: str) -> subprocess.CompletedProcess[str]:
    shutil.copy(RULES / name, tmp_path / name)
    checked = subprocess.run(
        [promtool(), "check", "rules", "rules.yml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr
    return subprocess.run([promtool(), "test", "rules", name], cwd=tmp_path, capture_output=True, text=True)


def test_every_threshold_alert_kind_pends_then_fires_after_its_for(tmp_path: pathlib.Path) -> None:
    generated = _generate(tmp_path, "--threshold", "cpu_count=2", "--threshold", "memory_limit_bytes=1000")
    assert generated.returncode == 0, generated.stderr
    result = _promtool_test(tmp_path, "thresholds_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    # The file covers each alert the generator makes, except the warnings that exist only below a
    # critical threshold the same series crosses (the agreement test covers those).
    named = set(
        re.findall(r"TelemetryOtel[A-Za-z]+", (RULES / "thresholds_test.yml").read_text(encoding="utf-8"))
    )
    assert set(ALERT_NAMES) - named == {
        "TelemetryOtelCpuWarn",
        "TelemetryOtelMemoryCritical",
        "TelemetryOtelProcessCpuWarn",
        "TelemetryOtelProcessMemoryCritical",
    }


def test_the_shipped_threshold_test_fails_against_other_thresholds(tmp_path: pathlib.Path) -> None:
    generated = _generate(tmp_path, "--threshold", "cpu_count=4", "--threshold", "memory_limit_bytes=1000")
    assert generated.returncode == 0, generated.stderr
    result = _promtool_test(tmp_path, "thresholds_test.yml")
    assert result.returncode == 1
    assert "TelemetryOtelCpuCritical" in result.stdout + result.stderr


def test_burn_rate_alerts_page_on_a_fast_burn_and_only_ticket_on_a_slow_one(tmp_path: pathlib.Path) -> None:
    generated = _generate(tmp_path, "--slo", str(RULES / "slos.yaml"))
    assert generated.returncode == 0, generated.stderr
    result = _promtool_test(tmp_path, "slo_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_slo_windows_can_be_scaled(tmp_path: pathlib.Path) -> None:
    generated = _generate(tmp_path, "--slo", str(RULES / "slos.yaml"), "--slo-window-scale", "0.001")
    assert generated.returncode == 0, generated.stderr
    text = (tmp_path / "rules.yml").read_text(encoding="utf-8")
    # 1 h -> 3.6 s, 5 m -> 300 ms, 28 d -> 40 m 19.2 s; the rules keep the nominal windows' names
    rules = {
        rule.get("record"): rule["expr"]
        for group in yaml.safe_load(text)["groups"]
        for rule in group["rules"]
    }
    assert "[3s600ms]" in rules["slo:telemetry_otel_sli_error:ratio_rate1h"]
    assert "[300ms]" in rules["slo:telemetry_otel_sli_error:ratio_rate5m"]
    assert "[40m19s200ms]" in rules["slo:telemetry_otel_sli_error:ratio_rate28d"]
    assert "[1h]" not in text


BAD = """\
slos:
  - name: llm-availability
    service: llm
    objective: 99.5
  - name: llm-latency
    bus: llm
    objective: 95
    latency_seconds: 0.3
  - name: bad objective
    service: llm
    objective: 100
    period: soon
  - name: two-owners
    service: llm
    bus: llm
    objective: 99
  - name: llm-availability
    service: llm
    objective: 99
    target: 98
"""


def test_an_slo_file_is_validated_with_file_and_line(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "slos.yaml"
    path.write_text(BAD, encoding="utf-8")
    with pytest.raises(SloFileError) as raised:
        load_slo_file(path)
    problems = raised.value.problems
    assert problems == [
        f"{path}:8: 'latency_seconds' 0.3 is not a bucket boundary of bus.request.duration: the share of "
        "faster requests is only known at a boundary; nearest: 0.25 and 0.5 (all: 0.0001, 0.00025, "
        "0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)",
        f"{path}:9: 'name' must be given: letters, digits, '_', '.', ':' or '-'",
        f"{path}:11: 'objective' must be a percentage in (0, 100), not 100",
        f"{path}:12: 'period': 'soon' is not a duration (a number and a unit: ms, s, m, h, d, w, y; e.g. 5m, "
        "1h30m)",
        f"{path}:15: give exactly one of 'service' or 'bus'",
        f"{path}:20: unknown key 'target'; allowed: name, service, bus, objective, latency_seconds, period, "
        "description",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ":1: expected a map with a list 'slos' of objectives"),
        ("slos: [\n", ":2: invalid YAML"),
        ("objectives: []\n", ":1: expected a map with a list 'slos' of objectives"),
        ("slos: []\n", ":1: no objectives: 'slos' is empty"),
        ("slos:\n  - name: a\n    service: x\n    objective: 99\n    objective: 98\n",
         ":5: key 'objective' is repeated"),
        ("slos:\n  - name: a\n    service: x\n    objective: 99\nextra: 1\n", ":5: unknown key 'extra'"),
        ("slos:\n  - name: a\n    service: x\n    objective: 99\n  - name: a\n    bus: y\n    objective: 9\n",
         ":5: duplicate SLO name 'a'"),
    ],
)  # fmt: skip
def test_bad_slo_files(tmp_path: pathlib.Path, text: str, expected: str) -> None:
    path = tmp_path / "slos.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SloFileError) as raised:
        load_slo_file(path)
    assert any(problem.startswith(str(path)) and expected in problem for problem in raised.value.problems), (
        raised.value.problems
    )


def test_the_command_prints_every_problem_and_exits_1_writing_nothing(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "slos.yaml"
    path.write_text(BAD, encoding="utf-8")
    result = _generate(tmp_path, "--slo", str(path))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert [line.split(": ", 1)[0] for line in lines[:-1]] == [f"{path}:{n}" for n in (8, 9, 11, 12, 15, 20)]
    assert lines[-1] == "6 problem(s) in the SLO file; nothing written"
    assert not (tmp_path / "rules.yml").exists()
    missing = _generate(tmp_path, "--slo", str(tmp_path / "none.yaml"))
    assert missing.returncode == 1
    assert f"{tmp_path / 'none.yaml'}: no such SLO file" in missing.stderr
