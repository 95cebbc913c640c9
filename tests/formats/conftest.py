"""Makes ``_data.py`` next to this file importable as ``_data`` for the tests under tests/formats.

The tests directory is not a package and pytest runs with ``--import-mode=importlib``, so the test
modules cannot import a sibling module by themselves. pytest loads this conftest before it imports
the test modules of this directory, and this registers ``_data.py`` in ``sys.modules``: the test
modules then ``from _data import ...`` (which is also how a type checker resolves the sibling file).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

_DATA_MODULE = "_data"


def _load_data() -> ModuleType:
    path = Path(__file__).with_name("_data.py")
    module = sys.modules.get(_DATA_MODULE)
    if module is not None:
        assert getattr(module, "__file__", None) == str(path), f"another module named {_DATA_MODULE}"
        return module
    spec = importlib.util.spec_from_file_location(_DATA_MODULE, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[_DATA_MODULE] = module
    spec.loader.exec_module(module)
    return module


_load_data()
