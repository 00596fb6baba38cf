"""Tests of a difference between two runs of the same items: McNemar and the paired bootstrap.

Both runs answer the same items, so every comparison is paired: the item is the unit that
is resampled or counted, which removes the (large) item-to-item variance from the delta.

- ``mcnemar_exact`` is the exact binomial test on the discordant pairs (b, c): under "no
  change" each discordant item is equally likely to go either way, so b ~ Binomial(b + c, 1/2).
  It is exact at every n, so its false-alarm rate never exceeds the level.
- ``paired_bootstrap`` resamples items with replacement and takes the BCa interval of the
  delta of the statistic. BCa (bias-corrected and accelerated) rather than the plain
  percentile interval because pass-rate deltas near 0 or 1 are skewed and BCa is
  second-order accurate there; it is also what ``scipy.stats.bootstrap`` does by default,
  so the two agree. The median has no cheap jackknife, so it uses the percentile interval.
  ``bootstrap_p_below`` inverts the same BCa interval into a one-sided p-value, so the test
  and the interval a report shows can never disagree.

Rates and means of one run reuse ``monitor.stats`` (Wilson, Clopper-Pearson, Student t).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats as sps

Alternative = Literal["two-sided", "greater", "less"]
Statistic = Literal["mean", "median"]

_CHUNK = 4_000_000  # resample indices drawn per block: bounds memory at ~32 MB for any n


def mcnemar_exact(b: int, c: int, *, alternative: Alternative = "two-sided") -> float:
    """The exact McNemar p-value from the discordant counts.

    ``b``: baseline passed and candidate failed; ``c``: baseline failed and candidate passed.
    ``"greater"`` tests b > c (the candidate got worse), ``"less"`` tests b < c.
    The two-sided value doubles the smaller tail, as statsmodels' ``mcnemar(exact=True)``.
    """
    if b < 0 or c < 0:
        raise ValueError("discordant counts must be non-negative")
    n = b + c
    if n == 0:
        return 1.0
    if alternative == "greater":
        return float(sps.binom.sf(b - 1, n, 0.5))
    if alternative == "less":
        return float(sps.binom.cdf(b, n, 0.5))
    if alternative != "two-sided":
        raise ValueError(f"unknown alternative {alternative!r}")
    return float(min(1.0, 2 * sps.binom.cdf(min(b, c), n, 0.5)))


@dataclass(frozen=True, slots=True)
class DeltaInterval:
    """``candidate - baseline`` of a statistic over paired items, with its interval."""

    delta: float
    low: float
    high: float
    n: int
    confidence: float
    method: str = "bca"

    def to_json(self) -> dict[str, float | int | str | None]:
        """JSON-able (NaN, from an empty sample, becomes null)."""
        return {
            "delta": _finite(self.delta),
            "low": _finite(self.low),
            "high": _finite(self.high),
            "n": self.n,
            "confidence": self.confidence,
            "method": self.method,
        }


def _finite(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


class PairedBootstrap:
    """The bootstrap distribution of a paired delta, computed once, read as intervals or tests."""

    def __init__(
        self,
        baseline: np.ndarray,
        candidate: np.ndarray,
        *,
        statistic: Statistic = "mean",
        n_resamples: int = 2000,
        seed: int = 0,
    ) -> None:
        base = np.asarray(baseline, dtype=float)
        cand = np.asarray(candidate, dtype=float)
        if base.shape != cand.shape or base.ndim != 1:
            raise ValueError("baseline and candidate must be 1-D arrays of the same length")
        if statistic not in ("mean", "median"):
            raise ValueError(f"unknown statistic {statistic!r}")
        if n_resamples < 1:
            raise ValueError("n_resamples must be positive")
        self.n = int(base.size)
        self.statistic = statistic
        self.method = "bca" if statistic == "mean" else "percentile"
        if self.n == 0:
            self.delta = math.nan
            self.boot = np.empty(0)
            return
        self.delta = _stat(cand, statistic) - _stat(base, statistic)
        self.boot = _resample(base, cand, statistic, n_resamples, seed)
        self._z0 = 0.0
        self._accel = 0.0
        self._degenerate = bool(np.ptp(self.boot) == 0)
        if self.method == "bca" and not self._degenerate:
            share = float(np.mean(self.boot < self.delta))
            self._z0 = float(sps.norm.ppf(np.clip(share, 1e-12, 1 - 1e-12)))
            self._accel = _acceleration(cand - base)

    def _level(self, nominal: float) -> float:
        """The BCa-adjusted quantile level of a nominal one (the identity for percentile)."""
        if self.method != "bca":
            return nominal
        z = self._z0 + float(sps.norm.ppf(nominal))
        return float(sps.norm.cdf(self._z0 + z / (1 - self._accel * z)))

    def interval(self, confidence: float = 0.95) -> DeltaInterval:
        """The two-sided interval at ``confidence``."""
        if not 0 < confidence < 1:
            raise ValueError("confidence must be in (0, 1)")
        if self.n == 0:
            return DeltaInterval(math.nan, math.nan, math.nan, 0, confidence, self.method)
        if self._degenerate:
            point = float(self.boot[0])
            return DeltaInterval(self.delta, point, point, self.n, confidence, self.method)
        tail = (1 - confidence) / 2
        low, high = np.quantile(self.boot, [self._level(tail), self._level(1 - tail)])
        return DeltaInterval(self.delta, float(low), float(high), self.n, confidence, self.method)

    def p_below(self, threshold: float) -> float:
        """One-sided p-value of "the true delta is below ``threshold``" (H0: delta >= threshold).

        It is the smallest alpha at which the upper (1 - alpha) bound of this bootstrap's
        interval falls below ``threshold``: reject when it is <= alpha.
        """
        if self.n == 0:
            return 1.0
        if self._degenerate:
            return 0.0 if float(self.boot[0]) < threshold else 1.0
        share = float(np.mean(self.boot < threshold))
        if share <= 0.0:
            return 1.0
        if share >= 1.0:
            return 1.0 / (self.boot.size + 1)
        if self.method != "bca":
            return 1.0 - share
        w = float(sps.norm.ppf(share)) - self._z0
        nominal = float(sps.norm.cdf(w / (1 + self._accel * w) - self._z0))
        return float(min(1.0, max(1.0 / (self.boot.size + 1), 1.0 - nominal)))


def _stat(x: np.ndarray, statistic: Statistic) -> float:
    return float(x.mean()) if statistic == "mean" else float(np.median(x))


def _resample(
    base: np.ndarray, cand: np.ndarray, statistic: Statistic, n_resamples: int, seed: int
) -> np.ndarray:
    """``n_resamples`` deltas over items drawn with replacement, in memory-bounded blocks."""
    rng = np.random.default_rng(seed)
    n = base.size
    diff = cand - base
    per_block = max(1, _CHUNK // n)
    out = np.empty(n_resamples)
    for start in range(0, n_resamples, per_block):
        stop = min(n_resamples, start + per_block)
        idx = rng.integers(0, n, size=(stop - start, n))
        if statistic == "mean":  # the mean of differences is the difference of means
            out[start:stop] = diff[idx].mean(axis=1)
        else:
            out[start:stop] = np.median(cand[idx], axis=1) - np.median(base[idx], axis=1)
    return out


def _acceleration(diff: np.ndarray) -> float:
    """BCa's acceleration from the jackknife of the mean difference (closed form, O(n))."""
    n = diff.size
    if n < 3:
        return 0.0
    jack = (diff.sum() - diff) / (n - 1)
    dev = jack.mean() - jack
    denom = float((dev**2).sum()) ** 1.5
    return 0.0 if denom == 0 else float((dev**3).sum() / (6 * denom))


def paired_bootstrap(
    baseline: np.ndarray,
    candidate: np.ndarray,
    *,
    statistic: Statistic = "mean",
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> DeltaInterval:
    """The BCa interval of ``statistic(candidate) - statistic(baseline)``, resampling items."""
    boot = PairedBootstrap(baseline, candidate, statistic=statistic, n_resamples=n_resamples, seed=seed)
    return boot.interval(confidence)


def holm(p_values: list[float], alpha: float) -> list[bool]:
    """Holm's step-down rejections: family-wise error <= ``alpha`` under any dependence."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    rejected = [False] * len(p_values)
    m = len(p_values)
    for rank, i in enumerate(order):
        if p_values[i] > alpha / (m - rank):
            break
        rejected[i] = True
    return rejected
