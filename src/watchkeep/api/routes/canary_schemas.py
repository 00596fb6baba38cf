"""Request and response bodies of canary analysis (``api/routes/canaries.py``)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from watchkeep.api.registry_schemas import ALIAS_PATTERN, NAME_PATTERN, StorableIn
from watchkeep.api.schemas import ns_to_datetime
from watchkeep.gateway.config import NAME as ROUTE_PATTERN
from watchkeep.registry.canary import CanaryPolicy, Decision, MetricReport, decide
from watchkeep.registry.canary_figures import default_policy, metric_rule
from watchkeep.registry.canary_repository import Canary


class MetricIn(StorableIn):
    """One compared metric; unset fields take the metric's defaults (``canary_figures``)."""

    name: str = Field(
        max_length=300,
        description="error_rate, latency_ms, ttft_ms, cost_usd or score:NAME (feedback or an online evaluator).",
    )
    kind: Literal["proportion", "mean"] | None = None
    direction: Literal["lower_is_better", "higher_is_better"] | None = None
    tolerance: float | None = Field(default=None, gt=0, le=1e12)


class CanaryIn(StorableIn):
    """Start a canary: the candidate alias's version against the baseline's on a route
    (``StorableIn``: no NUL characters, which PostgreSQL cannot store)."""

    name: Annotated[str, Field(pattern=NAME_PATTERN, description="The registered model.")]
    route: Annotated[str, Field(pattern=ROUTE_PATTERN, description="The gateway route whose calls compare.")]
    baseline_alias: Annotated[str, Field(pattern=ALIAS_PATTERN)] = "production"
    candidate_alias: Annotated[str, Field(pattern=ALIAS_PATTERN)] = "canary"
    mode: Literal["live", "shadow"] = "live"
    share: float = Field(default=0.1, gt=0, lt=1, description="The candidate's share of live traffic.")
    metrics: list[str | MetricIn] | None = Field(
        default=None, min_length=1, max_length=20, description="Default: error_rate and latency_ms."
    )
    alpha: float = Field(default=0.05, gt=0, lt=1)
    min_samples: int = Field(default=200, ge=1, le=10_000_000)
    max_samples: int = Field(default=5000, ge=1, le=100_000_000)
    configure_route: bool = Field(
        default=True,
        description="Also point the route's deployments at the two aliases (needs routes:write).",
    )

    def policy(self) -> CanaryPolicy:
        """The canary policy; ``ValueError`` for an unknown metric or inconsistent bounds."""
        if self.metrics is None:
            rules = default_policy().metrics
        else:
            rules = tuple(
                metric_rule(m)
                if isinstance(m, str)
                else metric_rule(m.name, kind=m.kind, direction=m.direction, tolerance=m.tolerance)
                for m in self.metrics
            )
        return CanaryPolicy(
            rules, alpha=self.alpha, min_samples=self.min_samples, max_samples=self.max_samples
        )


class StopIn(StorableIn):
    reason: str | None = Field(default=None, max_length=2000)


def _num(value: float) -> float | None:
    return value if math.isfinite(value) else None


class MetricOut(BaseModel):
    """One metric's comparison: both arms' values and sizes, the worsening and the p-values."""

    name: str
    baseline: float | None
    candidate: float | None
    n_baseline: int
    n_candidate: int
    delta: float | None = Field(description="How much worse the candidate is, in the metric's units.")
    p_worse: float
    p_within: float


class DecisionOut(BaseModel):
    action: str
    metric: str | None
    p_value: float | None
    reason: str
    metrics: list[MetricOut]


class CanaryOut(BaseModel):
    id: int
    name: str
    route: str
    baseline_alias: str
    candidate_alias: str
    baseline_version: int
    candidate_version: int
    mode: str
    share: float
    status: str
    reason: str | None
    looks: int
    policy: dict[str, object]
    started_by: str
    started_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    decision: DecisionOut | None = Field(default=None, description="The current comparison (detail only).")


class CanaryList(BaseModel):
    items: list[CanaryOut]


def _metric_out(r: MetricReport) -> MetricOut:
    return MetricOut(
        name=r.name,
        baseline=_num(r.baseline),
        candidate=_num(r.candidate),
        n_baseline=r.n_baseline,
        n_candidate=r.n_candidate,
        delta=_num(r.worsening),
        p_worse=r.p_worse,
        p_within=r.p_within,
    )


def decision_out(d: Decision) -> DecisionOut:
    return DecisionOut(
        action=d.action,
        metric=d.metric,
        p_value=d.p_value,
        reason=d.reason,
        metrics=[_metric_out(r) for r in d.metrics],
    )


def canary_out(c: Canary, *, detail: bool = False) -> CanaryOut:
    return CanaryOut(
        id=c.id,
        name=c.name,
        route=c.route,
        baseline_alias=c.baseline_alias,
        candidate_alias=c.candidate_alias,
        baseline_version=c.baseline_version,
        candidate_version=c.candidate_version,
        mode=c.mode,
        share=c.share,
        status=c.status,
        reason=c.reason,
        looks=c.state.looks,
        policy=c.state.to_json()["policy"],
        started_by=c.started_by,
        started_at=ns_to_datetime(c.started_at_ns),
        updated_at=ns_to_datetime(c.updated_at_ns),
        ended_at=None if c.ended_at_ns is None else ns_to_datetime(c.ended_at_ns),
        decision=decision_out(decide(c.state)) if detail else None,
    )
