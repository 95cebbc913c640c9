"""Side-by-side benchmark harness: ratios against a named baseline, measured in one process.

Every alternative is a callable that performs ``n`` operations itself, so the loop overhead sits
inside the measurement and is the same for all of them. :func:`compare` warms every alternative
up, then runs ``rounds`` rounds; each round times every alternative once, for ``ops`` operations,
in an order rotated (and reversed on every other cycle) from round to round, so no alternative
always runs first, last or after the same neighbour. The garbage collector is off while a loop
is timed. The result of a round is each alternative's cost per operation and its ratio to the
baseline's cost *in that same round*; the figure reported is the median of those per-round
ratios, which cancels the drift of machine speed between rounds.

:func:`measure_memory` measures the bytes an object graph retains, with :mod:`tracemalloc`.
"""

from __future__ import annotations

import datetime as _dt
import gc
import json
import os
import platform
import re
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "RESULTS_DIR",
    "AlternativeResult",
    "Comparison",
    "compare",
    "machine_info",
    "measure_memory",
    "write_results",
]

#: Where :func:`write_results` puts its JSON files (ignored by git).
RESULTS_DIR = Path(__file__).resolve().parent / "results"

#: An alternative: performs ``n`` operations when called with ``n``.
Alternative = Callable[[int], None]


@dataclass(frozen=True)
class AlternativeResult:
    """The measurements of one alternative: per-round cost and per-round ratio to the baseline."""

    name: str
    #: Cost of one operation (ns) in each round, in round order.
    ns_per_op: tuple[float, ...]
    #: This alternative's cost divided by the baseline's cost, in each round.
    ratios: tuple[float, ...]

    @property
    def median_ns_per_op(self) -> float:
        """Median over the rounds of the cost of one operation, in nanoseconds."""
        return statistics.median(self.ns_per_op)

    @property
    def median_ratio(self) -> float:
        """Median over the rounds of the ratio to the baseline: the headline figure."""
        return statistics.median(self.ratios)

    @property
    def min_ratio(self) -> float:
        """Smallest per-round ratio to the baseline."""
        return min(self.ratios)

    @property
    def max_ratio(self) -> float:
        """Largest per-round ratio to the baseline."""
        return max(self.ratios)


@dataclass(frozen=True)
class Comparison:
    """The outcome of :func:`compare`."""

    name: str
    baseline: str
    rounds: int
    ops: int
    warmup_ops: int
    #: One entry per alternative, in the order they were given.
    results: tuple[AlternativeResult, ...]

    @property
    def total_ops(self) -> int:
        """Operations each alternative performed in all (warm-up included), for checking effects."""
        return self.warmup_ops + self.rounds * self.ops

    def result(self, name: str) -> AlternativeResult:
        """The result of the alternative called ``name``."""
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(f"no alternative {name!r} in {self.name!r}; have {[r.name for r in self.results]}")

    def ratios(self, numerator: str, denominator: str) -> list[float]:
        """Per-round ratios of the cost of ``numerator`` to the cost of ``denominator``."""
        top = self.result(numerator).ns_per_op
        bottom = self.result(denominator).ns_per_op
        return [a / b for a, b in zip(top, bottom, strict=True)]

    def ratio(self, numerator: str, denominator: str) -> float:
        """Median of the per-round ratios of ``numerator`` to ``denominator`` (same rounds)."""
        return statistics.median(self.ratios(numerator, denominator))

    def report(self) -> str:
        """A readable table: median ns/op, and median (min..max) per-round ratio to the baseline."""
        width = max(len("alternative"), *(len(r.name) for r in self.results))
        lines = [
            f"{self.name}: {self.rounds} rounds x {self.ops} ops (warm-up {self.warmup_ops} ops), "
            f"baseline {self.baseline!r}",
            f"{'alternative':<{width}}  {'ns/op':>9}  {'ratio':>7}  {'min':>7}  {'max':>7}",
        ]
        for r in self.results:
            marker = "  (baseline)" if r.name == self.baseline else ""
            lines.append(
                f"{r.name:<{width}}  {r.median_ns_per_op:>9.1f}  {r.median_ratio:>7.3f}  "
                f"{r.min_ratio:>7.3f}  {r.max_ratio:>7.3f}{marker}"
            )
        lines.append(
            "ns/op and ratio are medians over rounds; ratio = alternative / baseline in the same round."
        )
        return "\n".join(lines)

    def as_dict(self) -> dict[str, object]:
        """Everything measured, as JSON-ready data (raw per-round figures included)."""
        return {
            "name": self.name,
            "baseline": self.baseline,
            "rounds": self.rounds,
            "ops": self.ops,
            "warmup_ops": self.warmup_ops,
            "alternatives": {
                r.name: {
                    "median_ns_per_op": r.median_ns_per_op,
                    "median_ratio": r.median_ratio,
                    "min_ratio": r.min_ratio,
                    "max_ratio": r.max_ratio,
                    "ns_per_op": list(r.ns_per_op),
                    "ratios": list(r.ratios),
                }
                for r in self.results
            },
        }


