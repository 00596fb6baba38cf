"""The gate's error rates, measured by simulation.

The trials go through ``decide_paired``, the decision ``compare_runs`` makes after pairing
(a test below checks that the two agree), so a thousand runs of 300 items take seconds.

- null: both runs draw each item's pass from the same per-item probability; the gate must
  flag at most alpha = 5 % of them (the Clopper-Pearson lower bound of the observed rate
  <= 5 %: the observed count is within what alpha allows).
- power: pass rate 0.85 -> 0.75 on 300 items fails the gate in >= 90 % of trials.
"""

from __future__ import annotations

import numpy as np

from tests.support.eval_results import result, run_of
from watchkeep.evals.gate import GatePolicy, compare_runs, decide_paired
from watchkeep.evals.model import Score
from watchkeep.monitor.stats import clopper_pearson

ITEMS = 300
ALPHA = 0.05


def _flagged(base: np.ndarray, cand: np.ndarray, policy: GatePolicy, seed: int, **more: np.ndarray) -> bool:
    b = {"pass_rate": base, **{k: v[0] for k, v in more.items()}}
    c = {"pass_rate": cand, **{k: v[1] for k, v in more.items()}}
    metrics, _ = decide_paired(b, c, policy, seed=seed)
    return any(m.regression for m in metrics)


def _lower_bound(k: int, n: int) -> float:
    low, _ = clopper_pearson(np.array([k]), np.array([n]))
    return float(low[0])


def test_null_false_alarm_rate_mcnemar() -> None:
    rng = np.random.default_rng(14)
    policy = GatePolicy(alpha=ALPHA, bootstrap_resamples=100)
    trials = 1000
    p = rng.beta(4, 1, (trials, ITEMS))  # items differ in difficulty; mean pass rate 0.8
    base = (rng.random((trials, ITEMS)) < p).astype(float)
    cand = (rng.random((trials, ITEMS)) < p).astype(float)
    alarms = sum(_flagged(base[t], cand[t], policy, t) for t in range(trials))
    assert _lower_bound(alarms, trials) <= ALPHA, alarms


def test_null_false_alarm_rate_with_repeats() -> None:
    """Three repeats per item, majority verdicts: McNemar stays exact."""
    rng = np.random.default_rng(17)
    policy = GatePolicy(alpha=ALPHA, bootstrap_resamples=100)
    trials = 600
    p = rng.beta(2, 1, (trials, ITEMS, 1))
    base = (rng.random((trials, ITEMS, 3)) < p).mean(axis=2)
    cand = (rng.random((trials, ITEMS, 3)) < p).mean(axis=2)
    alarms = sum(_flagged(base[t], cand[t], policy, t) for t in range(trials))
    assert _lower_bound(alarms, trials) <= ALPHA, alarms


def test_null_false_alarm_rate_bootstrap_at_the_margin() -> None:
    """A continuous metric exactly ``max_drop`` worse: the boundary of H0, the hardest null."""
    rng = np.random.default_rng(15)
    policy = GatePolicy(alpha=ALPHA, metrics=("sim:value",), max_drop=0.05, bootstrap_resamples=1000)
    trials = 500
    quality = rng.beta(5, 2, (trials, ITEMS))
    b_val = quality + rng.normal(0, 0.1, (trials, ITEMS))
    c_val = quality + rng.normal(0, 0.1, (trials, ITEMS))
    # same distribution, shifted by exactly the margin: the true delta is -0.05
    c_val = c_val - 0.05
    ones = np.ones(ITEMS)
    alarms = sum(
        _flagged(ones, ones, policy, t, **{"sim:value": np.stack([b_val[t], c_val[t]])})
        for t in range(trials)
    )
    assert _lower_bound(alarms, trials) <= ALPHA, alarms


def test_family_wise_rate_over_several_metrics() -> None:
    """Three null metrics tested together: Holm keeps the chance of any alarm <= alpha."""
    rng = np.random.default_rng(18)
    policy = GatePolicy(alpha=ALPHA, metrics=("pass_rate", "a:value", "b:value"), bootstrap_resamples=500)
    trials = 400
    alarms = 0
    for t in range(trials):
        p = rng.beta(4, 1, ITEMS)
        base, cand = (rng.random(ITEMS) < p) * 1.0, (rng.random(ITEMS) < p) * 1.0
        a = rng.normal(0, 1, (2, ITEMS))
        b = rng.exponential(1, (2, ITEMS))
        alarms += _flagged(base, cand, policy, t, **{"a:value": a, "b:value": b})
    assert _lower_bound(alarms, trials) <= ALPHA, alarms


def test_power_against_a_ten_point_drop() -> None:
    """0.85 -> 0.75 on 300 items: each item keeps its difficulty, the candidate passes it
    with 0.75/0.85 of the baseline's probability (so the mean drops by exactly 10 points)."""
    rng = np.random.default_rng(16)
    policy = GatePolicy(alpha=ALPHA, bootstrap_resamples=100)
    trials = 500
    p = rng.beta(6.8, 1.2, (trials, ITEMS))  # mean 0.85
    base = (rng.random((trials, ITEMS)) < p).astype(float)
    cand = (rng.random((trials, ITEMS)) < p * 0.75 / 0.85).astype(float)
    caught = sum(_flagged(base[t], cand[t], policy, t) for t in range(trials))
    assert caught / trials >= 0.90, caught


def test_power_without_item_correlation() -> None:
    """The worst pairing: outcomes independent of the item. Power is then ~91 %."""
    rng = np.random.default_rng(20)
    policy = GatePolicy(alpha=ALPHA, bootstrap_resamples=100)
    trials = 300
    base = (rng.random((trials, ITEMS)) < 0.85).astype(float)
    cand = (rng.random((trials, ITEMS)) < 0.75).astype(float)
    caught = sum(_flagged(base[t], cand[t], policy, t) for t in range(trials))
    assert caught / trials >= 0.85, caught


def test_compare_runs_decides_as_decide_paired() -> None:
    rng = np.random.default_rng(19)
    policy = GatePolicy(metrics=("pass_rate", "sim:value"), bootstrap_resamples=300)
    for t in range(20):
        p = rng.beta(3, 1, 120)
        b_pass, c_pass = rng.random(120) < p, rng.random(120) < p - 0.05 * (t % 3)
        b_val, c_val = rng.random(120), rng.random(120) - 0.03 * (t % 2)
        base = [
            result(f"i{i:03}", bool(b_pass[i]), extra={"sim": Score(None, float(b_val[i]))})
            for i in range(120)
        ]
        cand = [
            result(f"i{i:03}", bool(c_pass[i]), extra={"sim": Score(None, float(c_val[i]))})
            for i in range(120)
        ]
        cmp = compare_runs(base, cand, policy, seed=t)
        direct, mcnemar = decide_paired(
            {"pass_rate": b_pass * 1.0, "sim:value": b_val},
            {"pass_rate": c_pass * 1.0, "sim:value": c_val},
            policy,
            seed=t,
        )
        assert cmp.metrics == direct
        assert cmp.mcnemar == mcnemar
        assert (cmp.verdict == "regression") == any(m.regression for m in direct)
    assert compare_runs(run_of([True]), run_of([True]), policy).n_paired == 1
