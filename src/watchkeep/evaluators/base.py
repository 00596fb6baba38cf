"""The one small interface every evaluator implements, online in monitors and offline in ``evals``.

An evaluator is a class with a name, a description, a pydantic ``Params`` model (its
configuration, validated once when it is created) and a pure ``evaluate`` method. It
must be cheap and must not raise on odd input: an unparseable output is a failed
check, not an error. An evaluator that needs a model to judge (``requires_judge``)
overrides ``aevaluate`` instead and is given a ``Completer`` by the evaluation run; it
runs offline only, since an online monitor must never call a model per span.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Protocol, TypeVar

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
    expected: Any = None  # the dataset item's expected answer or label (offline runs)
    metadata: Mapping[str, Any] = field(default_factory=dict)  # the dataset item's metadata


@dataclass(frozen=True, slots=True)
class EvalResult:
    """A verdict: passed or not, a value (1.0/0.0 for checks) and why."""

    passed: bool
    value: float
    comment: str | None = None
    details: Mapping[str, Any] | None = None  # e.g. the predicted label, the judge's raw verdict

    @classmethod
    def check(cls, passed: bool, comment: str | None = None) -> EvalResult:
        """A pass/fail result."""
        return cls(passed, 1.0 if passed else 0.0, comment)


class EvaluationError(Exception):
    """An evaluator could not reach a verdict (e.g. no judge answer parsed): the item's error, not a fail."""


class Completer(Protocol):
    """A model the evaluator may ask (an LLM judge): messages in, the reply's text out."""

    async def complete(self, messages: list[dict[str, str]], *, seed: int | None = None) -> str:
        """The model's answer; raises on a transport failure (the run records it per item)."""
        ...


@dataclass(frozen=True, slots=True)
class EvalContext:
    """What an offline run gives ``aevaluate``: a judge when one is configured, and the seed."""

    judge: Completer | None = None
    seed: int = 0


class Evaluator(ABC, Generic[P]):
    """Base class: subclasses set ``name``, ``description``, ``Params`` and ``evaluate``."""

    name: ClassVar[str]
    description: ClassVar[str]
    Params: ClassVar[type[BaseModel]] = NoParams
    requires_judge: ClassVar[bool] = False

    def __init__(self, params: P) -> None:
        self.params = params

    @abstractmethod
    def evaluate(self, item: EvalInput) -> EvalResult:
        """Judge ``item``."""

    async def aevaluate(self, item: EvalInput, context: EvalContext) -> EvalResult:
        """Judge ``item`` in an offline run; evaluators that ask a model override this."""
        return self.evaluate(item)
