"""The engine of an evaluation run: call the target for each case, judge the reply, store it.

``run_cases`` is what one executor does (locally, or inside a Ray worker): a bounded pool
of workers behind an adaptive limiter, retries with seeded jitter, every evaluator on
every reply, and one case's failure never stopping the others. ``drive`` is what the
run's owner does around any executor: skip what a resumed run already stored, answer
from the output cache without calling, store results in batches as they come, cache
fresh replies and trace them, so an interrupted run loses nothing it computed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from watchkeep.evals.limiter import AdaptiveLimiter
from watchkeep.evals.model import (
    Case,
    CheckSpec,
    Executor,
    ItemResult,
    ResultSink,
    RunPlan,
    Score,
    Target,
    TargetError,
    TargetReply,
    case_seed,
)
from watchkeep.evals.run_repository import RunRepository
from watchkeep.evals.targets import TargetCompleter, build_target
from watchkeep.evals.tracing import EvalTracer, new_case_ids
from watchkeep.evaluators.base import Completer, EvalContext, EvalInput, Evaluator
from watchkeep.evaluators.registry import EvaluatorRegistry
from watchkeep.security.egress import AddressPolicy

BATCH_RESULTS = 200  # results handed to the sink at once
BATCH_SECONDS = 0.5  # ... or after this long, whichever comes first
RETRY_BASE_S = 0.5  # first retry's back-off (doubled per attempt, with jitter)
RETRY_CAP_S = 20.0
CACHE_LOOKUP = 500  # cache keys a lookup asks for at once

Evaluators = list[tuple[str, Evaluator[Any]]]


def cache_key(target_version: str, case: Case, params: Mapping[str, Any], seed: int | None = None) -> str:
    """The output cache's key: what was asked of which target version, and which repeat;
    with the case's sampling seed when it is sent (``seed``: the run's), so a run with
    another seed draws new samples instead of replaying the old ones."""
    payload = {
        "target": target_version,
        "messages": [dict(m) for m in case.messages],
        "params": dict(params),
        "repeat": case.repeat,
        "seed": None if seed is None else case_seed(seed, case),
    }
    options = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
    return hashlib.sha256(orjson.dumps(payload, option=options, default=str)).hexdigest()


def backoff_s(attempt: int, rng: random.Random) -> float:
    """Exponential back-off with jitter from the case's own seed (reproducible per case)."""
    delay: float = min(RETRY_CAP_S, RETRY_BASE_S * 2 ** (attempt - 1))
    return delay * (0.5 + rng.random() / 2)


def build_evaluators(registry: EvaluatorRegistry, checks: Sequence[CheckSpec]) -> Evaluators:
    """Configured evaluators named as their scores are (a repeated name gets ``#2``, ``#3``)."""
    out: Evaluators = []
    seen: dict[str, int] = {}
    for spec in checks:
        seen[spec.name] = seen.get(spec.name, 0) + 1
        label = spec.name if seen[spec.name] == 1 else f"{spec.name}#{seen[spec.name]}"
        out.append((label, registry.create(spec.name, dict(spec.params))))
    return out


def _last_user_message(case: Case) -> str | None:
    for message in reversed(case.messages):
        if message.get("role") == "user":
            return message.get("content")
    return None


class _Batcher:
    """Hands results to the sink every ``BATCH_RESULTS`` or ``BATCH_SECONDS``, one batch at a time,
    in order. A batch is written while the next one gathers (the workers never wait on the
    store unless a write is still running when a whole second batch is ready)."""

    def __init__(self, sink: ResultSink, progress: Callable[[int], None] | None) -> None:
        self._sink = sink
        self._progress = progress
        self._pending: list[ItemResult] = []
        self._writing: asyncio.Task[None] | None = None
        self._last = time.monotonic()

    async def add(self, result: ItemResult) -> None:
        self._pending.append(result)
        if self._progress is not None:
            self._progress(1)
        if len(self._pending) >= BATCH_RESULTS or time.monotonic() - self._last >= BATCH_SECONDS:
            await self._start()

    async def _start(self) -> None:
        """Start writing what is pending, unless a write is running and the pending batch is
        not yet a full one (then it waits for that write: the store sets the pace)."""
        if self._writing is not None:
            if not self._writing.done() and len(self._pending) < 2 * BATCH_RESULTS:
                return
            writing, self._writing = self._writing, None
            await writing  # raises what the write raised
        batch, self._pending = self._pending, []
        self._last = time.monotonic()
        if batch:
            self._writing = asyncio.create_task(self._sink(batch))  # type: ignore[arg-type]

    async def flush(self) -> None:
        """Write everything handed in so far and wait for it."""
        if self._writing is not None:
            writing, self._writing = self._writing, None
            await writing
        batch, self._pending = self._pending, []
        self._last = time.monotonic()
        if batch:
            await self._sink(batch)

    async def tick(self) -> None:
        while True:
            await asyncio.sleep(BATCH_SECONDS)
            if time.monotonic() - self._last >= BATCH_SECONDS:
                await self._start()


