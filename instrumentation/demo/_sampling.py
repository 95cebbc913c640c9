"""Random draws the simulation needs, all from one caller-owned ``random.Random``."""

from __future__ import annotations

import math
import random

__all__ = ["lognormal", "poisson"]


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson-distributed count with the given mean (normal approximation above 30)."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit = math.exp(-mean)
    count = 0
    product = rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def lognormal(rng: random.Random, median: float, sigma: float) -> float:
    """A lognormal draw with the given median and shape ``sigma``."""
    return rng.lognormvariate(math.log(median), sigma)
