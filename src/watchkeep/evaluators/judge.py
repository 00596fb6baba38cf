"""LLM-as-judge: a model grades the output against a rubric, several times, robustly parsed.

Judges answer off-format: JSON in a code fence, "Score: 4", "4/5", a bare PASS. Each
answer is parsed by the first reader that understands it; a score a little outside the
scale is clamped, one far outside is refused (it is not a grade on this scale). Asking
``repeats`` times with different seeds measures the judge's own noise: ``details.spread``
is the population standard deviation of the normalised scores of one item. When no answer
parses, the item has no verdict: ``EvaluationError``, recorded as the item's error.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from watchkeep.evaluators.base import EvalContext, EvalInput, EvalResult, EvaluationError, Evaluator
from watchkeep.evaluators.matching import as_text
from watchkeep.evaluators.patterns import compile_pattern

MAX_RUBRIC = 4000
MAX_SHOWN = 20_000  # characters of each text shown to the judge
MAX_ANSWER = 20_000  # characters of a judge answer that are parsed
MAX_OBJECTS = 50  # JSON object starts tried per answer
SCORE_KEYS = ("score", "rating", "grade")
REASON_KEYS = ("reason", "reasoning", "explanation", "rationale")

SYSTEM_PROMPT = (
    "You are a strict, impartial grader. Grade the response against the rubric. Answer with one "
    'JSON object and nothing else: {{"score": <integer from {low} to {high}>, "reason": "<one sentence>"}}. '
    "{low} is the worst grade, {high} the best."
)
_NUMBER = r"(-?\d+(?:\.\d+)?)"
_OVER = r"(?:\s*(?:/|out of)\s*(\d+(?:\.\d+)?))"
# The answer may echo the graded output, so the readers run on RE2 (linear time).
_LABELLED = compile_pattern(
    rf"\b(?:score|rating|grade)\b\**\s*(?:is|of)?\s*[:=]?\s*\**\s*{_NUMBER}{_OVER}?", True
)
_FRACTION = compile_pattern(rf"{_NUMBER}{_OVER}", True)
_BARE = compile_pattern(rf"^\W*{_NUMBER}\W*$")
# A verdict word counts when it is shouted (PASS) or leads the answer ("Verdict: fail"), not in prose.
_VERDICTS = (
    compile_pattern(r"\b(PASS|FAIL)(?:ED)?\b"),
    compile_pattern(r"^\W*(?:verdict\W*)?(pass|fail)(?:ed)?\b", True),
)


class JudgeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rubric: str = Field(min_length=1, max_length=MAX_RUBRIC, description="What a good answer is.")
    scale_min: int = Field(default=1, ge=0, le=100, description="The worst grade.")
    scale_max: int = Field(default=5, ge=1, le=100, description="The best grade.")
    pass_threshold: float | None = Field(
        default=None,
        description="Pass when the mean grade is at least this (on the scale); default: its midpoint.",
    )
    repeats: int = Field(default=1, ge=1, le=10, description="How many times the judge is asked (noise).")
    include_input: bool = Field(default=True, description="Show the judge the input.")
    include_expected: bool = Field(default=False, description="Show the judge the expected answer.")
    system_prompt: str | None = Field(
        default=None, min_length=1, max_length=MAX_RUBRIC, description="Replaces the grader instructions."
    )

    @model_validator(mode="after")
    def _scale(self) -> JudgeParams:
        if self.scale_min >= self.scale_max:
            raise ValueError("scale_min must be below scale_max")
        threshold = self.pass_threshold
        if threshold is not None and not self.scale_min <= threshold <= self.scale_max:
            raise ValueError(f"pass_threshold must lie in [{self.scale_min}, {self.scale_max}]")
        return self

    @property
    def threshold(self) -> float:
        """The grade a mean must reach to pass."""
        if self.pass_threshold is not None:
            return self.pass_threshold
        return (self.scale_min + self.scale_max) / 2


def _json_objects(text: str) -> Iterator[dict[str, Any]]:
    """Every JSON object embedded in ``text`` (in fences or prose), in order."""
    decoder = json.JSONDecoder()
    start, tried = text.find("{"), 0
    while start != -1 and tried < MAX_OBJECTS:
        tried += 1
        try:
            value, end = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict):
            yield value
        start = text.find("{", end)


def _first_key(obj: dict[str, Any], keys: tuple[str, ...]) -> Any:
    lowered = {str(k).lower(): v for k, v in obj.items()}
    return next((lowered[k] for k in keys if k in lowered), None)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = re.fullmatch(rf"\s*{_NUMBER}\s*(?:/\s*\d+(?:\.\d+)?)?\s*", value)
        return float(match.group(1)) if match else None
    return None


def _on_scale(score: float, over: float | None, low: float, high: float) -> float:
    """A grade written as ``score/over`` expressed on our scale (``4/5`` on 1..5 is 4)."""
    if over is None or over == high or over <= 0 or not 0 <= score <= over:
        return score
    return low + score / over * (high - low)


def read_grade(answer: str, low: float, high: float) -> tuple[float, str | None] | None:
    """(raw grade, reason) from a judge's answer, or None when no reader understands it."""
    text = answer[:MAX_ANSWER]
    for obj in _json_objects(text):
        score = _number(_first_key(obj, SCORE_KEYS))
        if score is not None:
            reason = _first_key(obj, REASON_KEYS)
            return score, None if reason is None else as_text(reason)[:1000]
    for reader in (_LABELLED, _FRACTION, _BARE):
        match = reader.search(text)
        if match is not None:
            over = match.group(2) if reader.groups > 1 else None
            return _on_scale(float(match.group(1)), None if over is None else float(over), low, high), None
    verdicts = {m.group(1).lower() == "pass" for reader in _VERDICTS for m in reader.finditer(text)}
    if len(verdicts) == 1:
        return (high if verdicts.pop() else low), None
    return None


