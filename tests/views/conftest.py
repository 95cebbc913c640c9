"""Fixtures for the view tests: collections written as plain data, real runtimes, and renderers.

View rules are tested on ``PlainCollection`` (plain data, no runtime: ``plain_inputs`` and
``plain_render``); the tests of the app, the cycle and the demo use real runtimes (``collect`` and
``make_inputs``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from telemetry_otel import Collection, Telemetry, TelemetryConfig
from telemetry_otel.views._render import RenderedView, ViewInputs, render_view
from telemetry_otel.views._thresholds import Thresholds


def _load_plain_data() -> Any:
    """``_plain.py`` as the module ``plain_data``, importable by the test modules of this folder."""
    module = sys.modules.get("plain_data")
    if module is None:
        spec = importlib.util.spec_from_file_location("plain_data", Path(__file__).with_name("_plain.py"))
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["plain_data"] = module
        spec.loader.exec_module(module)
    return module


_plain = _load_plain_data()

Collect = Callable[[Telemetry], Collection]
MakeInputs = Callable[..., ViewInputs]


@pytest.fixture
def collect() -> Collect:
    """One real collection cycle of a runtime."""

    def collect(telemetry: Telemetry) -> Collection:
        return asyncio.run(telemetry.collect())

    return collect


@pytest.fixture
def make_runtime() -> Iterator[Callable[..., Telemetry]]:
    """Extra runtimes (process metrics on, a disabled SDK...), shut down after the test."""
    created: list[Telemetry] = []

    def make(**options: Any) -> Telemetry:
        runtime = Telemetry(TelemetryConfig(service_name="t", **options))
        created.append(runtime)
        return runtime

    yield make
    for runtime in created:
        runtime.shutdown()


@pytest.fixture
def make_inputs(telemetry: Telemetry, collect: Collect) -> MakeInputs:
    """ViewInputs over ``telemetry`` (a fresh collection unless one is given)."""

    def make(
        collection: Collection | None = None,
        *,
        runtime: Telemetry | None = None,
        previous: Collection | None = None,
        thresholds: Thresholds | None = None,
        now: int | None = None,
        category: str | None = None,
        service: str | None = None,
    ) -> ViewInputs:
        runtime = runtime or telemetry
        collection = collection or collect(runtime)
        return ViewInputs(
            collection=collection,
            previous=previous,
            thresholds=thresholds or Thresholds(cpu_count=4),
            now_unix_nano=collection.time_unix_nano + 1_000_000_000 if now is None else now,
            category=category,
            service=service,
        )

    return make


@pytest.fixture
def plain_render() -> Callable[..., RenderedView]:
    """``render_view(name, plain_inputs(collection, ...))``."""

    def render(name: str, collection: Collection, **options: Any) -> RenderedView:
        return render_view(name, _plain.plain_inputs(collection, **options))

    return render
