"""Simulated canaries, vectorised over runs: the evidence for the canary's error rates.

Why here and not in a test: the tests (which assert the rates) and benchmarks/releases.py
(which prints them) must run the same simulation, and both must run the very functions
``canary.observe`` runs (``sequential``). A run splits each batch of ``batch`` requests
between baseline and candidate at random (``split`` to the candidate), looks after every
batch, and stops at the first rollback; the candidate's rollback look is what is
returned, for the mSPRT and for a naive one-sided z-test at the same alpha peeked at
every batch (the mistake the mSPRT exists to avoid).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from watchkeep.registry.sequential import FloatArray, always_valid_p, mean_difference, proportion_difference


@dataclass(frozen=True, slots=True)
class Design:
    """Traffic and test settings of a simulated canary (one metric, so the level is alpha)."""

    runs: int = 2000
    batch: int = 1000  # requests per look, both arms
    split: float = 0.10  # share of traffic to the candidate
    looks: int = 50
    min_samples: int = 200
    alpha: float = 0.05


@dataclass(frozen=True, slots=True)
class Outcome:
    """Per run, the 0-based look of the first rollback, or -1 when it never rolled back."""

    msprt: np.ndarray
    naive: np.ndarray
    design: Design

    def requests_to_rollback(self, which: str) -> np.ndarray:
        """Total requests (both arms) served until each rolled-back run's rollback."""
        looks = self.msprt if which == "msprt" else self.naive
        return (looks[looks >= 0] + 1) * self.design.batch


def _first(rejected: np.ndarray) -> np.ndarray:
    hit = rejected.any(axis=1)
    return np.where(hit, rejected.argmax(axis=1), -1)


def _decide(worse: FloatArray, var: FloatArray, ready: np.ndarray, tolerance: float, d: Design) -> Outcome:
    p = np.minimum.accumulate(np.where(ready, always_valid_p(worse, var, tolerance), 1.0), axis=1)
    naive = ready & (worse / np.sqrt(np.maximum(var, 1e-300)) > sps.norm.ppf(1 - d.alpha))
    return Outcome(_first(p <= d.alpha), _first(naive), d)


def _arm_sizes(rng: np.random.Generator, d: Design) -> tuple[np.ndarray, np.ndarray]:
    nc = rng.binomial(d.batch, d.split, size=(d.runs, d.looks))
    return d.batch - nc, nc


def simulate_proportion(
    p_base: float,
    p_cand: float,
    tolerance: float,
    design: Design,
    *,
    lower_is_better: bool = True,
    seed: int = 0,
) -> Outcome:
    """Canaries on a rate (errors, passed feedback) with true rates ``p_base`` and ``p_cand``."""
    rng = np.random.default_rng(seed)
    nb, nc = _arm_sizes(rng, design)
    eb, ec = rng.binomial(nb, p_base), rng.binomial(nc, p_cand)
    cnb, cnc = nb.cumsum(axis=1), nc.cumsum(axis=1)
    diff, var = proportion_difference(eb.cumsum(axis=1), cnb, ec.cumsum(axis=1), cnc)
    worse = diff if lower_is_better else -diff
    return _decide(worse, var, np.minimum(cnb, cnc) >= design.min_samples, tolerance, design)


def simulate_lognormal_mean(
    mean_base: float, ratio: float, sigma: float, tolerance: float, design: Design, *, seed: int = 0
) -> Outcome:
    """Canaries on a mean of skewed values (latency): lognormal with shape ``sigma``, the
    candidate's mean ``ratio`` times the baseline's; lower is better."""
    rng = np.random.default_rng(seed)
    nb, nc = _arm_sizes(rng, design)
    mu = np.log(mean_base) - sigma * sigma / 2
    sums = np.zeros((2, 2, design.runs, design.looks))  # arm, power (1: sum, 2: sum of squares), run, look
    for look in range(design.looks):
        x = rng.lognormal(mu, sigma, size=(design.runs, design.batch))
        cand = np.arange(design.batch)[None, :] < nc[:, look : look + 1]  # the first nc of the batch
        x = np.where(cand, x * ratio, x)
        for arm, mask in enumerate((~cand, cand)):
            sums[arm, 0, :, look] = np.where(mask, x, 0.0).sum(axis=1)
            sums[arm, 1, :, look] = np.where(mask, x * x, 0.0).sum(axis=1)
    cum = sums.cumsum(axis=3)
    cn = np.stack([nb.cumsum(axis=1), nc.cumsum(axis=1)]).astype(float)
    means = cum[:, 0] / np.maximum(cn, 1)
    variances = np.maximum(cum[:, 1] - cn * means * means, 0.0) / np.maximum(cn - 1, 1)
    diff, var = mean_difference(means[0], variances[0], cn[0], means[1], variances[1], cn[1])
    return _decide(diff, var, np.minimum(cn[0], cn[1]) >= design.min_samples, tolerance, design)
