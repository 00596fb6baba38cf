"""Evaluators: one small typed interface and a lazy registry (see ``registry``)."""

from watchkeep.evaluators.base import EvalInput, EvalResult, Evaluator, NoParams
from watchkeep.evaluators.registry import (
    EvaluatorInfo,
    EvaluatorRegistry,
    InvalidParams,
    UnknownEvaluator,
)

__all__ = [
    "EvalInput",
    "EvalResult",
    "Evaluator",
    "EvaluatorInfo",
    "EvaluatorRegistry",
    "InvalidParams",
    "NoParams",
    "UnknownEvaluator",
]
