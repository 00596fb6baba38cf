"""Evaluators: one small typed interface and a lazy registry (see ``registry``)."""

from watchkeep.evaluators.base import (
    Completer,
    EvalContext,
    EvalInput,
    EvalResult,
    EvaluationError,
    Evaluator,
    NoParams,
)
from watchkeep.evaluators.registry import (
    EvaluatorInfo,
    EvaluatorRegistry,
    InvalidParams,
    UnknownEvaluator,
)

__all__ = [
    "Completer",
    "EvalContext",
    "EvalInput",
    "EvalResult",
    "EvaluationError",
    "Evaluator",
    "EvaluatorInfo",
    "EvaluatorRegistry",
    "InvalidParams",
    "NoParams",
    "UnknownEvaluator",
]
