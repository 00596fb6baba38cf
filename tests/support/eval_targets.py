"""Callable targets and evaluators for the evaluation engine's tests (imported by path)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, ClassVar

from watchkeep.evals.model import RateLimited
from watchkeep.evaluators.base import EvalContext, EvalInput, EvalResult, Evaluator, NoParams


class Calls:
    """What the targets below were asked (reset by each test)."""

    lock = threading.Lock()
    count = 0
    seen: ClassVar[list[tuple[list[dict[str, Any]], dict[str, Any]]]] = []
    in_flight = 0
    peak_after_limit = 0
    rate_limited_left = 0
    gate: asyncio.Event | None = None
    blocked: asyncio.Event | None = None  # set once ``block_count`` calls wait on the gate
    block_count = 0
    stop_after: int | None = None

    @classmethod
    def reset(cls) -> None:
        cls.count = 0
        cls.seen = []
        cls.in_flight = 0
        cls.peak_after_limit = 0
        cls.rate_limited_left = 0
        cls.gate = None
        cls.blocked = None
        cls.block_count = 0
        cls.stop_after = None

    @classmethod
    def note(cls, messages: list[dict[str, Any]], params: dict[str, Any]) -> None:
        with cls.lock:
            cls.count += 1
            cls.seen.append((messages, params))


def echo(messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
    """Sync: answers the last message back."""
    Calls.note(messages, params)
    return f"echo: {messages[-1]['content']}"


async def rich_echo(messages: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    """Async, with usage and cost."""
    Calls.note(messages, params)
    return {
        "output": messages[-1]["content"].upper(),
        "input_tokens": 5,
        "output_tokens": 2,
        "cost_usd": 0.01,
        "model": "m1",
    }


async def moody(messages: list[dict[str, Any]], params: dict[str, Any]) -> Any:
    """By the message: 'slow' never answers in time, 'garbage' returns a number, 'fail' raises."""
    Calls.note(messages, params)
    text = messages[-1]["content"]
    if text == "slow":
        await asyncio.sleep(30)
    if text == "garbage":
        return 42
    if text == "fail":
        raise RuntimeError("the model crashed")
    return "fine"


async def rate_limited(messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
    """429 for the first ``Calls.rate_limited_left`` calls; tracks concurrency after that."""
    Calls.note(messages, params)
    with Calls.lock:
        limited = Calls.rate_limited_left > 0
        Calls.rate_limited_left -= 1
        Calls.in_flight += 1
        if not limited:
            Calls.peak_after_limit = max(Calls.peak_after_limit, Calls.in_flight)
    try:
        await asyncio.sleep(0.01)
        if limited:
            raise RateLimited("slow down", retry_after=0)
        return "ok"
    finally:
        with Calls.lock:
            Calls.in_flight -= 1


async def gated(messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
    """Answers ``Calls.stop_after`` calls, then waits on ``Calls.gate`` (a run to interrupt)."""
    Calls.note(messages, params)
    if Calls.stop_after is not None and Calls.count > Calls.stop_after and Calls.gate is not None:
        if Calls.blocked is not None and Calls.count >= Calls.stop_after + Calls.block_count:
            Calls.blocked.set()
        await Calls.gate.wait()
    return "done"


class ContainsExpected(Evaluator[NoParams]):
    name = "contains_expected"
    description = "The output contains the expected text."

    def evaluate(self, item: EvalInput) -> EvalResult:
        return EvalResult.check(str(item.expected) in (item.output or ""))


class Boom(Evaluator[NoParams]):
    name = "boom"
    description = "Always raises."

    def evaluate(self, item: EvalInput) -> EvalResult:
        raise ValueError("evaluator broke")


class JudgeSaysYes(Evaluator[NoParams]):
    name = "judge_yes"
    description = "Asks the judge; passes when it answers yes."
    requires_judge = True

    def evaluate(self, item: EvalInput) -> EvalResult:
        raise NotImplementedError

    async def aevaluate(self, item: EvalInput, context: EvalContext) -> EvalResult:
        assert context.judge is not None
        answer = await context.judge.complete(
            [{"role": "user", "content": f"yes {item.output}"}], seed=context.seed
        )
        return EvalResult(
            answer.startswith("echo: yes"), 1.0, details={"judge": answer, "seed": context.seed}
        )


def registry() -> Any:
    """A registry of the evaluators above (no plugins, no built-ins)."""
    from watchkeep.evaluators.registry import EvaluatorRegistry

    reg = EvaluatorRegistry({}, plugins=False)
    for cls in (ContainsExpected, Boom, JudgeSaysYes):
        reg.register(cls)
    return reg
