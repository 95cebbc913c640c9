"""The runtime served in the load test (``test_load.py``) by ``telemetry-otel serve --app _load_app:build``.

The demo runtime (21 services, 6 buses), plus ``load_probe``: a service whose snapshot function
appends ``time.monotonic()`` to the file named by ``LOAD_PROBE_FILE``. A snapshot function runs
exactly once per collection, so the file lists every collection the server ran, with its time.
"""

from __future__ import annotations

import os
import time

from telemetry_otel import Snapshot, Telemetry
from telemetry_otel.instrumentation import counter, instrument_service
from telemetry_otel.instrumentation.demo import DemoRuntime


def build(telemetry: Telemetry) -> DemoRuntime:
    """The demo on ``telemetry`` with the collection probe; the CLI runs and closes the demo."""
    demo = DemoRuntime(telemetry, seed=1)
    path = os.environ["LOAD_PROBE_FILE"]

    calls = 0

    def probe() -> Snapshot:
        nonlocal calls
        with open(path, "a", encoding="ascii") as times:
            times.write(f"{time.monotonic():.6f}\n")
        calls += 1
        return {"load.probe.collections": calls}

    instrument_service(
        "load_probe",
        category="load",
        snapshot=probe,
        metrics=[counter("load.probe.collections", "{collection}", "Collections that read the probe.")],
        telemetry=telemetry,
    )
    return demo