def clamp_grade(score: float, low: float, high: float) -> float | None:
    """``score`` clamped to the scale when it is near it; None when it is far outside (nonsense)."""
    slack = max(1.0, 0.25 * (high - low))
    if not low - slack <= score <= high + slack:
        return None
    return min(high, max(low, score))


class Judge(Evaluator[JudgeParams]):
    """A model grades the output against a rubric (offline runs only: it needs the run's judge)."""

    name = "judge"
    description = (
        "LLM-as-judge: a judge model grades the output against a rubric on a scale, `repeats` times; "
        "value is the mean normalised grade. Offline runs only (needs a judge)."
    )
    Params = JudgeParams
    requires_judge = True

    def evaluate(self, item: EvalInput) -> EvalResult:
        raise EvaluationError("the judge evaluator asks a model: it runs in an evaluation run (aevaluate)")

    def messages(self, item: EvalInput) -> list[dict[str, str]]:
        """The conversation the judge is given for ``item``."""
        p = self.params
        system = p.system_prompt or SYSTEM_PROMPT.format(low=p.scale_min, high=p.scale_max)
        parts = [f"## Rubric\n{p.rubric}"]
        if p.include_input:
            parts.append(f"## Input\n{(item.input or '(none)')[:MAX_SHOWN]}")
        if p.include_expected:
            expected = "(none)" if item.expected is None else as_text(item.expected)
            parts.append(f"## Expected answer\n{expected[:MAX_SHOWN]}")
        parts.append(f"## Response to grade\n{(item.output or '(no output)')[:MAX_SHOWN]}")
        parts.append(f"Grade the response from {p.scale_min} to {p.scale_max}.")
        return [{"role": "system", "content": system}, {"role": "user", "content": "\n\n".join(parts)}]

    async def aevaluate(self, item: EvalInput, context: EvalContext) -> EvalResult:
        if context.judge is None:
            raise EvaluationError("the judge evaluator needs a judge model: configure the run's judge")
        p = self.params
        low, high = float(p.scale_min), float(p.scale_max)
        messages = self.messages(item)
        scores: list[float] = []
        reasons: list[str | None] = []
        unreadable: list[str] = []
        for i in range(p.repeats):
            answer = await context.judge.complete(messages, seed=context.seed + i)
            read = read_grade(answer or "", low, high)
            grade = None if read is None else clamp_grade(read[0], low, high)
            if read is None or grade is None:
                unreadable.append(answer or "")
                continue
            scores.append(grade)
            reasons.append(read[1])
        if not scores:
            raise EvaluationError(
                f"no judge answer could be read as a grade from {p.scale_min} to {p.scale_max} "
                f"({len(unreadable)} answers; first: {unreadable[0][:200]!r})"
            )
        normalised = [(s - low) / (high - low) for s in scores]
        mean = statistics.fmean(scores)
        ok = mean >= p.threshold
        details = {
            "scores": scores,
            "reasons": reasons,
            "spread": statistics.pstdev(normalised),
            "unparsed": len(unreadable),
            "scale": [p.scale_min, p.scale_max],
        }
        comment = next((r for r in reasons if r), None)
        return EvalResult(ok, statistics.fmean(normalised), comment, details)
