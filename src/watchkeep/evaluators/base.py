"""The one small interface every evaluator implements, online here and offline in ``evals``.

An evaluator is a class with a name, a description, a pydantic ``Params`` model (its
configuration, validated once when it is created) and a pure ``evaluate`` method. It
must be cheap and must not raise on odd input: an unparseable output is a failed
check, not an error.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict


class NoParams(BaseModel):
    """For evaluators that take no configuration."""

    model_config = ConfigDict(extra="forbid")


P = TypeVar("P", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class EvalInput:
    """What an evaluator sees of one LLM call: its texts and its span's hot fields."""

    output: str | None
    input: str | None = None
    span: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EvalResult:
    """A verdict: passed or not, a value (1.0/0.0 for checks) and why."""

    passed: bool
    value: float
    comment: str | None = None

    @classmethod
    def check(cls, passed: bool, comment: str | None = None) -> EvalResult:
        """A pass/fail result."""
        return cls(passed, 1.0 if passed else 0.0, comment)


class Evaluator(ABC, Generic[P]):
    """Base class: subclasses set ``name``, ``description``, ``Params`` and ``evaluate``."""

    name: ClassVar[str]
    description: ClassVar[str]
    Params: ClassVar[type[BaseModel]] = NoParams

    def __init__(self, params: P) -> None:
        self.params = params

    @abstractmethod
    def evaluate(self, item: EvalInput) -> EvalResult:
        """Judge ``item``."""
