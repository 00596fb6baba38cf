"""Simulated canaries, peeked at after every batch: false rollbacks <= alpha, regressions found.

Fixed seeds, vectorised; a few seconds. The figures are in docs/decisions/0015.
"""

from __future__ import annotations

import numpy as np

from watchkeep.devtools.canary_sim import Design, simulate_lognormal_mean, simulate_proportion
from watchkeep.monitor.stats import clopper_pearson
from watchkeep.registry.sequential import always_valid_p, proportion_difference

ALPHA = 0.05


def _rate(looks: np.ndarray) -> tuple[float, float]:
    """The rollback rate and its Clopper-Pearson upper bound."""
    hits = int((looks >= 0).sum())
    _, high = clopper_pearson(np.array(hits), np.array(looks.size))
    return hits / looks.size, float(high)


def test_null_error_rate_false_rollbacks_stay_below_alpha_while_naive_peeking_does_not() -> None:
    for p, seed in ((0.02, 1), (0.10, 2)):
        out = simulate_proportion(p, p, 0.01, Design(runs=2000, looks=50, alpha=ALPHA), seed=seed)
        msprt, msprt_high = _rate(out.msprt)
        naive, _ = _rate(out.naive)
        assert msprt_high <= ALPHA, (p, msprt)  # even the interval's upper end
        assert naive > 2 * ALPHA, (p, naive)  # why the sequential test matters


def test_null_latency_false_rollbacks_stay_below_alpha() -> None:
    out = simulate_lognormal_mean(800.0, 1.0, 0.8, 80.0, Design(runs=400, looks=40), seed=3)
    rate, _ = _rate(out.msprt)
    assert rate <= ALPHA


def test_stated_regressions_are_detected() -> None:
    errors = simulate_proportion(0.02, 0.04, 0.01, Design(runs=1000, looks=50), seed=4)
    latency = simulate_lognormal_mean(800.0, 1.2, 0.8, 80.0, Design(runs=300, looks=40), seed=5)
    assert (
        errors.msprt >= 0
    ).mean() >= 0.9  # error rate 2 % -> 4 % at a 10 % split, 5,000 candidate requests
    assert (latency.msprt >= 0).mean() >= 0.9  # mean latency +20 %
    assert np.median(errors.requests_to_rollback("msprt")) < 50 * 1000


def test_early_promotion_of_a_candidate_worse_by_the_tolerance_is_rare() -> None:
    # the equivalence side: true worsening exactly the tolerance, so "within tolerance" is false
    rng = np.random.default_rng(6)
    runs, looks, batch, tol = 2000, 60, 1000, 0.02
    nc = rng.binomial(batch, 0.5, size=(runs, looks))
    nb = batch - nc
    cb, cc = nb.cumsum(axis=1), nc.cumsum(axis=1)
    diff, var = proportion_difference(
        rng.binomial(nb, 0.10).cumsum(axis=1), cb, rng.binomial(nc, 0.12).cumsum(axis=1), cc
    )
    p_within = np.minimum.accumulate(always_valid_p(tol - diff, var, tol), axis=1)
    false_promotions = int((p_within[:, -1] <= ALPHA).sum())
    assert false_promotions / runs <= ALPHA
