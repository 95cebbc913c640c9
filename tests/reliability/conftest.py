"""Shared pieces of the reliability suite: a real uvicorn server on loopback, and thread accounting.

Every figure in ``docs/reliability.md`` comes from a test of this directory (or of
``tests/backends/test_export_faults.py``); tests print their figures on lines starting with
``RELIABILITY`` (visible with ``pytest -s``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest


def _thread_names() -> list[str]:
    return sorted(thread.name for thread in threading.enumerate())


@contextmanager
def _no_thread_leak(timeout: float = 5.0) -> Iterator[None]:
    before = _thread_names()
    yield
    deadline = time.monotonic() + timeout
    while threading.active_count() > len(before) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _thread_names() == before


@pytest.fixture
def no_thread_leak() -> Callable[..., Any]:
    """``with no_thread_leak(): ...`` asserts the threads alive after the block are those before it
    (waiting up to 5 s for threads that are ending)."""
    return _no_thread_leak


@pytest.fixture
def report() -> Callable[..., None]:
    """``report(name, **figures)`` prints a line of figures for docs/reliability.md (``pytest -s``)."""

    def emit(name: str, **figures: Any) -> None:
        print(f"RELIABILITY {name}:", " ".join(f"{key}={value}" for key, value in figures.items()))

    return emit
