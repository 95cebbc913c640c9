"""The rate limit of the snapshot warnings: one per service and problem a minute, the next one
counting those held back (a clock is passed in: a minute is not waited for)."""

from __future__ import annotations

import logging

import pytest

from telemetry_otel import ComponentOutcome
from telemetry_otel._snapshot_log import SnapshotLog


def test_a_held_back_warning_is_counted_in_the_next_one(caplog: pytest.LogCaptureFixture) -> None:
    clock = [0.0]
    log = SnapshotLog(clock=lambda: clock[0])
    problem = "llm.tokens.input: a negative value is not a counter value"
    outcome = ComponentOutcome("llm", "ok", None, 0.001, 1, (problem,))
    caplog.set_level(logging.WARNING)
    for seconds in (0.0, 10.0, 59.9, 60.0, 61.0):
        clock[0] = seconds
        log.report({"llm": outcome})
    assert [record.getMessage() for record in caplog.records] == [
        f"service 'llm': snapshot value dropped: {problem}",
        f"service 'llm': snapshot value dropped: {problem} (2 more since the last such warning)",
    ]
