"""The benchmarks' percentile intervals cover the true percentile at least nominally."""

from __future__ import annotations

import numpy as np
import pytest

from watchkeep.devtools.quantiles import quantile_interval


@pytest.mark.parametrize(("q", "n"), [(0.5, 16), (0.5, 40), (0.95, 60), (0.95, 200), (0.99, 500)])
def test_coverage_by_simulation(q: float, n: int) -> None:
    rng = np.random.default_rng(7)
    truth = float(np.quantile(rng.lognormal(0.0, 0.8, 2_000_000), q))  # skewed, like latency
    runs = 2000
    covered = 0
    for _ in range(runs):
        est = quantile_interval(rng.lognormal(0.0, 0.8, n).tolist(), q)
        covered += est.low <= truth <= est.high
    # At least nominal 95 %, less three binomial standard errors of the simulation.
    assert covered / runs >= 0.95 - 3 * (0.95 * 0.05 / runs) ** 0.5


def test_the_estimate_lies_in_its_interval_and_n_is_kept() -> None:
    est = quantile_interval([5.0, 1.0, 3.0, 2.0, 4.0], 0.5)
    assert est.value == 3.0
    assert est.low <= est.value <= est.high
    assert est.n == 5


def test_no_samples_is_an_error() -> None:
    with pytest.raises(ValueError, match="no samples"):
        quantile_interval([], 0.5)
