"""The demo's failure switch: a service told to fail fails (errors, breaker, health) and recovers."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from telemetry_otel import Telemetry, TelemetryConfig
from telemetry_otel.instrumentation.demo import DemoRuntime, build_demo


@pytest.fixture
def runtime() -> Iterator[Telemetry]:
    telemetry = Telemetry(TelemetryConfig(service_name="demo-test"))
    yield telemetry
    telemetry.shutdown()


def _state(demo: DemoRuntime, name: str) -> tuple[str | None, str | None]:
    health = demo.services[name].component.health
    breaker = demo._components[name].breaker
    return (health.status if health else None, breaker.state if breaker else None)


def test_a_service_fails_for_the_time_asked_then_recovers(runtime: Telemetry) -> None:
    demo = build_demo(runtime, seed=1, failures={"llm": (1.0, 2.0)})
    try:
        seen = []
        for _ in range(4 * 16):  # 16 simulated seconds in 0.25 s ticks
            demo.step()
            seen.append(_state(demo, "llm"))
        before, during, late = seen[:3], seen[4:12], seen[-4:]
        assert all(state == ("pass", "closed") for state in before)
        assert all(health == "fail" for health, _ in during)
        assert ("fail", "open") in during  # every request errors: the breaker opens
        assert all(state == ("pass", "closed") for state in late)  # cooled down, probed, closed
        health = demo.services["llm"].component.health
        assert health is not None
        assert health.status == "pass"
    finally:
        demo.close()


def test_fail_until_recover_and_bad_arguments(runtime: Telemetry) -> None:
    demo = build_demo(runtime, seed=2)
    try:
        demo.fail("audit")
        for _ in range(4):
            demo.step()
        health = demo.services["audit"].component.health
        assert health is not None
        assert (health.status, health.reason) == ("fail", "failing on purpose (demo failure switch)")
        demo.recover("audit")
        demo.step()
        assert _state(demo, "audit")[0] != "fail"
        with pytest.raises(ValueError, match=r"unknown component 'nope'; known: .*llm"):
            demo.fail("nope")
        with pytest.raises(ValueError, match="after_seconds must be >= 0"):
            demo.fail("llm", after_seconds=-1)
        with pytest.raises(ValueError, match="for_seconds must be a positive number"):
            demo.fail("llm", for_seconds=0)
    finally:
        demo.close()


def test_the_serve_flags_are_checked() -> None:
    command = [sys.executable, "-m", "telemetry_otel", "serve"]
    unknown = subprocess.run(
        [*command, "--demo", "--port", "0", "--demo-fail", "nope"],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unknown.returncode == 2
    assert "--demo-fail: unknown component 'nope'" in unknown.stderr
    app = subprocess.run(
        [*command, "--app", "x:y", "--demo-fail", "llm"], cwd="/", capture_output=True, text=True, timeout=60
    )
    assert app.returncode == 2
    assert "--demo-fail applies to --demo only" in app.stderr


def test_a_bad_value_is_dropped_and_the_service_warns_with_the_problem(runtime: Telemetry) -> None:
    import asyncio

    from telemetry_otel.instrumentation.demo._simulation import BAD_VALUE

    demo = build_demo(runtime, seed=1, bad_values=["memory"])
    try:
        collection = asyncio.run(runtime.collect())
    finally:
        demo.close()
    (problem,) = collection.outcomes["memory"].problems
    assert problem.startswith(f"{BAD_VALUE}: ")
    assert BAD_VALUE not in collection.index.metric_names  # dropped, never 0
    assert collection.outcomes["llm"].problems == ()
    with pytest.raises(ValueError, match="unknown component 'nope'"):
        DemoRuntime(runtime, bad_values=["nope"])


def test_the_bad_value_flag_is_checked() -> None:
    command = [sys.executable, "-m", "telemetry_otel", "serve"]
    unknown = subprocess.run(
        [*command, "--demo", "--port", "0", "--demo-bad-value", "nope"],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unknown.returncode == 2
    assert "--demo-bad-value: unknown component 'nope'" in unknown.stderr
    app = subprocess.run(
        [*command, "--app", "x:y", "--demo-bad-value", "memory"],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert app.returncode == 2
    assert "--demo-bad-value and --demo-request-rate apply to --demo only" in app.stderr


def test_a_fixed_request_rate_makes_the_requests_grow_at_that_rate(runtime: Telemetry) -> None:
    demo = build_demo(runtime, seed=1, request_rate_per_second=10.0)
    try:
        start = demo.requests
        for _ in range(40):  # 40 ticks of 0.25 s: 10 s of simulated time
            demo.step()
        assert demo.requests - start == 100
        demo.step(0.1)  # one request owed; the remainder is carried
        assert demo.requests - start == 101
    finally:
        demo.close()
    with pytest.raises(ValueError, match="request_rate_per_second must be a positive number"):
        DemoRuntime(runtime, request_rate_per_second=0)
