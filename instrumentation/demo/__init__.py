"""A simulated AI-agent runtime that gives the telemetry server realistic, varied activity.

Example::

    from telemetry_otel.instrumentation.demo import build_demo

    demo = build_demo(seed=7)        # registers 21 services, 6 buses, runs one step
    task = asyncio.create_task(demo.run())   # one step every 0.25 s of wall time
    ...
    task.cancel()
    demo.close()
"""

from __future__ import annotations

from telemetry_otel.instrumentation.demo._catalog import BUSES, SERVICES
from telemetry_otel.instrumentation.demo._simulation import DemoRuntime, build_demo

__all__ = ["BUSES", "SERVICES", "DemoRuntime", "build_demo"]
