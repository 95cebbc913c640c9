"""Quantile estimation from explicit buckets, checked against hand-computed interpolations; the
performance view's quantiles on collections written as plain data."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from plain_data import PlainCollection

from telemetry_otel.views._quantiles import Buckets, histogram_quantile, merge_buckets
from telemetry_otel.views._render import RenderedView

Render = Callable[..., RenderedView]

BOUNDS = (1.0, 2.0, 4.0)


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        # counts (2, 2, 4, 0): cumulative 2, 4, 8, 8; total 8.
        (0.25, 1.0),  # rank 2 in (0, 1]: 0 + 1 * 2/2
        (0.5, 2.0),  # rank 4 in (1, 2]: 1 + 1 * (4-2)/2
        (0.75, 3.0),  # rank 6 in (2, 4]: 2 + 2 * (6-4)/4
        (0.99, 3.96),  # rank 7.92 in (2, 4]: 2 + 2 * 3.92/4
        (1.0, 4.0),  # rank 8: the top of the highest non-empty bucket
        (0.0625, 0.25),  # rank 0.5 in (0, 1]: the first bucket starts at 0
    ],
)
def test_linear_interpolation_inside_the_bucket_holding_the_rank(q: float, expected: float) -> None:
    assert histogram_quantile(q, BOUNDS, (2, 2, 4, 0)) == pytest.approx(expected)


def test_a_rank_in_the_inf_bucket_gives_the_largest_finite_bound() -> None:
    # counts (1, 0, 0, 3): cumulative 1, 1, 1, 4. The median (rank 2) is above 4: the estimate is 4.
    assert histogram_quantile(0.5, BOUNDS, (1, 0, 0, 3)) == 4.0
    assert histogram_quantile(0.25, BOUNDS, (1, 0, 0, 3)) == 1.0  # rank 1 still in (0, 1]


def test_no_observation_or_no_finite_bound_is_unknown() -> None:
    assert histogram_quantile(0.5, BOUNDS, (0, 0, 0, 0)) is None
    assert histogram_quantile(0.5, (), (5,)) is None
    assert Buckets(BOUNDS, (0, 0, 0, 0), 0, 0.0).mean is None


def test_a_first_bucket_ending_at_or_below_zero_returns_its_bound() -> None:
    assert histogram_quantile(0.25, (0.0, 1.0), (2, 2, 0)) == 0.0


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="not in"):
        histogram_quantile(0.0, BOUNDS, (1, 1, 1, 1))
    with pytest.raises(ValueError, match="not in"):
        histogram_quantile(1.5, BOUNDS, (1, 1, 1, 1))
    with pytest.raises(ValueError, match="bucket counts"):
        histogram_quantile(0.5, BOUNDS, (1, 1, 1))
    with pytest.raises(ValueError, match="bucket counts"):
        Buckets(BOUNDS, (1, 1), 2, 1.0)


def test_merging_adds_bucket_by_bucket_and_refuses_different_bounds() -> None:
    a = Buckets(BOUNDS, (1, 0, 2, 0), 3, 5.0)
    b = Buckets(BOUNDS, (0, 3, 0, 1), 4, 11.0)
    assert merge_buckets([a, b]) == Buckets(BOUNDS, (1, 3, 2, 1), 7, 16.0)
    assert merge_buckets([a, Buckets((1.0, 3.0, 4.0), (0, 0, 0, 0), 0, 0.0)]) is None
    assert merge_buckets([]) is None


@given(
    counts=st.lists(st.integers(min_value=0, max_value=1000), min_size=4, max_size=4),
    q1=st.floats(min_value=0.001, max_value=1.0),
    q2=st.floats(min_value=0.001, max_value=1.0),
)
def test_estimates_are_monotonic_and_inside_the_bounds(counts: list[int], q1: float, q2: float) -> None:
    low, high = sorted((q1, q2))
    first, second = histogram_quantile(low, BOUNDS, counts), histogram_quantile(high, BOUNDS, counts)
    if sum(counts) == 0:
        assert first is None
        assert second is None
        return
    assert first is not None
    assert second is not None
    assert 0.0 <= first <= second <= BOUNDS[-1]


def test_service_and_runtime_quantiles_from_recorded_requests(plain_render: Render) -> None:
    api = [0.003] * 10  # LATENCY_BUCKETS: (0.0025, 0.005]
    worker = [0.2] * 10 + [100.0]  # (0.1, 0.25], then one above 60 s: the +Inf bucket
    collection = (
        PlainCollection()
        .service("api", requests=len(api), errors=0, durations=api, outcome="none")
        .service("worker", requests=len(worker), errors=0, durations=worker, outcome="none")
        .build()
    )
    document = plain_render("performance", collection).document
    assert document["services"]["api"]["latency"] == {
        "count": 10,
        "mean_seconds": pytest.approx(0.003),
        "p50_seconds": pytest.approx(0.0025 + 0.0025 * 5 / 10),
        "p95_seconds": pytest.approx(0.0025 + 0.0025 * 9.5 / 10),
        "p99_seconds": pytest.approx(0.0025 + 0.0025 * 9.9 / 10),
    }
    # worker: 10 in (0.1, 0.25], 1 in (60, +Inf); p99 has rank 10.89 > 10: the largest finite bound.
    assert document["services"]["worker"]["latency"]["p99_seconds"] == 60.0
    # Merged (21 observations): the median has rank 10.5, in (0.1, 0.25] after 10 below it.
    runtime = document["latency"]
    assert runtime["count"] == 21
    assert runtime["p50_seconds"] == pytest.approx(0.1 + 0.15 * 0.5 / 10)
    assert runtime["p95_seconds"] == pytest.approx(0.1 + 0.15 * (19.95 - 10) / 10)


def test_no_request_means_no_quantile(plain_render: Render) -> None:
    idle = PlainCollection().service("idle", health=None, requests=0, errors=0, outcome="none").build()
    document = plain_render("performance", idle).document
    assert document["latency"] == dict.fromkeys(
        ("count", "mean_seconds", "p50_seconds", "p95_seconds", "p99_seconds")
    )
    assert document["services"]["idle"]["latency"]["p95_seconds"] is None
    assert plain_render("summary", idle).document["latency_p95_seconds"] is None
