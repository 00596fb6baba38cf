"""The mSPRT formula against references: direct numeric integration, and the z-test it refines."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate
from scipy import stats as sps
from statsmodels.stats.proportion import proportions_ztest

from watchkeep.registry.sequential import (
    always_valid_p,
    log_mixture_lr,
    mean_difference,
    proportion_difference,
)


@pytest.mark.parametrize(
    ("x", "v", "tau"), [(0.3, 0.01, 0.1), (-0.2, 0.04, 0.5), (0.0, 1.0, 1.0), (2.5, 0.5, 0.2)]
)
def test_closed_form_matches_numeric_integration(x: float, v: float, tau: float) -> None:
    # Lambda = integral over theta > 0 of N(x; theta, v) / N(x; 0, v) times the half-normal density
    def integrand(theta: float) -> float:
        return math.exp((x * theta - theta * theta / 2) / v) * 2 * float(sps.norm.pdf(theta, scale=tau))

    numeric, _ = integrate.quad(integrand, 0, np.inf)
    assert math.exp(float(log_mixture_lr(x, v, tau))) == pytest.approx(numeric, rel=1e-7)


def test_p_value_moves_with_the_evidence_like_the_z_test() -> None:
    # statsmodels' two-proportion z-test (candidate larger) at fixed arm sizes: the always-valid
    # p-value orders the cases like the fixed-n one and is never smaller (the price of peeking)
    cases = [(100, 5000, ec, 500) for ec in (30, 10, 20, 14, 25, 40)]
    fixed, valid = [], []
    for eb, nb, ec, nc in cases:
        _, p_fixed = proportions_ztest([ec, eb], [nc, nb], alternative="larger")
        diff, var = proportion_difference(eb, nb, ec, nc)
        fixed.append(float(p_fixed))
        valid.append(float(always_valid_p(diff, var, 0.01)))
    assert np.argsort(fixed).tolist() == np.argsort(valid).tolist()
    assert all(a >= f for a, f in zip(valid, fixed, strict=True))
    assert valid[5] < 0.01 < valid[1]  # 8 % vs 2 % is conclusive, 2 % vs 2 % is not


def test_null_side_and_validity_bounds() -> None:
    assert float(always_valid_p(-0.5, 0.01, 0.1)) == 1.0  # better than baseline: no evidence of worse
    assert float(always_valid_p(0.0, 0.01, 0.1)) == 1.0  # Lambda(0) = 2 sqrt(v/(v+tau^2)) Phi(0) < 1
    with pytest.raises(ValueError, match="tau"):
        log_mixture_lr(0.1, 0.01, 0.0)


def test_differences_and_variances() -> None:
    diff, var = proportion_difference(0, 100, 0, 100)
    assert float(diff) == 0.0
    assert float(var) > 0  # pseudo-counts: one event cannot look infinitely significant
    diff, var = mean_difference(10.0, 4.0, 100, 12.0, 9.0, 50)
    assert float(diff) == 2.0
    assert float(var) == pytest.approx(4 / 100 + 9 / 50)
