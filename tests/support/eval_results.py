"""Builders of ``ItemResult`` rows for the statistics, gate, aggregate and report tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from watchkeep.evals.model import ItemResult, Score


def result(
    key: str,
    passed: bool | None = True,
    *,
    repeat: int = 0,
    variant: str = "",
    family: str | None = None,
    output: str | None = "ok",
    evaluator: str = "exact",
    value: float | None = None,
    comment: str | None = None,
    details: Mapping[str, Any] | None = None,
    extra: Mapping[str, Score] | None = None,
    error_kind: str | None = None,
    **fields: Any,
) -> ItemResult:
    """One result; ``passed=None`` is a failed call of kind ``error_kind`` (default timeout)."""
    if passed is None:
        return ItemResult(
            key,
            repeat,
            variant,
            family,
            None,
            None,
            error="call failed",
            error_kind=error_kind or "timeout",
            **fields,
        )
    scores = {
        evaluator: Score(passed, value if value is not None else float(passed), comment, details),
        **(extra or {}),
    }
    return ItemResult(
        key, repeat, variant, family, ({"role": "user", "content": key},), output, scores, **fields
    )


def run_of(outcomes: Sequence[bool] | np.ndarray, *, prefix: str = "i") -> list[ItemResult]:
    """A run with one result per item, ``outcomes[i]`` the pass/fail of item ``i``."""
    return [result(f"{prefix}{i}", bool(p)) for i, p in enumerate(outcomes)]
