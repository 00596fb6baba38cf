"""compare_runs pairs items, reports the unpaired, decides with reasons; check_thresholds."""

from __future__ import annotations

import json

import pytest

from tests.support.eval_results import result, run_of
from watchkeep.evals.config import GateSpec
from watchkeep.evals.gate import GatePolicy, check_thresholds, compare_runs
from watchkeep.evals.model import Score


def test_policy_from_spec() -> None:
    spec = GateSpec(alpha=0.01, max_drop=0.02, metrics=["pass_rate", "exact"], thresholds={"pass_rate": 0.8})
    policy = GatePolicy.from_spec(spec)
    assert policy.alpha == 0.01
    assert policy.max_drop == 0.02
    assert policy.metrics == ("pass_rate", "exact")
    assert policy.thresholds == {"pass_rate": 0.8}
    assert policy.bootstrap_resamples == 2000


def test_identical_runs_pass() -> None:
    runs = run_of([True] * 80 + [False] * 20)
    cmp = compare_runs(runs, runs, GatePolicy())
    assert cmp.verdict == "pass"
    assert cmp.n_paired == 100
    assert (cmp.mcnemar.b, cmp.mcnemar.c, cmp.mcnemar.p_value) == (0, 0, 1.0)
    assert cmp.metrics[0].delta.delta == 0.0
    assert all(d.change == "same" for d in cmp.items)


def test_clear_regression_is_flagged_with_reasons_and_diffs() -> None:
    base = run_of([True] * 100)
    cand = run_of([True] * 70 + [False] * 30)
    cmp = compare_runs(base, cand, GatePolicy())
    assert cmp.verdict == "regression"
    assert cmp.mcnemar.b == 30
    assert cmp.mcnemar.c == 0
    assert cmp.metrics[0].regression
    assert cmp.metrics[0].test == "mcnemar-exact"
    assert cmp.metrics[0].delta.delta == pytest.approx(-0.3)
    assert cmp.metrics[0].delta.high < 0
    assert "pass_rate dropped" in cmp.reasons[0]
    assert [d.change for d in cmp.items[:30]] == ["broken"] * 30
    assert (cmp.items[0].baseline_output, cmp.items[0].candidate_output) == ("ok", "ok")


def test_small_noisy_drop_is_not_a_regression() -> None:
    base = run_of([True] * 18 + [False] * 2)
    cand = run_of([True] * 16 + [False] * 4)
    assert compare_runs(base, cand, GatePolicy()).verdict == "pass"


def test_improvement_is_not_a_regression() -> None:
    base = run_of([False] * 50)
    cand = run_of([True] * 50)
    cmp = compare_runs(base, cand, GatePolicy())
    assert cmp.verdict == "pass"
    assert cmp.items[0].change == "fixed"


def test_unpaired_items_are_reported_not_used() -> None:
    base = [*run_of([True] * 10), result("only-base", False)]
    cand = [*run_of([True] * 10), result("only-cand", False), result("v", True, variant="typos")]
    cmp = compare_runs(base, cand, GatePolicy())
    assert cmp.n_paired == 10
    assert cmp.only_baseline == [("only-base", "")]
    assert cmp.only_candidate == [("only-cand", ""), ("v", "typos")]


def test_repeats_are_averaged_per_item() -> None:
    base = [result("a", True, repeat=r) for r in range(4)]
    cand = [result("a", r < 1, repeat=r) for r in range(4)]
    cmp = compare_runs(base, cand, GatePolicy())
    assert cmp.n_paired == 1
    (diff,) = cmp.items
    assert (diff.baseline_pass_rate, diff.candidate_pass_rate, diff.change) == (1.0, 0.25, "broken")
    assert cmp.mcnemar.b == 1


def test_no_paired_items_is_inconclusive() -> None:
    cmp = compare_runs(run_of([True] * 3, prefix="x"), run_of([True] * 3, prefix="y"), GatePolicy())
    assert cmp.verdict == "inconclusive"
    assert cmp.reasons == ["no item was scored in both runs"]
    assert cmp.metrics[0].p_value is None
    json.dumps(cmp.to_json(), allow_nan=False)


