"""The installed layout: one namespace, and dependencies flow views -> core <- instrumentation."""

from __future__ import annotations

import ast
import importlib.util
import pathlib

import telemetry_otel
import telemetry_otel.instrumentation
import telemetry_otel.views

ROOT = pathlib.Path(telemetry_otel.__file__).parent
INSTRUMENTATION = pathlib.Path(telemetry_otel.instrumentation.__file__ or "").parent
VIEWS = pathlib.Path(telemetry_otel.views.__file__ or "").parent
SUBPACKAGES = ("telemetry_otel.instrumentation", "telemetry_otel.views")


def _imports(path: pathlib.Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_only_the_telemetry_otel_namespace_is_installed() -> None:
    assert telemetry_otel.instrumentation.__name__ == "telemetry_otel.instrumentation"
    assert telemetry_otel.views.__name__ == "telemetry_otel.views"
    for top_level in ("instrumentation", "views"):
        assert importlib.util.find_spec(top_level) is None, f"{top_level!r} is importable on its own"


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
    pairs = [(INSTRUMENTATION, "telemetry_otel.views"), (VIEWS, "telemetry_otel.instrumentation")]
    for folder, forbidden in pairs:
        for path in folder.rglob("*.py"):
            assert not [name for name in _imports(path) if name.startswith(forbidden)], path
