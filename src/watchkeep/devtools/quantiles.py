"""Percentiles of benchmark samples with a distribution-free confidence interval.

Latency is skewed and heavy-tailed, so a normal interval around a p95 is wrong. The
order-statistic interval needs no model of the distribution: the number of samples below
the true q-quantile is Binomial(n, q), so the sorted samples at the binomial's
alpha/2 and 1 - alpha/2 points bound it with at least the nominal coverage
(tests/unit/test_quantile_interval.py checks that by simulation). With too few samples
the upper bound is the maximum and the interval says so by being wide.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats as sps


@dataclass(frozen=True, slots=True)
class Quantile:
    """A sample quantile, its interval and the number of samples."""

    value: float
    low: float
    high: float
    n: int

    def format(self, unit: str = "", digits: int = 1) -> str:
        """``12.3 [11.8, 13.0]``: the value and its interval."""
        return f"{self.value:.{digits}f}{unit} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def quantile_interval(samples: Sequence[float], q: float, confidence: float = 0.95) -> Quantile:
    """The ``q``-quantile of ``samples`` (0 < q < 1) with its order-statistic interval."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    n = len(ordered)
    alpha = 1 - confidence
    value = ordered[min(n - 1, max(0, round(q * (n - 1))))]
    lower_rank = int(sps.binom.ppf(alpha / 2, n, q))  # samples below the low bound, at most
    upper_rank = int(sps.binom.ppf(1 - alpha / 2, n, q)) + 1
    low = ordered[max(0, min(n - 1, lower_rank - 1))]
    high = ordered[min(n - 1, upper_rank - 1)]
    return Quantile(value, min(low, value), max(high, value), n)
