"""Budget checks on a call's span: latency and cost within a bound.

They read the span's hot fields (``latency_ms``, ``cost_usd``), which an evaluation run
fills from the target's reply. A call without the field fails with a comment saying so:
an unmeasured call cannot prove it met a budget.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from watchkeep.evaluators.base import EvalInput, EvalResult, Evaluator


def _within(span_value: Any, bound: float, field: str, what: str, unit: str) -> EvalResult:
    if isinstance(span_value, bool) or not isinstance(span_value, int | float):
        return EvalResult(False, 0.0, f"no {what} recorded", {field: None})
    observed = float(span_value)
    ok = observed <= bound
    comment = None if ok else f"{what} {observed:g}{unit} > {bound:g}{unit}"
    return EvalResult(ok, 1.0 if ok else 0.0, comment, {field: observed})


class LatencyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_ms: float = Field(gt=0, description="The most milliseconds a call may take.")


class LatencyBound(Evaluator[LatencyParams]):
    """The call took at most ``max_ms`` milliseconds."""

    name = "latency"
    description = "The call's latency_ms is at most max_ms."
    Params = LatencyParams

    def evaluate(self, item: EvalInput) -> EvalResult:
        return _within(item.span.get("latency_ms"), self.params.max_ms, "latency_ms", "latency", " ms")


class CostParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_usd: float = Field(ge=0, description="The most US dollars a call may cost.")


class CostBound(Evaluator[CostParams]):
    """The call cost at most ``max_usd`` dollars."""

    name = "cost"
    description = "The call's cost_usd is at most max_usd."
    Params = CostParams

    def evaluate(self, item: EvalInput) -> EvalResult:
        return _within(item.span.get("cost_usd"), self.params.max_usd, "cost_usd", "cost", " USD")
