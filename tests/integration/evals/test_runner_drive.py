"""``drive`` on both databases: results stored in batches, cache hits on rerun, resume after
cancellation, repeats as separate samples, and each case traced like production traffic."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from tests.support import eval_targets
from tests.support.eval_targets import Calls
from tests.support.gateway import live_gateway

from watchkeep.config import Settings
from watchkeep.evals import runner
from watchkeep.evals.model import Case, CheckSpec, ItemResult, ResultSink, RunPlan
from watchkeep.evals.run_repository import RunRepository
from watchkeep.evals.runner import DriveStats, LocalExecutor, drive
from watchkeep.evals.tracing import EvalTracer, span_id_for
from watchkeep.store.engine import make_engine
from watchkeep.store.projects import ProjectRepository
from watchkeep.store.trace_queries import TraceQueries

MODULE = "tests.support.eval_targets"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    Calls.reset()
    eng = make_engine(database_url)
    yield eng
    eng.dispose()
    Calls.reset()


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "RETRY_BASE_S", 0.0)


def new_run(
    engine: Engine, project_id: int | None = None, name: str = "nightly"
) -> tuple[RunRepository, int, int]:
    pid = project_id or ProjectRepository(engine).create(f"p-{uuid.uuid4().hex[:10]}").id
    repo = RunRepository(engine)
    run = repo.create_run(
        pid,
        name=name,
        dataset_version_id=None,
        target={"kind": "python"},
        target_version="python:test",
        config={},
        config_hash="c" * 64,
        seed=5,
        cases_total=0,
    )
    return repo, pid, run.id


def plan(fn: Callable[..., Any], **extra: Any) -> RunPlan:
    return RunPlan(
        target={"kind": "python", "callable": f"{fn.__module__}:{fn.__name__}"},
        checks=(CheckSpec("length", {"min_chars": 1}),),
        params={"temperature": 0},
        seed=5,
        **extra,
    )


def cases(n: int, repeats: int = 1) -> list[Case]:
    return [
        Case(item_key=f"i{k}", messages=({"role": "user", "content": f"question {k}"},), repeat=r)
        for k in range(n)
        for r in range(repeats)
    ]


def go(
    engine: Engine, p: RunPlan, cs: list[Case], project_id: int | None = None, **kwargs: Any
) -> tuple[DriveStats, RunRepository, int, int]:
    repo, pid, run_id = new_run(engine, project_id)
    stats = asyncio.run(
        drive(
            p,
            cs,
            executor=LocalExecutor(),
            repo=repo,
            project_id=pid,
            run_id=run_id,
            target_version="python:test",
            use_cache=kwargs.pop("use_cache", True),
            **kwargs,
        )
    )
    return stats, repo, pid, run_id


def test_results_are_stored_and_a_rerun_answers_from_the_cache(engine: Engine) -> None:
    stats, repo, pid, run_id = go(engine, plan(eval_targets.echo), cases(30))
    assert (stats.total, stats.executed, stats.cached, stats.failed) == (30, 30, 0, 0)
    assert Calls.count == 30
    stored = repo.all_results(pid, run_id)
    assert len(stored) == 30
    assert all(r.scores["length"].passed for r in stored)
    assert repo.get_run(pid, run_id).cases_done == 30
    # the same cases against the same target version, in a new run of the same project
    again, repo2, _, run2 = go(engine, plan(eval_targets.echo), cases(30), project_id=pid)
    assert Calls.count == 30  # no call made
    assert (again.cached, again.executed) == (30, 0)
    hits = repo2.all_results(pid, run2)
    assert all(r.cached for r in hits)
    assert {r.output for r in hits} == {r.output for r in stored}
    assert all(r.scores["length"].passed for r in hits)  # hits are judged again
    # another project does not share the cache
    go(engine, plan(eval_targets.echo), cases(3))
    assert Calls.count == 33
    # use_cache=False calls again
    go(engine, plan(eval_targets.echo), cases(2), project_id=pid, use_cache=False)
    assert Calls.count == 35


def test_repeats_are_distinct_samples_and_keys(engine: Engine) -> None:
    stats, repo, pid, run_id = go(engine, plan(eval_targets.echo), cases(4, repeats=3))
    assert stats.executed == 12
    assert Calls.count == 12
    assert len(repo.done_keys(pid, run_id)) == 12
    go(engine, plan(eval_targets.echo), cases(4, repeats=4), project_id=pid)
    assert Calls.count == 16  # only the new repeat index is called


def test_failures_are_stored_per_item_and_not_cached(engine: Engine) -> None:
    cs = [Case(item_key=t, messages=({"role": "user", "content": t},)) for t in ("a", "garbage", "fail", "b")]
    stats, repo, pid, run_id = go(engine, plan(eval_targets.moody, retries=0), cs)
    assert (stats.executed, stats.failed) == (4, 2)
    run = repo.get_run(pid, run_id)
    assert (run.cases_done, run.cases_failed) == (4, 2)
    before = Calls.count
    go(engine, plan(eval_targets.moody, retries=0), cs, project_id=pid)
    assert Calls.count - before == 2  # the failed ones are asked again, the good ones come from the cache


def test_a_cancelled_drive_keeps_what_it_computed_and_a_resume_skips_it(engine: Engine) -> None:
    repo, pid, run_id = new_run(engine)
    p = plan(eval_targets.gated, concurrency=4)
    cs = cases(40)

    async def interrupted() -> None:
        Calls.gate, Calls.blocked = asyncio.Event(), asyncio.Event()
        Calls.stop_after, Calls.block_count = 10, 4
        task = asyncio.create_task(
            drive(
                p,
                cs,
                executor=LocalExecutor(),
                repo=repo,
                project_id=pid,
                run_id=run_id,
                target_version="v",
                use_cache=True,
            )
        )
        await asyncio.wait_for(Calls.blocked.wait(), 30)  # ten answered, four waiting
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(interrupted())
    kept = repo.done_keys(pid, run_id)
    assert len(kept) == 10
    assert repo.get_run(pid, run_id).cases_done == 10
    Calls.reset()
    stats = asyncio.run(
        drive(
            p,
            cs,
            executor=LocalExecutor(),
            repo=repo,
            project_id=pid,
            run_id=run_id,
            target_version="v",
            use_cache=True,
        )
    )
    assert stats.skipped_done == 10
    assert Calls.count == 30
    assert len(repo.done_keys(pid, run_id)) == 40


class CountingExecutor:
    """Any executor: drive hands it only what is neither stored nor cached."""

    def __init__(self) -> None:
        self.asked: list[Case] = []

    async def execute(self, plan: RunPlan, cases: Sequence[Case], sink: ResultSink) -> None:
        self.asked.extend(cases)
        await sink([ItemResult(c.item_key, c.repeat, c.variant, None, c.messages, "x") for c in cases])


def test_drive_hands_any_executor_only_the_missing_cases(engine: Engine) -> None:
    _, repo, pid, _ = go(engine, plan(eval_targets.echo), cases(5))
    executor = CountingExecutor()
    _, _, run_id = new_run(engine, pid)
    stats = asyncio.run(
        drive(
            plan(eval_targets.echo),
            cases(8),
            executor=executor,
            repo=repo,
            project_id=pid,
            run_id=run_id,
            target_version="python:test",
            use_cache=True,
        )
    )
    assert sorted(c.item_key for c in executor.asked) == ["i5", "i6", "i7"]
    assert (stats.cached, stats.executed) == (5, 3)


def test_each_fresh_case_is_a_span_and_the_gateway_span_is_its_child(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {"routes": [{"name": "m", "deployments": [{"name": "a", "backend": "mock"}]}]}
    with live_gateway(tmp_path / "gw", database_url, config) as gw:
        monkeypatch.setenv("WATCHKEEP_API_KEY", gw.key)
        principal = gw.app.state.services.keys.verify(gw.key)
        engine = make_engine(database_url)
        try:
            repo, pid, run_id = new_run(engine, principal.project_id, name="smoke")
            p = RunPlan(target={"kind": "route", "route": "m"}, checks=(), params={}, seed=1, concurrency=2)
            tracer = EvalTracer.start(engine, Settings(home=tmp_path, database_url=database_url))
            try:
                stats = asyncio.run(
                    drive(
                        p,
                        cases(3),
                        executor=LocalExecutor(gateway_url=gw.url),
                        repo=repo,
                        project_id=pid,
                        run_id=run_id,
                        target_version="route:m",
                        use_cache=True,
                        tracer=tracer,
                    )
                )
                _, _, rerun = new_run(engine, pid, name="smoke")
                again = asyncio.run(
                    drive(
                        p,
                        cases(3),
                        executor=CountingExecutor(),
                        repo=repo,
                        project_id=pid,
                        run_id=rerun,
                        target_version="route:m",
                        use_cache=True,
                        tracer=tracer,
                        gateway_url=gw.url,
                    )
                )
            finally:
                tracer.close()
            assert (stats.executed, stats.failed) == (3, 0)
            assert (again.cached, again.executed) == (3, 0)
            result = repo.all_results(pid, run_id)[0]
            assert result.trace_id is not None
            spans = gw.wait_spans(result.trace_id, 2)
            ours = next(s for s in spans if s["name"] == "eval smoke")
            theirs = next(s for s in spans if s["name"] != "eval smoke")
            assert ours["span_id"] == span_id_for(result.trace_id)
            assert theirs["parent_span_id"] == ours["span_id"]
            trace = TraceQueries(engine).get_trace(pid, result.trace_id)
            assert trace is not None
        finally:
            engine.dispose()
