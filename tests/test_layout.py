"""The installed layout: one namespace, and dependencies flow views -> core <- instrumentation."""

from __future__ import annotations

import ast
import pathlib

import telemetry_otel
import telemetry_otel.instrumentation
import telemetry_otel.views

ROOT = pathlib.Path(telemetry_otel.__file__).parent
SUBPACKAGES = ("telemetry_otel.instrumentation", "telemetry_otel.views")


def _imports(path: pathlib.Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_instrumentation_and_views_are_installed_inside_the_one_namespace() -> None:
    for package in (telemetry_otel.instrumentation, telemetry_otel.views):
        assert pathlib.Path(package.__file__ or "").parent.parent == ROOT


def test_the_core_never_imports_views_or_instrumentation() -> None:
    core_files = [
        p for p in ROOT.rglob("*.py") if p.relative_to(ROOT).parts[0] not in ("instrumentation", "views")
    ]
    assert core_files
    offenders = {
        str(path.relative_to(ROOT)): sorted(name for name in _imports(path) if name.startswith(SUBPACKAGES))
        for path in core_files
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_views_and_instrumentation_do_not_import_each_other() -> None:
    pairs = [("instrumentation", "telemetry_otel.views"), ("views", "telemetry_otel.instrumentation")]
    for folder, forbidden in pairs:
        for path in (ROOT / folder).rglob("*.py"):
            assert not [name for name in _imports(path) if name.startswith(forbidden)], path
