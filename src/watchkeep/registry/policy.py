"""The promotion policy: may this alias move happen, and is it a promotion or a recorded force?

Contract (pure; the caller ran the gates and knows the actor's role):

- A ``PromotionPolicy`` lists ``GateRequirement``s: on dataset D, the candidate's evaluation
  must pass ``evals.gate`` against the current version's at ``alpha`` and ``max_drop`` over
  ``pass_rate`` and the named evaluators (``GateRequirement.gate_policy()`` is the
  ``evals.gate.GatePolicy`` to run it with).
- A ``GateOutcome`` is one gate's result, keyed by dataset (``GateOutcome.from_comparison``
  wraps an ``evals.gate.Comparison``). It satisfies a requirement when its verdict is "pass"
  and it was at least as sensitive as required: ``alpha`` no smaller, ``max_drop`` no larger,
  and every required metric tested. A passing gate run under looser settings does not count.
- ``decide_promotion``: every requirement satisfied -> allowed, kind "promote" (a force flag
  is then unnecessary and ignored). Otherwise refused, unless ``force`` by a role in
  ``allow_force_roles`` with a non-blank reason -> allowed, kind "forced", and the reasons
  list what was forced past plus who forced it and why, so the event records it. A member
  forcing, or a force without a reason, is refused. Whether the actor may move aliases at
  all is the security layer's question, not this one's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from watchkeep.evals.gate import PASS_RATE, Comparison, GatePolicy, Verdict
from watchkeep.registry.versions import parse_ref

PromotionKind = Literal["promote", "forced"]


@dataclass(frozen=True, slots=True)
class GateRequirement:
    """A gate a promotion must pass: candidate versus current on ``dataset``."""

    dataset: str  # a dataset reference: "qa", "qa@3", "qa@golden"
    evaluators: tuple[str, ...] = ()
    alpha: float = 0.05
    max_drop: float = 0.0

    def __post_init__(self) -> None:
        parse_ref(self.dataset)
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must lie in (0, 1), not {self.alpha}")
        if not (math.isfinite(self.max_drop) and 0.0 <= self.max_drop < 1.0):
            raise ValueError(f"max_drop must lie in [0, 1), not {self.max_drop}")
        object.__setattr__(self, "evaluators", tuple(self.evaluators))

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metrics the gate must test: the pass rate and each named evaluator's."""
        return tuple(dict.fromkeys((PASS_RATE, *self.evaluators)))

    def gate_policy(self) -> GatePolicy:
        """The ``evals.gate`` policy that runs this requirement."""
        return GatePolicy(alpha=self.alpha, max_drop=self.max_drop, metrics=self.metrics)


@dataclass(frozen=True, slots=True)
class GateOutcome:
    """One gate's result on one dataset, as the policy needs it."""

    dataset: str
    verdict: Verdict
    alpha: float
    max_drop: float
    metrics: tuple[str, ...]
    reasons: tuple[str, ...] = ()
    n_paired: int = 0
    candidate_run: int | None = None
    baseline_run: int | None = None

    @classmethod
    def from_comparison(
        cls,
        dataset: str,
        comparison: Comparison,
        *,
        candidate_run: int | None = None,
        baseline_run: int | None = None,
    ) -> GateOutcome:
        """Wrap ``evals.gate.compare_runs``' result."""
        return cls(
            dataset=dataset,
            verdict=comparison.verdict,
            alpha=comparison.alpha,
            max_drop=comparison.max_drop,
            metrics=tuple(m.name for m in comparison.metrics),
            reasons=tuple(comparison.reasons),
            n_paired=comparison.n_paired,
            candidate_run=candidate_run,
            baseline_run=baseline_run,
        )


@dataclass(frozen=True, slots=True)
class PromotionPolicy:
    """What a promotion requires, and which roles may force past it."""

    required_gates: tuple[GateRequirement, ...] = ()
    allow_force_roles: tuple[str, ...] = ("admin", "owner")

    def __post_init__(self) -> None:
        datasets = [g.dataset for g in self.required_gates]
        if len(set(datasets)) != len(datasets):
            raise ValueError(f"one requirement per dataset: {datasets}")
        object.__setattr__(self, "required_gates", tuple(self.required_gates))
        object.__setattr__(self, "allow_force_roles", tuple(self.allow_force_roles))


@dataclass(frozen=True, slots=True)
class PromotionDecision:
    """Whether the move may happen, as which event kind, and why (recorded with the event)."""

    allowed: bool
    kind: PromotionKind
    reasons: list[str] = field(default_factory=list)


def _unmet(requirement: GateRequirement, outcome: GateOutcome | None) -> str | None:
    """Why ``outcome`` does not satisfy ``requirement``; None when it does."""
    where = f"gate on {requirement.dataset}"
    if outcome is None:
        return f"{where} has not run"
    if outcome.verdict != "pass":
        detail = "; ".join(outcome.reasons)
        return f"{where}: {outcome.verdict}" + (f" ({detail})" if detail else "")
    if outcome.alpha < requirement.alpha or outcome.max_drop > requirement.max_drop:
        return (
            f"{where} ran at alpha={outcome.alpha:g}, max_drop={outcome.max_drop:g}; the policy "
            f"requires alpha>={requirement.alpha:g}, max_drop<={requirement.max_drop:g}"
        )
    missing = [m for m in requirement.metrics if m not in outcome.metrics]
    if missing:
        return f"{where} did not test {', '.join(missing)}"
    return None


def decide_promotion(
    policy: PromotionPolicy,
    *,
    gate_results: Mapping[str, GateOutcome],
    actor_role: str,
    force: bool,
    reason: str | None,
) -> PromotionDecision:
    """The one policy check before a promotion event is appended (module docstring)."""
    unmet = [
        why
        for req in policy.required_gates
        if (why := _unmet(req, gate_results.get(req.dataset))) is not None
    ]
    if not unmet:
        passed = [f"gate on {r.dataset} passed" for r in policy.required_gates]
        return PromotionDecision(True, "promote", passed or ["no gate is required"])
    if not force:
        return PromotionDecision(False, "promote", unmet)
    if actor_role not in policy.allow_force_roles:
        allowed = ", ".join(policy.allow_force_roles) or "no role"
        return PromotionDecision(
            False, "forced", [*unmet, f"role {actor_role!r} may not force a promotion (only {allowed})"]
        )
    if reason is None or not reason.strip():
        return PromotionDecision(False, "forced", [*unmet, "forcing past a gate needs a reason"])
    return PromotionDecision(True, "forced", [*unmet, f"forced by {actor_role}: {reason.strip()}"])
