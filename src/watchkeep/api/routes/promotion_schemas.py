"""Request and response bodies of gated promotion (``api/routes/registry_promotion.py``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Literal

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from watchkeep.api.errors import ApiError
from watchkeep.api.registry_schemas import MAX_REASON_CHARS, StorableIn
from watchkeep.registry.gate_evidence import GateEvidence
from watchkeep.registry.policy import GateRequirement, PromotionPolicy
from watchkeep.registry.promotion import MAX_EVALUATORS, MAX_REQUIREMENTS, PromotionRefused
from watchkeep.security.authz import Permission
from watchkeep.security.keys import Principal

ROLE_PATTERN = r"^[a-z][a-z_]{0,31}$"


class GateRequirementIn(StorableIn):
    """One gate: the candidate's evaluation on ``dataset`` must not regress from the current one's."""

    dataset: str = Field(min_length=1, max_length=220, description='"qa" (newest common version) or "qa@3"')
    evaluators: list[str] = Field(default_factory=list, max_length=MAX_EVALUATORS)
    alpha: float = Field(default=0.05, gt=0.0, lt=1.0)
    max_drop: float = Field(default=0.0, ge=0.0, lt=1.0)


class PromotionPolicyIn(StorableIn):
    """What a promotion of the alias requires, and which roles may force past it."""

    required_gates: list[GateRequirementIn] = Field(default_factory=list, max_length=MAX_REQUIREMENTS)
    allow_force_roles: list[Annotated[str, Field(pattern=ROLE_PATTERN)]] = Field(
        default_factory=lambda: ["admin", "owner"], max_length=8
    )

    def to_policy(self) -> PromotionPolicy:
        """``ValueError`` (a 422) for a bad dataset reference or a repeated dataset."""
        return PromotionPolicy(
            tuple(
                GateRequirement(g.dataset, tuple(g.evaluators), g.alpha, g.max_drop)
                for g in self.required_gates
            ),
            tuple(self.allow_force_roles),
        )


class GateRequirementOut(BaseModel):
    dataset: str
    evaluators: list[str]
    alpha: float
    max_drop: float


class PromotionPolicyOut(BaseModel):
    """An alias's stored policy."""

    name: str
    alias: str
    required_gates: list[GateRequirementOut]
    allow_force_roles: list[str]


class PromoteIn(StorableIn):
    """Move the alias to ``version`` under its policy; ``force`` (registry:admin) needs a reason."""

    version: int = Field(ge=1, le=2**31 - 1)
    force: bool = False
    reason: str | None = Field(default=None, max_length=MAX_REASON_CHARS)


class MetricOut(BaseModel):
    name: str
    baseline: float | None
    candidate: float | None
    delta: float
    p_value: float | None
    regression: bool


class GateOut(BaseModel):
    """One requirement's verdict and the runs it was computed from."""

    dataset: str
    verdict: Literal["pass", "regression", "inconclusive"]
    met: bool
    reasons: list[str]
    dataset_version: int | None
    candidate_run: int | None
    baseline_run: int | None
    n_paired: int
    metrics: list[MetricOut]


class GatesOut(BaseModel):
    """The evidence preview of moving ``alias`` to ``version`` (empty ``gates``: not gated)."""

    name: str
    alias: str
    version: int
    gated: bool
    allowed: bool
    gates: list[GateOut]


def policy_out(name: str, alias: str, policy: PromotionPolicy) -> PromotionPolicyOut:
    return PromotionPolicyOut(
        name=name,
        alias=alias,
        required_gates=[
            GateRequirementOut(
                dataset=g.dataset, evaluators=list(g.evaluators), alpha=g.alpha, max_drop=g.max_drop
            )
            for g in policy.required_gates
        ],
        allow_force_roles=list(policy.allow_force_roles),
    )


def gate_out(e: GateEvidence, met: bool) -> GateOut:
    o = e.outcome
    return GateOut(
        dataset=o.dataset,
        verdict=o.verdict,
        met=met,
        reasons=list(o.reasons),
        dataset_version=e.dataset_version,
        candidate_run=o.candidate_run,
        baseline_run=o.baseline_run,
        n_paired=o.n_paired,
        metrics=[MetricOut(**asdict(m)) for m in e.metrics],
    )


def refused(exc: PromotionRefused) -> JSONResponse:
    """A refused promotion: 409 with every unmet reason (``reasons``) besides the usual error."""
    return JSONResponse(
        {"error": {"code": "promotion_refused", "message": str(exc)}, "reasons": exc.reasons}, status_code=409
    )


def check_force(principal: Principal, force: bool, reason: str | None) -> bool:
    """Whether the caller may force (``registry:admin``); 403 for a force without it, 422 for a
    force without a reason (both before any gate is run, so a refusal never depends on evidence)."""
    if not force:
        return principal.can(Permission.REGISTRY_ADMIN)
    if not principal.can(Permission.REGISTRY_ADMIN):
        raise ApiError(
            403, "forbidden", f"forcing past a gate needs the '{Permission.REGISTRY_ADMIN}' permission"
        )
    if reason is None or not reason.strip():
        raise ApiError(422, "reason_required", "a forced promotion needs a reason")
    return True