@dataclass
class _Engine:
    """What every case of one ``run_cases`` call shares."""

    plan: RunPlan
    target: Target
    judge: Completer | None
    registry: EvaluatorRegistry
    evaluators: Evaluators
    limiter: AdaptiveLimiter
    replies: Mapping[tuple[str, int, str], TargetReply]
    on_reply: Callable[[Case, TargetReply], None] | None
    per_case: dict[bytes, Evaluators | str]

    def evaluators_for(self, case: Case) -> Evaluators | str:
        """The run's evaluators, or the case's own (a probe's detector); a str says why none."""
        if not case.checks:
            return self.evaluators
        key = orjson.dumps([[c.name, dict(c.params)] for c in case.checks], default=str)
        if key not in self.per_case:
            try:
                self.per_case[key] = build_evaluators(self.registry, case.checks)
            except (KeyError, ValueError, TypeError) as exc:
                self.per_case[key] = f"{type(exc).__name__}: {exc}"
        return self.per_case[key]

    async def call(self, case: Case, seed: int, trace: tuple[str, str]) -> TargetReply:
        """One case's call with retries; raises the last ``TargetError``."""
        rng = random.Random(seed)
        traceparent = f"00-{trace[0]}-{trace[1]}-01"
        attempt = 0
        while True:
            async with self.limiter.slot() as slot:
                try:
                    reply = await self.target.call(case, self.plan.params, seed=seed, traceparent=traceparent)
                except TargetError as exc:
                    if exc.kind == "rate_limited":
                        self.limiter.on_rate_limited(getattr(exc, "retry_after", None), slot)
                    failure = exc
                else:
                    self.limiter.on_success()
                    return reply
            if not failure.retryable or attempt >= self.plan.retries:
                raise failure
            attempt += 1
            await asyncio.sleep(backoff_s(attempt, rng))

    async def judge_reply(self, case: Case, reply: TargetReply, seed: int) -> dict[str, Score]:
        evaluators = self.evaluators_for(case)
        if isinstance(evaluators, str):
            return {c.name: Score(passed=None, value=None, error=evaluators) for c in case.checks}
        item = EvalInput(
            output=reply.output,
            input=_last_user_message(case),
            span={
                "latency_ms": reply.latency_ms,
                "cost_usd": reply.cost_usd,
                "input_tokens": reply.input_tokens,
                "output_tokens": reply.output_tokens,
                "model": reply.model,
            },
            expected=case.expected,
            metadata=case.metadata,
        )
        context = EvalContext(judge=self.judge, seed=seed)
        scores: dict[str, Score] = {}
        for name, evaluator in evaluators:
            try:
                verdict = await evaluator.aevaluate(item, context)
            except Exception as exc:  # an evaluator's failure is this score's error, not the run's
                scores[name] = Score(passed=None, value=None, error=f"{type(exc).__name__}: {exc}")
            else:
                scores[name] = Score(
                    passed=verdict.passed,
                    value=verdict.value,
                    comment=verdict.comment,
                    details=verdict.details,
                )
        return scores

    async def run(self, case: Case) -> ItemResult:
        """The result of one case; never raises (but for cancellation)."""
        seed = case_seed(self.plan.seed, case)
        base: dict[str, Any] = {
            "item_key": case.item_key,
            "repeat": case.repeat,
            "variant": case.variant,
            "family": case.family,
            "messages": case.messages,
        }
        known = self.replies.get(case.key)
        if known is not None:
            reply = replace(known, cached=True)
        else:
            trace = new_case_ids()
            try:
                reply = await self.call(case, seed, trace)
            except TargetError as exc:
                return ItemResult(**base, output=None, error=str(exc), error_kind=exc.kind, trace_id=trace[0])
            except Exception as exc:  # a target's bug is this item's error
                error = f"{type(exc).__name__}: {exc}"
                return ItemResult(**base, output=None, error=error, error_kind="target", trace_id=trace[0])
            reply = replace(reply, trace_id=trace[0], span_id=trace[1])
            if self.on_reply is not None:
                self.on_reply(case, reply)
        return ItemResult(
            **base,
            output=reply.output,
            scores=await self.judge_reply(case, reply, seed),
            latency_ms=reply.latency_ms,
            cost_usd=reply.cost_usd,
            input_tokens=reply.input_tokens,
            output_tokens=reply.output_tokens,
            cached=reply.cached,
            trace_id=None if reply.cached else reply.trace_id,
        )


