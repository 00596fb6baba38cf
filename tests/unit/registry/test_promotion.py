"""The stored form of promotion policies (round trip and bounds) and the event reasons."""

from __future__ import annotations

import pytest

from watchkeep.registry.gate_evidence import GateEvidence, MetricEvidence, version_labels
from watchkeep.registry.policy import GateOutcome, GateRequirement, PromotionDecision, PromotionPolicy
from watchkeep.registry.promotion import (
    MAX_EVALUATORS,
    MAX_REQUIREMENTS,
    event_reason,
    policy_from_json,
    policy_to_json,
)


def test_a_policy_survives_its_stored_form() -> None:
    policy = PromotionPolicy(
        (GateRequirement("qa", ("exact",), 0.01, 0.02), GateRequirement("safety@3")), ("owner",)
    )
    assert policy_from_json(policy_to_json(policy)) == policy
    assert policy_from_json({"required_gates": []}).allow_force_roles == ("admin", "owner")


def test_stored_policies_are_bounded() -> None:
    many = {"required_gates": [{"dataset": f"d{k}"} for k in range(MAX_REQUIREMENTS + 1)]}
    with pytest.raises(ValueError, match="at most 16 gates"):
        policy_from_json(many)
    wide = {"required_gates": [{"dataset": "qa", "evaluators": [f"e{k}" for k in range(MAX_EVALUATORS + 1)]}]}
    with pytest.raises(ValueError, match="at most 32 evaluators"):
        policy_from_json(wide)


def test_labels_name_the_version_by_kind() -> None:
    assert version_labels("model", "bot", 3) == ("model:bot@3", "route:bot@3")
    assert version_labels("prompt", "greet", 1) == ("prompt:greet@1",)


def _evidence(dataset: str, delta: float, p: float | None) -> GateEvidence:
    req = GateRequirement(dataset)
    outcome = GateOutcome(dataset, "pass", 0.05, 0.0, req.metrics, ("ok",), 30, 2, 1)
    metric = MetricEvidence("pass_rate", 0.7, 0.7 + delta, delta, p, False)
    return GateEvidence(req, outcome, 1, (metric,), has_runs=True)


def test_a_promotion_records_each_gates_delta_and_p_value() -> None:
    decision = PromotionDecision(True, "promote", ["gate on qa passed", "gate on safe passed"])
    text = event_reason(decision, [_evidence("qa", 0.04, 0.01), _evidence("safe", -0.01, None)], " ship it ")
    assert text == "gates passed: qa (pass_rate +0.04, p=0.01), safe (pass_rate -0.01); ship it"


def test_a_forced_promotion_records_what_it_forced_past() -> None:
    decision = PromotionDecision(True, "forced", ["gate on qa: regression", "forced by admin: hotfix"])
    assert (
        event_reason(decision, [], "hotfix") == "forced past: gate on qa: regression; forced by admin: hotfix"
    )
