"""The canary policy: incremental state, JSON round-trip, and its three decisions with reasons."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

from watchkeep.devtools.canary_sim import Design, simulate_proportion
from watchkeep.registry.canary import (
    CanaryPolicy,
    CanaryState,
    Counts,
    MetricRule,
    Moments,
    Sample,
    decide,
    observe,
    start,
)

ERRORS = MetricRule("error_rate", "proportion", "lower_is_better", 0.01)
LATENCY = MetricRule("latency_ms", "mean", "lower_is_better", 50.0)
FEEDBACK = MetricRule("feedback_pass", "proportion", "higher_is_better", 0.05)


def _policy(**kw: int) -> CanaryPolicy:
    return CanaryPolicy(metrics=(ERRORS, LATENCY), alpha=0.05, **kw)


def _batch(
    rng: random.Random, p_base: float, p_cand: float, lat_ratio: float, n: int = 1000
) -> dict[str, tuple[Sample, Sample]]:
    nc = sum(rng.random() < 0.1 for _ in range(n))
    nb = n - nc
    eb = sum(rng.random() < p_base for _ in range(nb))
    ec = sum(rng.random() < p_cand for _ in range(nc))
    lb = [rng.lognormvariate(6.5, 0.5) for _ in range(nb)]
    lc = [lat_ratio * rng.lognormvariate(6.5, 0.5) for _ in range(nc)]
    return {"error_rate": (Counts(nb, eb), Counts(nc, ec)), "latency_ms": (Moments.of(lb), Moments.of(lc))}


def test_moments_merge_is_exact() -> None:
    values = [random.Random(3).gauss(100, 20) for _ in range(50)]
    merged = Moments.of(values[:17]).merge(Moments.of(values[17:])).merge(Moments(0))
    whole = Moments.of(values)
    assert merged.n == 50
    assert merged.mean == pytest.approx(whole.mean)
    assert merged.variance == pytest.approx(float(np.var(values, ddof=1)))


def test_regression_rolls_back_with_figures_in_the_reason() -> None:
    rng = random.Random(7)
    state = start(_policy(min_samples=200, max_samples=20_000))
    decision = decide(state)
    assert decision.action == "continue"
    for _ in range(60):
        state = observe(state, _batch(rng, 0.02, 0.08, 1.0))
        decision = decide(state)
        if decision.action != "continue":
            break
    assert decision.action == "rollback"
    assert decision.metric == "error_rate"
    assert decision.p_value is not None
    assert decision.p_value <= 0.025
    assert "error_rate" in decision.reason
    assert "0.025" in decision.reason  # the Bonferroni level is stated
    report = {m.name: m for m in decision.metrics}["error_rate"]
    assert report.candidate > report.baseline
    assert report.n_candidate >= 200


def test_null_candidate_is_promoted_at_max_samples() -> None:
    rng = random.Random(11)
    state = start(_policy(min_samples=200, max_samples=1500))
    while (decision := decide(state)).action == "continue":
        state = observe(state, _batch(rng, 0.02, 0.02, 1.0))
    assert decision.action == "promote"
    assert decision.metric is None
    assert "max_samples" in decision.reason or "within its tolerance" in decision.reason
    assert max(m.n_candidate for m in decision.metrics) >= 1500 or decision.p_value is not None


def test_early_promotion_when_all_metrics_are_shown_within_tolerance() -> None:
    policy = CanaryPolicy(metrics=(FEEDBACK,), alpha=0.05, min_samples=100, max_samples=10**9)
    state = start(policy)
    for _ in range(40):  # identical pass rates 80 %, tolerance 5 points: equivalence is provable
        state = observe(state, {"feedback_pass": (Counts(900, 720), Counts(100, 80))})
        if decide(state).action != "continue":
            break
    decision = decide(state)
    assert decision.action == "promote"
    assert decision.p_value is not None
    assert decision.p_value <= 0.05
    assert "within its tolerance" in decision.reason


def test_higher_is_better_direction() -> None:
    policy = CanaryPolicy(metrics=(FEEDBACK,), min_samples=100, max_samples=10**9)
    worse = observe(start(policy), {"feedback_pass": (Counts(5000, 4000), Counts(1000, 650))})
    better = observe(start(policy), {"feedback_pass": (Counts(5000, 4000), Counts(1000, 950))})
    assert decide(worse).action == "rollback"
    assert decide(better).action != "rollback"
    assert decide(better).metrics[0].worsening < 0


def test_no_test_before_min_samples() -> None:
    state = observe(start(_policy(min_samples=500)), {"error_rate": (Counts(400, 0), Counts(100, 60))})
    assert state.metrics["error_rate"].p_worse == 1.0
    assert decide(state).action == "continue"


def test_state_round_trips_through_json() -> None:
    rng = random.Random(5)
    state = observe(observe(start(_policy()), _batch(rng, 0.02, 0.03, 1.1)), _batch(rng, 0.02, 0.03, 1.1))
    again = CanaryState.from_json(json.loads(json.dumps(state.to_json())))
    assert again == state
    assert decide(again) == decide(state)


def test_bad_input_is_refused() -> None:
    state = start(_policy())
    with pytest.raises(KeyError, match="not in the canary policy"):
        observe(state, {"nope": (Counts(1, 0), Counts(1, 0))})
    with pytest.raises(TypeError, match="proportion"):
        observe(state, {"error_rate": (Moments(1, 1.0), Moments(1, 1.0))})
    with pytest.raises(ValueError, match="events"):
        Counts(3, 4)
    with pytest.raises(ValueError, match="tolerance"):
        MetricRule("x", tolerance=0.0)
    with pytest.raises(ValueError, match="distinct"):
        CanaryPolicy(metrics=(ERRORS, ERRORS))
    assert math.isnan(Counts(0, 0).value)


def test_policy_and_simulation_agree_on_one_run() -> None:
    # the vectorised simulation (the evidence) must decide exactly like observe/decide (the product)
    design = Design(runs=1, batch=1000, looks=30, min_samples=200, alpha=0.05)
    sim = simulate_proportion(0.02, 0.05, 0.01, design, seed=4)
    rng = np.random.default_rng(4)
    nc = rng.binomial(design.batch, design.split, size=(1, design.looks))
    nb = design.batch - nc
    eb, ec = rng.binomial(nb, 0.02), rng.binomial(nc, 0.05)
    state = start(CanaryPolicy(metrics=(ERRORS,), alpha=0.05, min_samples=200, max_samples=10**9))
    rolled_back_at = -1
    for look in range(design.looks):
        batch = {
            "error_rate": (
                Counts(int(nb[0, look]), int(eb[0, look])),
                Counts(int(nc[0, look]), int(ec[0, look])),
            )
        }
        state = observe(state, batch)
        if decide(state).action == "rollback":
            rolled_back_at = look
            break
    assert rolled_back_at == int(sim.msprt[0])
    assert rolled_back_at >= 0
