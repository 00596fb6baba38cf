"""The LLM judge reads off-format answers, measures its own noise and refuses nonsense."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from watchkeep.evaluators import (
    EvalContext,
    EvalInput,
    EvalResult,
    EvaluationError,
    EvaluatorRegistry,
    InvalidParams,
)
from watchkeep.evaluators.judge import read_grade

RUBRIC = {"rubric": "The answer names the capital of France."}


class CannedJudge:
    """A judge that answers from a script and records what it was asked."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[list[dict[str, str]], int | None]] = []

    async def complete(self, messages: list[dict[str, str]], *, seed: int | None = None) -> str:
        self.calls.append((messages, seed))
        return self.answers[(len(self.calls) - 1) % len(self.answers)]


class BrokenJudge:
    async def complete(self, messages: list[dict[str, str]], *, seed: int | None = None) -> str:
        raise ConnectionError("judge route unreachable")


def judge(judge_model: Any, item: EvalInput | None = None, seed: int = 0, **params: Any) -> EvalResult:
    evaluator = EvaluatorRegistry(plugins=False).create("judge", {**RUBRIC, **params})
    item = item or EvalInput("Paris", input="What is the capital of France?", expected="Paris")
    return asyncio.run(evaluator.aevaluate(item, EvalContext(judge=judge_model, seed=seed)))


@pytest.mark.parametrize(
    ("answer", "grade"),
    [
        ('{"score": 4, "reason": "names Paris"}', (4.0, "names Paris")),
        ('Sure!\n```json\n{"Score": "5", "Reasoning": "exact"}\n```\nHope it helps', (5.0, "exact")),
        ('{"verdict": "ok"} then {"rating": 2}', (2.0, None)),
        ("Score: 4", (4.0, None)),
        ("**Score:** 3 - mostly right", (3.0, None)),
        ("I would rate it 4/5.", (4.0, None)),
        ("8 out of 10", (1 + 0.8 * 4, None)),  # another scale, mapped onto ours
        ("Rating: 2/5 (lists 3/4 cities)", (2.0, None)),  # the labelled grade wins over other fractions
        ("5", (5.0, None)),
        ("PASS", (5.0, None)),
        ("Verdict: fail.", (1.0, None)),
        ("passed: every fact is right", (5.0, None)),
        ("After review the answer is a clear FAIL.", (1.0, None)),
    ],
)
def test_read_grade_understands_common_formats(answer: str, grade: tuple[float, str | None]) -> None:
    read = read_grade(answer, 1, 5)
    assert read is not None
    assert read[0] == pytest.approx(grade[0])
    assert read[1] == grade[1]


@pytest.mark.parametrize(
    "answer",
    [
        "I am not sure.",
        "",
        "PASS or FAIL, hard to say",
        "{not json",
        "It would not pass review",
        "{" * 15_000,
        '{"a": ' * 5_000,
    ],
)
def test_read_grade_refuses_what_it_cannot_read(answer: str) -> None:
    assert read_grade(answer, 1, 5) is None


def test_repeats_ask_with_successive_seeds_and_measure_spread() -> None:
    model = CannedJudge('{"score": 5, "reason": "correct"}', "Score: 3", "garbage", "4/5")
    result = judge(model, seed=100, repeats=4)
    assert [seed for _, seed in model.calls] == [100, 101, 102, 103]
    assert result.details is not None
    assert result.details["scores"] == [5.0, 3.0, 4.0]
    assert result.details["reasons"] == ["correct", None, None]
    assert result.details["unparsed"] == 1
    assert result.details["spread"] == pytest.approx(0.2041241, abs=1e-6)  # pstdev of 1, .5, .75
    assert result.value == pytest.approx(0.75)
    assert result.passed
    assert result.comment == "correct"
    messages = model.calls[0][0]
    assert messages[0]["role"] == "system"
    assert '"score"' in messages[0]["content"]
    user = messages[1]["content"]
    assert RUBRIC["rubric"] in user
    assert "What is the capital of France?" in user
    assert "Paris" in user
    assert "Expected answer" not in user


def test_threshold_scale_prompt_options_and_clamping() -> None:
    assert not judge(CannedJudge("Score: 2")).passed  # below the 1..5 midpoint
    assert judge(CannedJudge("Score: 2"), pass_threshold=2).passed
    clamped = judge(CannedJudge("Score: 6"))  # a little over the top: clamped to 5
    assert clamped.details is not None
    assert clamped.details["scores"] == [5.0]
    assert clamped.value == 1.0
    ten = judge(CannedJudge('{"score": 7}'), scale_min=0, scale_max=10)
    assert ten.value == pytest.approx(0.7)
    assert ten.passed
    model = CannedJudge("Score: 4")
    judge(model, include_expected=True, include_input=False, system_prompt="Be brief.")
    system, user = model.calls[0][0]
    assert system["content"] == "Be brief."
    assert "## Expected answer\nParis" in user["content"]
    assert "capital of France?" not in user["content"]


def test_no_readable_answer_is_an_evaluation_error() -> None:
    with pytest.raises(EvaluationError, match=r"no judge answer could be read.*'I cannot grade this'"):
        judge(CannedJudge("I cannot grade this"), repeats=2)
    with pytest.raises(EvaluationError, match="from 1 to 5"):
        judge(CannedJudge('{"score": 42}', "Score: -7"), repeats=2)  # far off the scale: nonsense
    with pytest.raises(EvaluationError):
        judge(CannedJudge("9" * 50_000))


def test_transport_failures_propagate_and_judge_needs_a_run() -> None:
    with pytest.raises(ConnectionError):
        judge(BrokenJudge())
    with pytest.raises(EvaluationError, match="needs a judge model"):
        judge(None)
    evaluator = EvaluatorRegistry(plugins=False).create("judge", RUBRIC)
    assert evaluator.requires_judge
    with pytest.raises(EvaluationError, match="evaluation run"):
        evaluator.evaluate(EvalInput("Paris"))


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"rubric": ""},
        {"rubric": "x" * 4001},
        {**RUBRIC, "repeats": 0},
        {**RUBRIC, "repeats": 11},
        {**RUBRIC, "scale_min": 5, "scale_max": 5},
        {**RUBRIC, "pass_threshold": 9},
        {**RUBRIC, "rubrik": "typo"},
    ],
)
def test_judge_params_are_validated(params: dict[str, Any]) -> None:
    with pytest.raises(InvalidParams):
        EvaluatorRegistry(plugins=False).create("judge", params)
