"""Warnings about snapshots that failed or returned values that were dropped, rate-limited.

Every problem of a cycle is also in its outcomes (``ComponentOutcome.problems``, the views, the
collector's ``telemetry.collection.problems`` counter); the log says it where an operator looks
first, without flooding it: at most one warning per service and subject (a metric's problem, a
timeout, an error) per ``interval_seconds``, and the next one says how many were held back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

from telemetry_otel._collection import ComponentOutcome

__all__ = ["PROBLEM_LOG_INTERVAL_SECONDS", "SnapshotLog"]

#: Shortest time between two warnings about the same service and subject.
PROBLEM_LOG_INTERVAL_SECONDS = 60.0
#: Subjects remembered at most; the oldest is forgotten first (its next warning is not held back).
_MAX_SUBJECTS = 4096

_logger = logging.getLogger("telemetry_otel.collection")


class SnapshotLog:
    """Logs each cycle's snapshot failures and dropped values, rate-limited per service and subject."""

    def __init__(
        self,
        *,
        interval_seconds: float = PROBLEM_LOG_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger = _logger,
    ) -> None:
        self._interval = interval_seconds
        self._clock = clock
        self._logger = logger
        self._lock = threading.Lock()
        #: (service, subject) -> (clock() of the last warning, warnings held back since).
        self._last: dict[tuple[str, str], tuple[float, int]] = {}

    def report(self, outcomes: Mapping[str, ComponentOutcome]) -> None:
        """Warn about every failed snapshot and every dropped value of one cycle (rate-limited)."""
        for outcome in outcomes.values():
            if outcome.outcome in ("error", "timeout"):
                self._warn(
                    outcome.name,
                    outcome.outcome,
                    "service %r: snapshot %s: %s; its snapshot values are unknown in this collection",
                    outcome.outcome,
                    outcome.error,
                )
            for problem in outcome.problems:
                self._warn(outcome.name, problem, "service %r: snapshot value dropped: %s", problem)

    def _warn(self, service: str, subject: str, message: str, *args: object) -> None:
        key = (service, subject)
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last[0] < self._interval:
                self._last[key] = (last[0], last[1] + 1)
                return
            held_back = 0 if last is None else last[1]
            self._last.pop(key, None)
            self._last[key] = (now, 0)
            if len(self._last) > _MAX_SUBJECTS:
                del self._last[next(iter(self._last))]
        if held_back:
            message += " (%d more since the last such warning)"
            args = (*args, held_back)
        self._logger.warning(message, service, *args)
