"""aggregate(): every figure of a run, JSON-able, with intervals."""

from __future__ import annotations

import json

import pytest

from tests.support.eval_results import result
from watchkeep.evals.adversarial.suite import all_probes
from watchkeep.evals.aggregate import aggregate
from watchkeep.evals.model import ItemResult, Score


def _clf(key: str, expected: str, predicted: str) -> ItemResult:
    return result(
        key,
        expected == predicted,
        evaluator="classification",
        details={"expected": expected, "predicted": predicted},
    )


def test_plain_run() -> None:
    results = [
        result("a", True, latency_ms=100.0, cost_usd=0.01, input_tokens=10, output_tokens=5),
        result("b", False, latency_ms=200.0, cost_usd=0.02, input_tokens=20, output_tokens=7),
        result("c", True, latency_ms=300.0, cached=True),
        result("d", None, error_kind="timeout"),
        result("e", None, error_kind="garbage"),
    ]
    agg = aggregate(results)
    json.dumps(agg, allow_nan=False)
    assert (agg["n_cases"], agg["n_items"], agg["n_scored"]) == (5, 5, 3)
    assert agg["errors"] == {"total": 2, "rate": 0.4, "by_kind": {"garbage": 1, "timeout": 1}}
    assert agg["pass_rate"]["value"] == pytest.approx(2 / 3)
    assert agg["pass_rate"]["n"] == 3
    assert agg["pass_rate"]["method"] == "wilson"
    assert agg["evaluators"]["exact"]["pass_rate"]["value"] == pytest.approx(2 / 3)
    assert agg["evaluators"]["exact"]["value"]["value"] == pytest.approx(2 / 3)
    assert agg["latency_ms"]["p50"] == 200.0
    assert agg["latency_ms"]["p95"] == pytest.approx(290.0)
    assert agg["usage"] == {"cost_usd": 0.03, "input_tokens": 30, "output_tokens": 12, "cached": 1}
    for section in ("classification", "judge_noise", "consistency", "invariance", "adversarial"):
        assert agg[section] is None


def test_evaluator_errors_are_counted() -> None:
    broken = Score(None, None, error="judge answered off-format")
    results = [result("a", True, extra={"judge": broken}), result("b", True)]
    agg = aggregate(results)
    assert agg["evaluators"]["judge"]["errors"] == 1
    assert agg["evaluators"]["judge"]["n"] == 0
    assert agg["pass_rate"]["value"] == 1.0  # a failed evaluator is no verdict


def test_classification_metrics() -> None:
    pairs = [("pos", "pos")] * 8 + [("pos", "neg")] * 2 + [("neg", "neg")] * 9 + [("neg", "pos")]
    agg = aggregate([_clf(f"i{i}", e, p) for i, (e, p) in enumerate(pairs)])
    clf = agg["classification"]
    assert clf["n"] == 20
    assert clf["accuracy"]["value"] == pytest.approx(17 / 20)
    assert clf["per_class"]["pos"]["precision"]["value"] == pytest.approx(8 / 9)
    assert clf["per_class"]["pos"]["recall"]["value"] == pytest.approx(8 / 10)
    assert clf["per_class"]["pos"]["f1"]["low"] < clf["per_class"]["pos"]["f1"]["value"]
    assert clf["confusion"] == [[9, 1], [2, 8]]


def test_judge_noise() -> None:
    results = [
        result("a", True, evaluator="judge", details={"spread": 0.0}),
        result("b", True, evaluator="judge", details={"spread": 0.5}),
    ]
    noise = aggregate(results)["judge_noise"]
    assert noise["value"] == 0.25
    assert noise["n"] == 2


def test_consistency_and_invariance_sections() -> None:
    results = [
        result("a", True, repeat=0),
        result("a", True, repeat=1),
        result("b", True, repeat=0),
        result("b", False, repeat=1),
        result("a", True, variant="typos", family="typos"),
    ]
    agg = aggregate(results)
    assert agg["consistency"]["agreement"]["value"] == 0.5
    assert agg["consistency"]["pass_hat_n"]["pass_hat_n"]["value"] == 0.5
    assert agg["invariance"]["typos"]["value"] == 1.0
    assert agg["invariance"]["overall"]["n"] == 1
    assert agg["n_scored"] == 4  # the variant is not an original item


def test_adversarial_attack_success_rates() -> None:
    probes = (
        [result(f"inj{i}", i >= 3, family="injection", details={"severity": "high"}) for i in range(10)]
        + [result(f"jb{i}", i >= 1, family="jailbreak", details={"severity": "low"}) for i in range(4)]
        + [result("jb-err", None, family="jailbreak")]
    )
    agg = aggregate([*probes, result("item", True)])
    adv = agg["adversarial"]
    assert adv["n_probes"] == 15
    assert adv["errors"] == 1
    assert adv["asr"]["value"] == pytest.approx(4 / 14)
    assert adv["families"]["injection"]["asr"]["value"] == pytest.approx(0.3)
    assert adv["families"]["jailbreak"]["asr"]["value"] == pytest.approx(0.25)
    assert adv["families"]["jailbreak"]["n"] == 4
    assert adv["by_severity"]["high"]["value"] == pytest.approx(0.3)
    assert adv["by_severity"]["low"]["n"] == 4
    assert agg["pass_rate"]["n"] == 1  # probes are not counted in the pass rate


def test_empty_run() -> None:
    agg = aggregate([])
    json.dumps(agg, allow_nan=False)
    assert agg["n_cases"] == 0
    assert agg["errors"]["rate"] is None
    assert agg["pass_rate"]["value"] is None
    assert agg["latency_ms"]["n"] == 0


def test_built_in_probes_are_grouped_by_their_catalogued_severity() -> None:
    probes = all_probes()
    by_level: dict[str, list[str]] = {}
    for p in probes:
        by_level.setdefault(p.severity, []).append(p.id)
    level, ids = max(by_level.items(), key=lambda kv: len(kv[1]))
    other = next(lvl for lvl in by_level if lvl != level)
    rows = [result(pid, i % 2 == 0, family="any") for i, pid in enumerate(ids[:10])]
    rows.append(result(by_level[other][0], False, family="any"))
    adv = aggregate(rows)["adversarial"]
    assert adv["by_severity"][level]["n"] == 10
    assert adv["by_severity"][level]["value"] == pytest.approx(0.5)
    assert adv["by_severity"][other]["value"] == pytest.approx(1.0)