def _build(spec: Mapping[str, Any], plan: RunPlan, policy: AddressPolicy, gateway_url: str | None) -> Target:
    return build_target(
        spec,
        egress=policy,
        gateway_url=gateway_url,
        timeout_s=plan.timeout_s,
        concurrency=plan.concurrency,
    )


async def run_cases(
    plan: RunPlan,
    cases: Sequence[Case],
    sink: ResultSink,
    *,
    registry: EvaluatorRegistry | None = None,
    replies: Mapping[tuple[str, int, str], TargetReply] | None = None,
    on_reply: Callable[[Case, TargetReply], None] | None = None,
    progress: Callable[[int], None] | None = None,
    gateway_url: str | None = None,
) -> None:
    """Run every case and hand its result to ``sink`` in batches (``progress(n)``: n more done).

    ``replies`` answers cases without a call (cache hits); ``on_reply`` sees each fresh reply.
    Raises only for what makes the whole run impossible (the target or an evaluator of the
    run cannot be built); on cancellation, what finished is handed to the sink first.
    """
    registry = registry or EvaluatorRegistry()
    policy = AddressPolicy.from_strings(plan.egress_allow)
    evaluators = build_evaluators(registry, plan.checks)
    target = _build(plan.target, plan, policy, gateway_url)
    judge = _build(plan.judge, plan, policy, gateway_url) if plan.judge else None
    engine = _Engine(
        plan=plan,
        target=target,
        judge=TargetCompleter(judge) if judge is not None else None,
        registry=registry,
        evaluators=evaluators,
        limiter=AdaptiveLimiter(plan.concurrency),
        replies=replies or {},
        on_reply=on_reply,
        per_case={},
    )
    batcher = _Batcher(sink, progress)
    todo: Iterator[Case] = iter(cases)

    async def worker() -> None:
        for case in todo:
            await batcher.add(await engine.run(case))

    ticker = asyncio.create_task(batcher.tick())
    try:
        workers = min(plan.concurrency, len(cases)) or 1
        await asyncio.gather(*(worker() for _ in range(workers)))
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        try:
            await batcher.flush()
        finally:
            await target.aclose()
            if judge is not None:
                await judge.aclose()


class LocalExecutor:
    """Runs the cases in this process's event loop (``model.Executor``)."""

    def __init__(self, *, registry: EvaluatorRegistry | None = None, gateway_url: str | None = None) -> None:
        self._registry = registry
        self._gateway_url = gateway_url

    async def execute(self, plan: RunPlan, cases: Sequence[Case], sink: ResultSink) -> None:
        await run_cases(plan, cases, sink, registry=self._registry, gateway_url=self._gateway_url)


@dataclass
class DriveStats:
    """How a ``drive`` went: cases asked for, already stored, from the cache, computed, failed."""

    total: int = 0
    skipped_done: int = 0
    cached: int = 0
    executed: int = 0
    failed: int = 0
    results: list[ItemResult] = field(default_factory=list)  # what this drive stored, in order


