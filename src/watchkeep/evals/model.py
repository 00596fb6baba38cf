"""The values every part of an evaluation run passes around: items, cases, replies, results.

They are frozen, picklable dataclasses (a Ray worker receives cases and returns results)
and hold plain JSON-able data, so a result row can be stored, compared and re-aggregated
without the model that produced it: a gate is a pure function of two runs' results.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

Message = Mapping[str, str]  # {"role": ..., "content": ...}


@dataclass(frozen=True, slots=True)
class DatasetItem:
    """One row of a dataset version; ``key`` is stable across versions (what a diff pairs)."""

    key: str
    input: Any  # a string (the user's message), a list of messages, or a mapping of variables
    expected: Any = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    split: str | None = None
    trace_id: str | None = None  # the production trace it was built from


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """An evaluator by registry name and its parameters."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Case:
    """One call to make and judge: an item (or probe), one repeat, one variant of its input."""

    item_key: str
    messages: tuple[Message, ...]
    expected: Any = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    repeat: int = 0  # part of the cache key, so repeats are real samples
    variant: str = ""  # "" for the item as written; a perturbation's name otherwise
    family: str | None = None  # adversarial family, or the perturbation kind
    checks: tuple[CheckSpec, ...] = ()  # () means the run's evaluators; probes bring their detector

    @property
    def key(self) -> tuple[str, int, str]:
        """What identifies the case within a run (the result row's unique key)."""
        return (self.item_key, self.repeat, self.variant)


def case_seed(run_seed: int, case: Case) -> int:
    """A per-case seed derived from the run's: the same on every executor and every resume."""
    digest = hashlib.sha256(
        f"{run_seed}\x1f{case.item_key}\x1f{case.repeat}\x1f{case.variant}".encode()
    ).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


@dataclass(frozen=True, slots=True)
class TargetReply:
    """What a target answered, with what it cost; ``trace_id`` names the call's trace."""

    output: str | None
    latency_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    model: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    start_ns: int | None = None
    cached: bool = False


class TargetError(Exception):
    """A call that failed; ``kind`` is stored with the item, ``retryable`` drives the runner."""

    kind = "target"
    retryable = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable


class TargetTimeout(TargetError):
    """The target did not answer within the run's timeout."""

    kind = "timeout"
    retryable = True


class RateLimited(TargetError):
    """The target answered 429: the runner halves its concurrency and retries later."""

    kind = "rate_limited"
    retryable = True

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class GarbageReply(TargetError):
    """The target answered, but not in the expected shape (not JSON, no choices)."""

    kind = "garbage"


class Target(Protocol):
    """What a run calls: a gateway route, an OpenAI-compatible endpoint or a Python callable."""

    @property
    def version(self) -> str:
        """The target version a run and the output cache are keyed by."""
        ...

    def describe(self) -> dict[str, Any]:
        """What is stored on the run: kind, name, URL; never a secret."""
        ...

    async def call(
        self, case: Case, params: Mapping[str, Any], *, seed: int, traceparent: str | None
    ) -> TargetReply:
        """One call; raises ``TargetError`` (or a subclass) when it fails."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


@dataclass(frozen=True, slots=True)
class Score:
    """One evaluator's verdict on one result; ``error`` when the evaluator itself failed."""

    passed: bool | None
    value: float | None
    comment: str | None = None
    details: Mapping[str, Any] | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ItemResult:
    """The immutable outcome of one case: what was sent, what came back, how it was judged."""

    item_key: str
    repeat: int
    variant: str
    family: str | None
    messages: tuple[Message, ...] | None
    output: str | None
    scores: Mapping[str, Score] = field(default_factory=dict)
    error: str | None = None
    error_kind: str | None = None  # timeout | rate_limited | target | garbage | input
    latency_ms: float | None = None
    cost_usd: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached: bool = False
    trace_id: str | None = None

    @property
    def key(self) -> tuple[str, int, str]:
        """The same key as the case it answers."""
        return (self.item_key, self.repeat, self.variant)

    @property
    def passed(self) -> bool | None:
        """None when the call failed; else whether every evaluator that judged it passed."""
        if self.error is not None:
            return None
        return all(s.passed for s in self.scores.values() if s.passed is not None)


ResultSink = Callable[[list[ItemResult]], Awaitable[None]]


class Executor(Protocol):
    """Runs cases and hands results back in batches; local asyncio or a Ray cluster."""

    async def execute(self, plan: RunPlan, cases: Sequence[Case], sink: ResultSink) -> None:
        """Run every case of ``cases`` (already filtered of cached and finished ones)."""
        ...


@dataclass(frozen=True, slots=True)
class RunPlan:
    """Everything a worker needs to run cases, as plain data (it crosses process boundaries)."""

    target: Mapping[str, Any]  # a TargetSpec as a dict (``evals.config``)
    checks: tuple[CheckSpec, ...]
    params: Mapping[str, Any]
    seed: int
    concurrency: int = 16
    timeout_s: float = 60.0
    retries: int = 2
    judge: Mapping[str, Any] | None = None  # a TargetSpec for judge evaluators
    egress_allow: tuple[str, ...] = ()  # networks the target may reach besides public ones
