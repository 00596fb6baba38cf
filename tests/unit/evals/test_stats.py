"""The gate's statistics agree with scipy and statsmodels, and their intervals cover."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint

from watchkeep.evals.stats import (
    DeltaInterval,
    PairedBootstrap,
    holm,
    mcnemar_exact,
    paired_bootstrap,
)
from watchkeep.monitor.stats import clopper_pearson, wilson


@pytest.mark.parametrize(("b", "c"), [(0, 0), (0, 5), (5, 0), (3, 9), (10, 10), (40, 17), (1, 60)])
def test_mcnemar_two_sided_matches_statsmodels(b: int, c: int) -> None:
    expected = mcnemar([[50, b], [c, 50]], exact=True).pvalue
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize(("b", "c"), [(0, 5), (5, 0), (3, 9), (12, 4), (40, 17)])
def test_mcnemar_one_sided_is_the_binomial_tail(b: int, c: int) -> None:
    greater = sps.binomtest(b, b + c, 0.5, alternative="greater").pvalue
    less = sps.binomtest(b, b + c, 0.5, alternative="less").pvalue
    assert mcnemar_exact(b, c, alternative="greater") == pytest.approx(greater, rel=1e-12)
    assert mcnemar_exact(b, c, alternative="less") == pytest.approx(less, rel=1e-12)


def test_mcnemar_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        mcnemar_exact(-1, 2)
    with pytest.raises(ValueError, match="alternative"):
        mcnemar_exact(1, 2, alternative="sideways")  # type: ignore[arg-type]


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (85, 100), (255, 300)])
def test_wilson_matches_statsmodels(k: int, n: int) -> None:
    low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
    est = wilson(k, n)
    assert est.low == pytest.approx(low, abs=1e-12)
    assert est.high == pytest.approx(high, abs=1e-12)


def test_clopper_pearson_matches_statsmodels() -> None:
    low, high = clopper_pearson(np.array([0, 7, 20]), np.array([20, 20, 20]))
    for i, k in enumerate([0, 7, 20]):
        exp_low, exp_high = proportion_confint(k, 20, alpha=0.05, method="beta")
        assert low[i] == pytest.approx(exp_low, abs=1e-9)
        assert high[i] == pytest.approx(exp_high, abs=1e-9)


def test_bootstrap_matches_scipy_bca() -> None:
    rng = np.random.default_rng(7)
    base = rng.binomial(1, 0.8, 400).astype(float)
    cand = np.where(rng.random(400) < 0.15, 1 - base, base)
    ours = paired_bootstrap(base, cand, n_resamples=9999, seed=1)
    theirs = sps.bootstrap(
        (base, cand),
        lambda b, c, axis=-1: np.mean(c, axis=axis) - np.mean(b, axis=axis),
        paired=True,
        vectorized=True,
        n_resamples=9999,
        method="BCa",
        random_state=np.random.default_rng(2),
    ).confidence_interval
    assert ours.delta == pytest.approx(cand.mean() - base.mean())
    assert ours.low == pytest.approx(theirs.low, abs=0.006)
    assert ours.high == pytest.approx(theirs.high, abs=0.006)
    assert ours.n == 400
    assert ours.method == "bca"


def test_bootstrap_median_uses_percentile_and_matches_scipy() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(10, 2, 300)
    cand = base + rng.normal(0.5, 1, 300)
    ours = paired_bootstrap(base, cand, statistic="median", n_resamples=5000, seed=4)
    theirs = sps.bootstrap(
        (base, cand),
        lambda b, c, axis=-1: np.median(c, axis=axis) - np.median(b, axis=axis),
        paired=True,
        vectorized=True,
        n_resamples=5000,
        method="percentile",
        random_state=np.random.default_rng(5),
    ).confidence_interval
    assert ours.method == "percentile"
    assert ours.low == pytest.approx(theirs.low, abs=0.12)
    assert ours.high == pytest.approx(theirs.high, abs=0.12)


def test_bootstrap_is_deterministic_per_seed() -> None:
    rng = np.random.default_rng(0)
    base, cand = rng.random(50), rng.random(50)
    assert paired_bootstrap(base, cand, seed=9) == paired_bootstrap(base, cand, seed=9)
    assert paired_bootstrap(base, cand, seed=9) != paired_bootstrap(base, cand, seed=10)


def test_bootstrap_edge_cases() -> None:
    empty = paired_bootstrap(np.array([]), np.array([]))
    assert empty.n == 0
    assert empty.to_json()["delta"] is None
    same = paired_bootstrap(np.ones(20), np.zeros(20))
    assert (same.delta, same.low, same.high) == (-1.0, -1.0, -1.0)
    with pytest.raises(ValueError, match="same length"):
        paired_bootstrap(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="statistic"):
        paired_bootstrap(np.ones(3), np.ones(3), statistic="mode")  # type: ignore[arg-type]


def test_p_below_inverts_the_interval() -> None:
    """p <= alpha exactly when the upper (1 - alpha) bound lies below the threshold."""
    rng = np.random.default_rng(11)
    base = rng.binomial(1, 0.8, 300).astype(float)
    cand = rng.binomial(1, 0.72, 300).astype(float)
    boot = PairedBootstrap(base, cand, n_resamples=4000, seed=3)
    high = boot.interval(0.90).high  # the upper bound of a one-sided 95 % interval
    assert boot.p_below(high + 0.01) < 0.05 < boot.p_below(high - 0.01)
    assert boot.p_below(high) == pytest.approx(0.05, abs=0.01)
    assert boot.p_below(-1.5) == 1.0


def test_bootstrap_coverage_is_nominal() -> None:
    """Simulated coverage of the 95 % interval for a paired mean difference is about 95 %."""
    rng = np.random.default_rng(2024)
    trials, n, true_delta = 400, 120, -0.05
    covered = 0
    for t in range(trials):
        base = rng.binomial(1, 0.8, n).astype(float)
        flip = rng.random(n)
        # candidate: independent given base, with mean 0.75
        cand = np.where(base == 1, flip < 0.85, flip < 0.35).astype(float)
        ci = paired_bootstrap(base, cand, n_resamples=1000, seed=t)
        covered += ci.low <= true_delta <= ci.high
    low, high = clopper_pearson(np.array([covered]), np.array([trials]), 0.99)
    assert low[0] <= 0.95 <= high[0], covered / trials


def test_holm_controls_and_orders() -> None:
    assert holm([0.01, 0.04, 0.03], 0.05) == [True, False, False]
    assert holm([0.01, 0.02, 0.04], 0.05) == [True, True, True]
    assert holm([0.2, 0.001], 0.05) == [False, True]
    assert holm([], 0.05) == []


def test_delta_interval_json() -> None:
    d = DeltaInterval(-0.1, -0.2, 0.0, 10, 0.95)
    assert d.to_json() == {
        "delta": -0.1,
        "low": -0.2,
        "high": 0.0,
        "n": 10,
        "confidence": 0.95,
        "method": "bca",
    }
