"""A typed, lazy registry of evaluators: names map to ``module:Class`` paths imported on use.

Lazy entries keep start-up cheap as the registry grows; unknown names get the closest
known names as a suggestion; parameters are validated by the evaluator's own model.
Third-party packages add evaluators through the ``watchkeep.evaluators`` entry point.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from pydantic import ValidationError

from watchkeep.evaluators.base import Evaluator

BUILTINS: dict[str, str] = {
    "json_valid": "watchkeep.evaluators.checks:JsonValid",
    "json_schema": "watchkeep.evaluators.checks:JsonSchema",
    "regex": "watchkeep.evaluators.checks:RegexMatch",
    "length": "watchkeep.evaluators.checks:LengthBounds",
    "refusal": "watchkeep.evaluators.checks:NoRefusal",
    "pii": "watchkeep.evaluators.pii:NoPii",
    "marker_absent": "watchkeep.evaluators.attacks:MarkerAbsent",
    "canary_absent": "watchkeep.evaluators.attacks:CanaryAbsent",
    "system_prompt_absent": "watchkeep.evaluators.attacks:SystemPromptAbsent",
    "refused": "watchkeep.evaluators.attacks:Refused",
    "exact_match": "watchkeep.evaluators.matching:ExactMatch",
    "contains": "watchkeep.evaluators.matching:Contains",
    "classification": "watchkeep.evaluators.matching:Classification",
    "similarity": "watchkeep.evaluators.similarity:Similarity",
    "embedding_similarity": "watchkeep.evaluators.similarity:EmbeddingSimilarity",
    "latency": "watchkeep.evaluators.bounds:LatencyBound",
    "cost": "watchkeep.evaluators.bounds:CostBound",
    "judge": "watchkeep.evaluators.judge:Judge",
}
ENTRY_POINT_GROUP = "watchkeep.evaluators"


class UnknownEvaluator(KeyError):
    """No evaluator has that name."""

    def __init__(self, name: str, suggestions: list[str]) -> None:
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"unknown evaluator {name!r}{hint}")
        self.message = f"unknown evaluator {name!r}{hint}"


class InvalidParams(ValueError):
    """Parameters that the evaluator's ``Params`` model refuses."""


@dataclass(frozen=True, slots=True)
class EvaluatorInfo:
    """What a client needs to configure an evaluator."""

    name: str
    description: str
    params_schema: dict[str, Any]


class EvaluatorRegistry:
    """Evaluator classes by name; ``create`` validates parameters and builds one."""

    def __init__(self, entries: dict[str, str] | None = None, *, plugins: bool = True) -> None:
        self._paths: dict[str, str] = dict(BUILTINS if entries is None else entries)
        self._loaded: dict[str, type[Evaluator[Any]]] = {}
        if plugins:
            for ep in entry_points(group=ENTRY_POINT_GROUP):
                self._paths.setdefault(ep.name, ep.value)

    def register(self, cls: type[Evaluator[Any]]) -> type[Evaluator[Any]]:
        """Add an already imported class (usable as a decorator)."""
        self._loaded[cls.name] = cls
        self._paths[cls.name] = f"{cls.__module__}:{cls.__qualname__}"
        return cls

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self._paths)

    def get(self, name: str) -> type[Evaluator[Any]]:
        """The class registered as ``name`` (imported on first use)."""
        cls = self._loaded.get(name)
        if cls is not None:
            return cls
        path = self._paths.get(name)
        if path is None:
            raise UnknownEvaluator(name, difflib.get_close_matches(name, self._paths, n=3))
        module, _, attr = path.partition(":")
        loaded = getattr(importlib.import_module(module), attr)
        if not (isinstance(loaded, type) and issubclass(loaded, Evaluator)) or loaded.name != name:
            raise TypeError(f"{path} is not the Evaluator named {name!r}")
        self._loaded[name] = loaded
        return loaded

    def create(self, name: str, params: dict[str, Any] | None = None) -> Evaluator[Any]:
        """A configured evaluator; raises ``UnknownEvaluator`` or ``InvalidParams``."""
        cls = self.get(name)
        try:
            validated = cls.Params.model_validate(params or {})
        except ValidationError as exc:
            raise InvalidParams(f"{name}: {exc.errors()[0]['msg']}") from exc
        return cls(validated)

    def info(self) -> list[EvaluatorInfo]:
        """Name, description and parameter schema of every evaluator."""
        return [
            EvaluatorInfo(name, self.get(name).description, self.get(name).Params.model_json_schema())
            for name in self.names()
        ]
