"""Cheap, deterministic checks of an output: JSON, schema, regex, length, refusal.

Tenant patterns (regex, JSON-schema keywords) run on RE2: see ``patterns``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, field_validator

from watchkeep.evaluators.base import EvalInput, EvalResult, Evaluator, NoParams
from watchkeep.evaluators.patterns import compile_pattern, re2_validator


def _parse_json(text: str | None) -> tuple[bool, Any, str | None]:
    if text is None:
        return False, None, "no output"
    try:
        return True, json.loads(text), None
    except ValueError as exc:
        return False, None, f"not JSON: {exc}"[:200]


class JsonValid(Evaluator[NoParams]):
    """The output parses as JSON."""

    name = "json_valid"
    description = "Output is valid JSON."

    def evaluate(self, item: EvalInput) -> EvalResult:
        ok, _, why = _parse_json(item.output)
        return EvalResult.check(ok, why)


class JsonSchemaParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    json_schema: dict[str, Any] = Field(
        alias="schema",
        description="A JSON Schema the output must satisfy; its patterns run on RE2 (no lookaround "
        "or backreferences).",
    )

    @field_validator("json_schema")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        re2_validator(value)
        return value


class JsonSchema(Evaluator[JsonSchemaParams]):
    """The output is JSON that satisfies a JSON Schema."""

    name = "json_schema"
    description = "Output is JSON valid against the given JSON Schema."
    Params = JsonSchemaParams

    def __init__(self, params: JsonSchemaParams) -> None:
        super().__init__(params)
        self._validator = re2_validator(params.json_schema)

    def evaluate(self, item: EvalInput) -> EvalResult:
        ok, value, why = _parse_json(item.output)
        if not ok:
            return EvalResult.check(False, why)
        error = jsonschema.exceptions.best_match(self._validator.iter_errors(value))
        return EvalResult.check(error is None, None if error is None else error.message[:200])


class RegexParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pattern: str = Field(
        max_length=2000,
        description="An RE2 regular expression (linear time: no lookaround or backreferences).",
    )
    must_match: bool = Field(default=True, description="False: the pattern must NOT occur.")
    ignore_case: bool = False

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        compile_pattern(value)
        return value


class RegexMatch(Evaluator[RegexParams]):
    """The output contains (or avoids) a pattern."""

    name = "regex"
    description = "Output matches (or, with must_match false, avoids) a regular expression."
    Params = RegexParams

    def __init__(self, params: RegexParams) -> None:
        super().__init__(params)
        self._re = compile_pattern(params.pattern, params.ignore_case)

    def evaluate(self, item: EvalInput) -> EvalResult:
        found = self._re.search(item.output or "") is not None
        return EvalResult.check(found == self.params.must_match, None if found else "no match")


class LengthParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min_chars: int = Field(default=0, ge=0)
    max_chars: int | None = Field(default=None, ge=0)


class LengthBounds(Evaluator[LengthParams]):
    """The output's length in characters lies within bounds."""

    name = "length"
    description = "Output length in characters is within [min_chars, max_chars]."
    Params = LengthParams

    def evaluate(self, item: EvalInput) -> EvalResult:
        n = len(item.output or "")
        high = self.params.max_chars
        ok = n >= self.params.min_chars and (high is None or n <= high)
        return EvalResult.check(ok, None if ok else f"{n} characters")


REFUSAL = re.compile(
    r"\b(I\s*(?:am|'m)\s+(?:sorry|afraid|unable|not able)|I\s+(?:can(?:no|')t|cannot|won't|will not)\s+"
    r"(?:help|assist|provide|do|comply|answer|fulfil)|as an AI\b|I must decline|against my (?:guidelines|policy))",
    re.IGNORECASE,
)


class NoRefusal(Evaluator[NoParams]):
    """The model answered instead of refusing (phrase-based: cheap, not exhaustive)."""

    name = "refusal"
    description = "Passes when the output is not a refusal ('I'm sorry, I can't help with that')."

    def evaluate(self, item: EvalInput) -> EvalResult:
        hit = REFUSAL.search(item.output or "")
        return EvalResult.check(hit is None, None if hit is None else f"refusal: {hit.group(0)!r}")
