"""An ``--app`` for ``telemetry-otel serve --workers N``: every worker handles exactly 10 requests of
service ``work`` when it starts, so the host total is 10 times the workers that ever started."""

from __future__ import annotations

from telemetry_otel import Telemetry
from telemetry_otel.instrumentation import instrument_service

REQUESTS_PER_WORKER = 10


def build(telemetry: Telemetry) -> None:
    work = instrument_service("work", category="runtime", telemetry=telemetry)
    for _ in range(REQUESTS_PER_WORKER):
        work.record_request(0.001)