def round_orders(names: Sequence[str], rounds: int) -> list[list[str]]:
    """The running order of each round: rotated by one per round, reversed on every other cycle.

    Over ``2 * len(names)`` rounds each alternative runs in every position twice and after each of
    its two ring neighbours, so a position effect (cache state, frequency scaling) is spread evenly.
    """
    count = len(names)
    orders: list[list[str]] = []
    for index in range(rounds):
        shift = index % count
        order = [*names[shift:], *names[:shift]]
        if (index // count) % 2:
            order.reverse()
        orders.append(order)
    return orders


def _timed(run: Alternative, ops: int) -> int:
    """Nanoseconds ``run(ops)`` takes with the garbage collector off."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        started = time.perf_counter_ns()
        run(ops)
        return time.perf_counter_ns() - started
    finally:
        if enabled:
            gc.enable()


def compare(
    name: str,
    alternatives: Mapping[str, Alternative],
    *,
    baseline: str,
    rounds: int = 15,
    ops: int = 20_000,
    warmup_ops: int = 2_000,
) -> Comparison:
    """Time every alternative side by side and return per-round costs and ratios to ``baseline``.

    Each alternative is called once with ``warmup_ops`` (untimed), then once per round with
    ``ops``; so each performs exactly ``warmup_ops + rounds * ops`` operations in all.
    """
    if baseline not in alternatives:
        raise ValueError(f"baseline {baseline!r} is not one of the alternatives {list(alternatives)}")
    if rounds < 1 or ops < 1 or warmup_ops < 0:
        raise ValueError("rounds and ops must be positive and warmup_ops not negative")
    names = list(alternatives)
    for alt in names:
        if warmup_ops:
            alternatives[alt](warmup_ops)
    timings: dict[str, list[float]] = {alt: [] for alt in names}
    for order in round_orders(names, rounds):
        for alt in order:
            timings[alt].append(_timed(alternatives[alt], ops) / ops)
    base = timings[baseline]
    results = tuple(
        AlternativeResult(
            name=alt,
            ns_per_op=tuple(timings[alt]),
            ratios=tuple(a / b for a, b in zip(timings[alt], base, strict=True)),
        )
        for alt in names
    )
    return Comparison(name, baseline, rounds, ops, warmup_ops, results)


def measure_memory(build: Callable[[], object]) -> int:
    """Bytes retained by the object graph ``build()`` returns, measured with :mod:`tracemalloc`.

    Counts what is still allocated once ``build`` has returned and garbage has been collected,
    while its result is alive: temporaries freed during the build are not counted.
    """
    started_here = not tracemalloc.is_tracing()
    if started_here:
        tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        built = build()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        del built
        return after - before
    finally:
        if started_here:
            tracemalloc.stop()


def machine_info() -> dict[str, object]:
    """Where the figures were measured: Python, platform and CPU count."""
    return {
        "python": sys.version,
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
    }


def write_results(
    benchmark: str,
    comparisons: Sequence[Comparison],
    *,
    extra: Mapping[str, object] | None = None,
    directory: Path = RESULTS_DIR,
) -> Path:
    """Write ``comparisons`` and the machine info as JSON under ``directory``; return the file."""
    now = _dt.datetime.now(_dt.UTC)
    data: dict[str, object] = {
        "benchmark": benchmark,
        "time_utc": now.isoformat(timespec="seconds"),
        "machine": machine_info(),
        **(dict(extra) if extra else {}),
        "comparisons": [c.as_dict() for c in comparisons],
    }
    directory.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", benchmark)
    path = directory / f"{slug}-{now.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path