def test_error_rate_above_the_bar_is_inconclusive() -> None:
    base = run_of([True] * 10)
    cand = [*run_of([True] * 8), result("i8", None), result("i9", None)]
    cmp = compare_runs(base, cand, GatePolicy(max_error_rate=0.1))
    assert cmp.verdict == "inconclusive"
    assert "error rate 0.200" in cmp.reasons[0]
    assert cmp.n_paired == 8


def test_margin_uses_the_bootstrap_and_tolerates_small_drops() -> None:
    base = run_of([True] * 300)
    cand = run_of([True] * 291 + [False] * 9)  # a 3-point drop
    strict = compare_runs(base, cand, GatePolicy())
    tolerant = compare_runs(base, cand, GatePolicy(max_drop=0.10))
    assert strict.verdict == "regression"
    assert tolerant.verdict == "pass"
    assert tolerant.metrics[0].test == "bootstrap-bca"


def test_value_and_evaluator_metrics_with_holm() -> None:
    base = [result(f"i{i}", True, extra={"sim": Score(True, 0.9)}) for i in range(60)]
    cand = [result(f"i{i}", True, extra={"sim": Score(i % 2 == 0, 0.6)}) for i in range(60)]
    policy = GatePolicy(metrics=("pass_rate", "exact", "sim", "sim:value"))
    cmp = compare_runs(base, cand, policy, seed=3)
    by_name = {m.name: m for m in cmp.metrics}
    assert by_name["sim:value"].delta.delta == pytest.approx(-0.3)
    assert by_name["sim:value"].regression
    assert by_name["sim"].regression
    assert not by_name["exact"].regression
    assert cmp.verdict == "regression"
    assert len(cmp.reasons) == 3  # pass_rate (every item now fails "sim" half the time) too
    assert by_name["pass_rate"].regression


def test_item_diffs_are_bounded_and_sorted() -> None:
    base = run_of([True] * 50 + [False] * 50)
    cand = run_of([False] * 50 + [True] * 50)
    cmp = compare_runs(base, cand, GatePolicy(), max_item_diffs=10)
    assert len(cmp.items) == 10
    assert cmp.items_truncated
    assert {d.change for d in cmp.items} == {"broken"}
    data = cmp.to_json()
    assert data["items_truncated"] is True
    json.dumps(data, allow_nan=False)


def test_check_thresholds() -> None:
    agg = {
        "pass_rate": {"value": 0.8},
        "evaluators": {"exact": {"pass_rate": {"value": 0.95}}},
        "adversarial": {"asr": {"value": 0.1}, "families": {"jailbreak": {"asr": {"value": 0.3}}}},
    }
    assert check_thresholds(agg, {"pass_rate": 0.8, "exact": 0.9, "asr": 0.1}) == []
    failures = check_thresholds(
        agg, {"pass_rate": 0.85, "asr:jailbreak": 0.2, "missing": 0.5, "asr:nope": 0.1}
    )
    assert failures == [
        "asr:jailbreak: 0.3000 is above the maximum 0.2",
        "asr:nope: no value to check against 0.1",
        "missing: no value to check against 0.5",
        "pass_rate: 0.8000 is below the minimum 0.85",
    ]


def test_variants_of_an_item_are_one_paired_unit_but_listed_apart() -> None:
    base = [result(f"i{n}", True, variant=v) for n in range(20) for v in ("", "typos", "case")]
    cand = [
        result(f"i{n}", not (n < 2 and v == "typos"), variant=v)
        for n in range(20)
        for v in ("", "typos", "case")
    ]
    cmp = compare_runs(base, cand, GatePolicy.from_spec(GateSpec()))
    assert cmp.n_paired == 20  # items, not (item, variant) pairs: variants are not independent
    broken = [(d.item_key, d.variant) for d in cmp.items if d.change == "broken"]
    assert broken == [("i0", "typos"), ("i1", "typos")]
