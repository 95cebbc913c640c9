"""Shared fixtures: a fresh telemetry runtime per test, never the process-wide one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from telemetry_otel import Telemetry, TelemetryConfig


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    runtime = Telemetry(TelemetryConfig(service_name="test-agent"))
    yield runtime
    runtime.shutdown()
