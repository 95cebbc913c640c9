"""Every program a test or benchmark runs is in ``dev``'s one list of tools, which ``./dev test`` installs.

A program that a test looks up but ``dev`` does not install passes on a machine that happens to have
it and fails on a fresh one. The lookups are found in the source: ``shutil.which("x")``,
``find_binary("x")``, a backend class's ``binary = "x"``, a command list ``["x", ...]`` handed to
``subprocess``, and absolute paths such as ``"/usr/bin/x"``.
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCANNED = ("tests", "benchmarks")
_SUBPROCESS_CALLS = {"run", "Popen", "check_call", "check_output", "call"}
_SYSTEM_PATH = re.compile(r"^/usr/s?bin/([A-Za-z0-9_.+-]+)$")


def _tools_in_dev() -> dict[str, str]:
    """``binary -> Debian package`` from the ``TOOLS=(...)`` list in ``dev``."""
    text = (REPO / "dev").read_text(encoding="utf-8")
    match = re.search(r"^TOOLS=\(\n(.*?)^\)", text, flags=re.MULTILINE | re.DOTALL)
    assert match is not None, "dev has no TOOLS=( ... ) list"
    tools: dict[str, str] = {}
    for line in match.group(1).splitlines():
        entry = line.strip()
        if entry and not entry.startswith("#"):
            binary, _, package = entry.partition(":")
            assert binary, f"TOOLS entry {entry!r} is not binary:package"
            assert package, f"TOOLS entry {entry!r} is not binary:package"
            tools[binary] = package
    return tools


def _call_name(node: ast.Call) -> str:
    function = node.func
    if isinstance(function, ast.Attribute):
        return function.attr
    if isinstance(function, ast.Name):
        return function.id
    return ""


def _program(value: str) -> str:
    system = _SYSTEM_PATH.match(value)
    return system.group(1) if system else value


def looked_up_programs(source: str) -> set[str]:
    """The programs a Python source looks up or runs by a literal name."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and node.args:
            first = node.args[0]
            name = _call_name(node)
            if name in ("which", "find_binary") and isinstance(first, ast.Constant):
                if isinstance(first.value, str):
                    found.add(_program(first.value))
            elif name in _SUBPROCESS_CALLS and isinstance(first, ast.List | ast.Tuple) and first.elts:
                head = first.elts[0]
                if isinstance(head, ast.Constant) and isinstance(head.value, str):
                    found.add(_program(head.value))
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            targets = {target.id for target in node.targets if isinstance(target, ast.Name)}
            if "binary" in targets and isinstance(node.value.value, str) and node.value.value:
                found.add(_program(node.value.value))
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            system = _SYSTEM_PATH.match(node.value)
            if system:
                found.add(system.group(1))
    return found


def _sources() -> list[Path]:
    return sorted(path for folder in SCANNED for path in (REPO / folder).rglob("*.py"))


def test_every_program_a_test_or_benchmark_runs_is_in_devs_tool_list() -> None:
    tools = _tools_in_dev()
    used = {str(path.relative_to(REPO)): looked_up_programs(path.read_text("utf-8")) for path in _sources()}
    unlisted = {path: sorted(names - tools.keys()) for path, names in used.items() if names - tools.keys()}
    assert unlisted == {}, "add these to TOOLS in dev (binary:debian-package)"
    # The scan is not vacuous: the suite runs real servers, a browser and a load generator.
    assert {"prometheus", "promtool", "chromium", "wrk"} <= set().union(*used.values())


def test_every_listed_tool_is_installed_here() -> None:
    missing = [b for b in _tools_in_dev() if shutil.which(b) is None and not Path("/usr/bin", b).exists()]
    assert missing == [], "./dev test installs these; run it instead of pytest alone"


@pytest.mark.parametrize(
    ("source", "programs"),
    [
        ('shutil.which("wrk")', {"wrk"}),
        ('find_binary("promtool", "promtool")', {"promtool"}),
        ('subprocess.run(["/usr/bin/promtool", "check"])', {"promtool"}),
        ('subprocess.Popen(("carbon-cache", "--nodaemon"))', {"carbon-cache"}),
        ('class Server:\n    binary = "influxd"', {"influxd"}),
        ('PYTHON = "/usr/bin/python3"', {"python3"}),
        ("subprocess.run([sys.executable, '-c', 'pass'])", set()),
    ],
)
def test_the_scan_finds_each_kind_of_lookup(source: str, programs: set[str]) -> None:
    assert looked_up_programs(source) == programs