def _reply_of(result: ItemResult) -> TargetReply:
    """What the cache keeps of a fresh result's reply."""
    return TargetReply(
        output=result.output,
        latency_ms=result.latency_ms,
        input_tokens=result.input_tokens,
        output_tokens=result.output_tokens,
        cost_usd=result.cost_usd,
    )


def _target_model(spec: Mapping[str, Any]) -> str | None:
    value = spec.get("route") or spec.get("model") or spec.get("callable")
    return str(value) if value is not None else None


@contextlib.contextmanager
def _progress_bar(enabled: bool, total: int) -> Iterator[Callable[[int], None] | None]:
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress("{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()) as bar:
        task = bar.add_task("cases", total=total)
        yield lambda n: bar.advance(task, n)


async def drive(
    plan: RunPlan,
    cases: Sequence[Case],
    *,
    executor: Executor,
    repo: RunRepository,
    project_id: int,
    run_id: int,
    target_version: str,
    use_cache: bool,
    tracer: EvalTracer | None = None,
    progress: bool = False,
    gateway_url: str | None = None,
) -> DriveStats:
    """Compute what the run still lacks and store it as it comes (results, cache, spans).

    On cancellation (Ctrl-C) every result already handed back is stored before it re-raises,
    so the next ``drive`` of the same run resumes where this one stopped. ``gateway_url``: the
    gateway a route target without a URL calls (cache hits are judged here, by ``run_cases``)."""
    stats = DriveStats(total=len(cases))
    run = await asyncio.to_thread(repo.get_run, project_id, run_id)
    done = await asyncio.to_thread(repo.done_keys, project_id, run_id)
    todo = [c for c in cases if c.key not in done]
    stats.skipped_done = len(cases) - len(todo)
    keys = {c.key: cache_key(target_version, c, plan.params, plan.seed) for c in todo} if use_cache else {}
    hits: dict[tuple[str, int, str], TargetReply] = {}
    if use_cache:
        wanted = list(keys.items())
        for start in range(0, len(wanted), CACHE_LOOKUP):
            chunk = wanted[start : start + CACHE_LOOKUP]
            found = await asyncio.to_thread(repo.cache_get, project_id, [k for _, k in chunk])
            hits.update((case_key, found[k]) for case_key, k in chunk if k in found)
    model = _target_model(plan.target)

    async def sink(batch: list[ItemResult]) -> None:
        if all(r.cached for r in batch):
            # Cache hits are judged before any call starts, so nothing waits on this loop: a
            # direct write spares the thread hand-off (about a fifth of a cached rerun).
            repo.add_results(project_id, run_id, batch)
        else:
            await asyncio.to_thread(repo.add_results, project_id, run_id, batch)
        stats.results.extend(batch)
        fresh = [r for r in batch if not r.cached]
        stats.cached += len(batch) - len(fresh)
        stats.executed += len(fresh)
        stats.failed += sum(1 for r in batch if r.error is not None)
        if use_cache:
            entries = {keys[r.key]: _reply_of(r) for r in fresh if r.error is None and r.key in keys}
            await asyncio.to_thread(repo.cache_put, project_id, entries)
        if tracer is not None:
            for r in fresh:
                tracer.record(
                    project_id,
                    r,
                    run_id=run_id,
                    run_name=run.name,
                    model=model,
                    dataset_version=run.dataset_version,
                )
            tracer.flush()

    with _progress_bar(progress, len(todo)) as advance:
        if hits:
            cached_cases = [c for c in todo if c.key in hits]
            await run_cases(
                plan, cached_cases, _counting(sink, advance), replies=hits, gateway_url=gateway_url
            )
        rest = [c for c in todo if c.key not in hits]
        if rest:
            await executor.execute(plan, rest, _counting(sink, advance))
    return stats


def _counting(sink: ResultSink, advance: Callable[[int], None] | None) -> ResultSink:
    """``sink`` that also advances the progress bar by each batch it stores."""
    if advance is None:
        return sink

    async def counted(batch: list[ItemResult]) -> None:
        await sink(batch)
        advance(len(batch))

    return counted
