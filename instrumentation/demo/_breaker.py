"""A circuit breaker driven by simulated time: closed -> open -> half_open -> closed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, TypeAlias

__all__ = ["BREAKER_STATES", "BreakerState", "CircuitBreaker"]

BreakerState: TypeAlias = Literal["closed", "open", "half_open"]
BREAKER_STATES: tuple[BreakerState, ...] = ("closed", "open", "half_open")


class CircuitBreaker:
    """Opens after ``failure_threshold`` consecutive errors and rejects requests for ``cooldown``
    seconds; then half-opens and lets requests through: ``probe_successes`` successes in a row close
    it, one error opens it again.
    """

    def __init__(self, failure_threshold: int = 5, cooldown: float = 8.0, probe_successes: int = 3) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self.probe_successes = probe_successes
        self.state: BreakerState = "closed"
        self.consecutive_failures = 0
        self._successes = 0
        self._opened_at = 0.0

    def advance(self, now: float) -> None:
        """Move from open to half_open once the cooldown has elapsed at simulated time ``now``."""
        if self.state == "open" and now - self._opened_at >= self.cooldown:
            self.state = "half_open"
            self._successes = 0

    def allows(self) -> bool:
        """Whether a request may go through (anything but open)."""
        return self.state != "open"

    def record(self, error: bool, now: float) -> None:
        """Account for the outcome of one request that went through."""
        if error:
            self.consecutive_failures += 1
            if self.state == "half_open" or self.consecutive_failures >= self.failure_threshold:
                self.state = "open"
                self._opened_at = now
            return
        self.consecutive_failures = 0
        if self.state == "half_open":
            self._successes += 1
            if self._successes >= self.probe_successes:
                self.state = "closed"

    def series(self) -> list[tuple[Mapping[str, str], int]]:
        """The state as one series per possible state: 1 for the current one, 0 for the others."""
        return [({"circuit_breaker.state": state}, int(state == self.state)) for state in BREAKER_STATES]
