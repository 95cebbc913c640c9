"""The examples in docs/ are the output of the code: regenerated from the demo, compared to the text."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

DOCS = Path(__file__).resolve().parent.parent / "docs"


_MODULE = "telemetry_otel_docs_examples"


def _generator() -> ModuleType:
    """``docs/examples.py``, loaded by path (docs/ is not a package)."""
    module = sys.modules.get(_MODULE)
    if module is None:
        spec = importlib.util.spec_from_file_location(_MODULE, DOCS / "examples.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[_MODULE] = module  # dataclasses look their module up while being defined
        spec.loader.exec_module(module)
    return module


def test_every_generated_example_in_the_docs_matches_a_fresh_run() -> None:
    differences = _generator().differences(DOCS)
    assert not differences, (
        "the examples in docs/ differ from what the code produces now; regenerate them with "
        "`.venv/bin/python docs/examples.py` and review the diff:\n" + "\n".join(differences)
    )


def test_two_runs_generate_the_same_text() -> None:
    """Nothing volatile (time, durations, this process's CPU and memory) leaks into the examples."""
    generator = _generator()
    assert generator.generate() == generator.generate()


def test_check_mode_of_the_script_passes_on_the_committed_docs() -> None:
    result = subprocess.run(
        [sys.executable, str(DOCS / "examples.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd="/",
    )
    assert (result.returncode, result.stdout) == (0, "")
