"""The promotion policy: gates satisfied, forced past by the right role with a reason, or refused."""

from __future__ import annotations

import pytest

from tests.support.eval_results import run_of
from watchkeep.evals.gate import GatePolicy, compare_runs
from watchkeep.registry.policy import (
    GateOutcome,
    GateRequirement,
    PromotionDecision,
    PromotionPolicy,
    decide_promotion,
)

QA = GateRequirement("qa@3", evaluators=("exact",), alpha=0.05, max_drop=0.0)
SAFETY = GateRequirement("safety", alpha=0.1, max_drop=0.02)
POLICY = PromotionPolicy(required_gates=(QA, SAFETY))


def outcome(req: GateRequirement, verdict: str = "pass", **kw: object) -> GateOutcome:
    fields: dict[str, object] = {
        "dataset": req.dataset,
        "verdict": verdict,
        "alpha": req.alpha,
        "max_drop": req.max_drop,
        "metrics": req.metrics,
        "reasons": ("pass_rate dropped",) if verdict == "regression" else (),
    }
    fields.update(kw)
    return GateOutcome(**fields)  # type: ignore[arg-type]


def decide(
    results: dict[str, GateOutcome], role: str = "member", force: bool = False, reason: str | None = None
) -> PromotionDecision:
    return decide_promotion(POLICY, gate_results=results, actor_role=role, force=force, reason=reason)


PASSED = {"qa@3": outcome(QA), "safety": outcome(SAFETY)}
FAILED = {"qa@3": outcome(QA, "regression"), "safety": outcome(SAFETY)}


def test_all_gates_pass_promotes() -> None:
    d = decide(PASSED)
    assert (d.allowed, d.kind) == (True, "promote")
    assert d.reasons == ["gate on qa@3 passed", "gate on safety passed"]


def test_no_gate_required_promotes_anyone() -> None:
    d = decide_promotion(PromotionPolicy(), gate_results={}, actor_role="member", force=False, reason=None)
    assert (d.allowed, d.kind, d.reasons) == (True, "promote", ["no gate is required"])


def test_force_is_ignored_when_gates_pass() -> None:
    d = decide(PASSED, role="member", force=True)
    assert (d.allowed, d.kind) == (True, "promote")


@pytest.mark.parametrize(
    ("results", "message"),
    [
        ({"safety": outcome(SAFETY)}, "gate on qa@3 has not run"),
        (FAILED, "gate on qa@3: regression (pass_rate dropped)"),
        ({**PASSED, "qa@3": outcome(QA, "inconclusive")}, "gate on qa@3: inconclusive"),
        ({**PASSED, "safety": outcome(SAFETY, alpha=0.05)}, "ran at alpha=0.05"),
        ({**PASSED, "safety": outcome(SAFETY, max_drop=0.05)}, "max_drop<=0.02"),
        ({**PASSED, "qa@3": outcome(QA, metrics=("pass_rate",))}, "did not test exact"),
        ({"qa": outcome(QA), "safety": outcome(SAFETY)}, "gate on qa@3 has not run"),
    ],
)
def test_unmet_gate_blocks_without_force(results: dict[str, GateOutcome], message: str) -> None:
    d = decide(results, role="admin")
    assert not d.allowed
    assert d.kind == "promote"
    assert message in d.reasons[0]


def test_more_sensitive_gate_run_satisfies() -> None:
    stricter = {**PASSED, "safety": outcome(SAFETY, alpha=0.2, max_drop=0.0, metrics=("pass_rate", "x"))}
    assert decide(stricter).allowed


@pytest.mark.parametrize("role", ["admin", "owner"])
def test_admin_or_owner_forces_with_reason(role: str) -> None:
    d = decide(FAILED, role=role, force=True, reason="  hotfix for outage  ")
    assert (d.allowed, d.kind) == (True, "forced")
    assert d.reasons[0].startswith("gate on qa@3: regression")
    assert d.reasons[-1] == f"forced by {role}: hotfix for outage"


def test_member_may_not_force() -> None:
    d = decide(FAILED, role="member", force=True, reason="please")
    assert (d.allowed, d.kind) == (False, "forced")
    assert "role 'member' may not force" in d.reasons[-1]


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_force_needs_a_reason(reason: str | None) -> None:
    d = decide(FAILED, role="admin", force=True, reason=reason)
    assert not d.allowed
    assert d.reasons[-1] == "forcing past a gate needs a reason"


def test_force_roles_are_configurable() -> None:
    policy = PromotionPolicy(required_gates=(QA,), allow_force_roles=())
    d = decide_promotion(policy, gate_results={}, actor_role="owner", force=True, reason="x")
    assert not d.allowed
    assert "only no role" in d.reasons[-1]


def test_outcome_from_a_real_comparison() -> None:
    base = run_of([True] * 100)
    worse = run_of([True] * 70 + [False] * 30)
    req = GateRequirement("qa")
    regression = GateOutcome.from_comparison(
        "qa", compare_runs(base, worse, req.gate_policy()), candidate_run=2, baseline_run=1
    )
    assert (regression.verdict, regression.candidate_run, regression.baseline_run) == ("regression", 2, 1)
    assert regression.n_paired == 100
    policy = PromotionPolicy(required_gates=(req,))
    blocked = decide_promotion(
        policy, gate_results={"qa": regression}, actor_role="admin", force=False, reason=None
    )
    assert not blocked.allowed
    assert "McNemar" in blocked.reasons[0] or "mcnemar" in blocked.reasons[0]
    same = GateOutcome.from_comparison("qa", compare_runs(base, base, req.gate_policy()))
    assert decide_promotion(
        policy, gate_results={"qa": same}, actor_role="member", force=False, reason=None
    ).allowed


def test_requirement_gate_policy_and_validation() -> None:
    assert QA.gate_policy() == GatePolicy(alpha=0.05, max_drop=0.0, metrics=("pass_rate", "exact"))
    assert GateRequirement("d", evaluators=("pass_rate", "a", "a")).metrics == ("pass_rate", "a")
    with pytest.raises(ValueError, match="alpha"):
        GateRequirement("d", alpha=0)
    with pytest.raises(ValueError, match="max_drop"):
        GateRequirement("d", max_drop=-0.1)
    with pytest.raises(ValueError, match="may hold only"):
        GateRequirement("bad name")
    with pytest.raises(ValueError, match="one requirement per dataset"):
        PromotionPolicy(required_gates=(QA, QA))
