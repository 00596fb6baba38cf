"""The run repository on both databases: immutable rows, counters, resume keys, cache, tenants,
and inputs and outputs sealed at rest."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select

from watchkeep.evals.model import ItemResult, Score, TargetReply
from watchkeep.evals.run_repository import (
    RunNotFound,
    RunRepository,
    from_row,
    to_row,
)
from watchkeep.security.crypto import Keyring, new_key
from watchkeep.store.engine import make_engine
from watchkeep.store.eval_tables import eval_output_cache, eval_results
from watchkeep.store.projects import ProjectRepository
from watchkeep.store.sealing import is_sealed
from watchkeep.store.trace_queries import InvalidCursor


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


def _project(engine: Engine) -> int:
    return ProjectRepository(engine).create(f"p-{uuid.uuid4().hex[:10]}").id


def _run(repo: RunRepository, project_id: int, config_hash: str = "h" * 64) -> int:
    return repo.create_run(
        project_id,
        name="nightly",
        dataset_version_id=None,
        target={"kind": "python"},
        target_version="python:m:f",
        config={"repeats": 1},
        config_hash=config_hash,
        seed=7,
        cases_total=3,
    ).id


def _result(key: str, *, repeat: int = 0, error: str | None = None, ok: bool = True) -> ItemResult:
    return ItemResult(
        item_key=key,
        repeat=repeat,
        variant="",
        family=None,
        messages=({"role": "user", "content": f"q {key}"},),
        output=None if error else "answer",
        scores={} if error else {"exact": Score(passed=ok, value=1.0 if ok else 0.0, details={"k": [1]})},
        error=error,
        error_kind="timeout" if error else None,
        latency_ms=12.5,
        input_tokens=3,
        output_tokens=4,
        cost_usd=0.001,
        trace_id="ab" * 16,
    )


def test_row_round_trip_keeps_every_field() -> None:
    result = ItemResult(
        item_key="k",
        repeat=2,
        variant="typo",
        family="perturb",
        messages=({"role": "system", "content": "s"}, {"role": "user", "content": "u"}),
        output="o",
        scores={
            "a": Score(passed=True, value=0.5, comment="c", details={"x": 1}),
            "b": Score(passed=None, value=None, error="boom"),
        },
        latency_ms=1.0,
        cost_usd=0.2,
        input_tokens=1,
        output_tokens=2,
        cached=True,
        trace_id="t" * 32,
    )
    row = to_row(1, 2, result)
    assert row["passed"] is True
    assert row["run_id"] == 2
    assert from_row(row) == result


def test_results_are_stored_once_and_counters_advance_by_new_rows(engine: Engine) -> None:
    repo = RunRepository(engine)
    pid = _project(engine)
    run_id = _run(repo, pid)
    first = [_result("a"), _result("b", error="slow")]
    assert repo.add_results(pid, run_id, first) == 2
    # a retried batch: "a" again (with another output) plus a new failing item
    again = [_result("a", ok=False), _result("c", ok=False)]
    assert repo.add_results(pid, run_id, again) == 1
    run = repo.get_run(pid, run_id)
    assert (run.cases_done, run.cases_failed) == (3, 1)
    assert repo.done_keys(pid, run_id) == {("a", 0, ""), ("b", 0, ""), ("c", 0, "")}
    stored = {r.item_key: r for r in repo.all_results(pid, run_id)}
    assert stored["a"].scores["exact"].passed is True  # never rewritten
    assert stored["b"].error == "slow"
    assert stored["b"].passed is None
    failed = repo.results(pid, run_id, failed_only=True)
    assert sorted(r.result.item_key for r in failed) == ["b", "c"]
    page = repo.results(pid, run_id, limit=2)
    rest = repo.results(pid, run_id, after_id=page[-1].id)
    assert [r.result.item_key for r in page + rest] == ["a", "b", "c"]
    assert [r.result.item_key for r in repo.results(pid, run_id, item_key="c")] == ["c"]


def test_repeats_are_distinct_rows(engine: Engine) -> None:
    repo = RunRepository(engine)
    pid = _project(engine)
    run_id = _run(repo, pid)
    assert repo.add_results(pid, run_id, [_result("a", repeat=0), _result("a", repeat=1)]) == 2
    assert repo.done_keys(pid, run_id) == {("a", 0, ""), ("a", 1, "")}


def test_finish_resume_list_and_delete(engine: Engine) -> None:
    repo = RunRepository(engine)
    pid = _project(engine)
    old = _run(repo, pid, "x" * 64)
    newer = _run(repo, pid, "x" * 64)
    assert repo.find_resumable(pid, "x" * 64).id == newer  # type: ignore[union-attr]
    done = repo.finish_run(pid, newer, status="completed", aggregates={"pass_rate": 1.0})
    assert done.status == "completed"
    assert done.finished_at_ns is not None
    assert done.aggregates == {"pass_rate": 1.0}
    repo.finish_run(pid, old, status="interrupted", aggregates=None, error="Ctrl-C")
    assert repo.find_resumable(pid, "x" * 64).id == old  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="status must be"):
        repo.finish_run(pid, old, status="bogus", aggregates=None)
    third = _run(repo, pid)
    page = repo.list_runs(pid, limit=2)
    assert [r.id for r in page.items] == [third, newer]
    assert page.next_cursor is not None
    rest = repo.list_runs(pid, limit=2, cursor=page.next_cursor)
    assert [r.id for r in rest.items] == [old]
    assert rest.next_cursor is None
    assert [r.id for r in repo.list_runs(pid, status="interrupted").items] == [old]
    assert repo.list_runs(pid, dataset="none-such").items == []
    with pytest.raises(InvalidCursor):
        repo.list_runs(pid, cursor="garbage!")
    repo.add_results(pid, old, [_result("a")])
    assert repo.delete_run(pid, old) is True
    assert repo.delete_run(pid, old) is False
    with pytest.raises(RunNotFound):
        repo.get_run(pid, old)


def test_projects_are_isolated(engine: Engine) -> None:
    repo = RunRepository(engine)
    mine, theirs = _project(engine), _project(engine)
    run_id = _run(repo, theirs)
    repo.add_results(theirs, run_id, [_result("a")])
    with pytest.raises(RunNotFound):
        repo.get_run(mine, run_id)
    with pytest.raises(RunNotFound):
        repo.add_results(mine, run_id, [_result("b")])
    with pytest.raises(RunNotFound):
        repo.finish_run(mine, run_id, status="failed", aggregates=None)
    assert repo.done_keys(mine, run_id) == set()
    assert repo.results(mine, run_id) == []
    assert repo.all_results(mine, run_id) == []
    assert repo.list_runs(mine).items == []
    assert repo.delete_run(mine, run_id) is False
    assert repo.get_run(theirs, run_id).cases_done == 1
    repo.cache_put(theirs, {"k1": TargetReply(output="secret")})
    assert repo.cache_get(mine, ["k1"]) == {}


def test_cache_keeps_the_first_reply_and_marks_hits(engine: Engine) -> None:
    repo = RunRepository(engine)
    pid = _project(engine)
    keys = [f"{i:064x}" for i in range(1200)]  # more than one lookup batch
    repo.cache_put(pid, {k: TargetReply(output=k[-4:], input_tokens=1, trace_id="t") for k in keys})
    repo.cache_put(pid, {keys[0]: TargetReply(output="later")})
    got = repo.cache_get(pid, [*keys, "missing"])
    assert len(got) == 1200
    assert got[keys[0]].output == keys[0][-4:]
    assert got[keys[5]].cached is True
    assert got[keys[5]].input_tokens == 1
    assert got[keys[5]].trace_id is None  # a hit is not the original call


def test_with_a_sealer_inputs_outputs_and_cached_replies_are_stored_sealed(engine: Engine) -> None:
    keyring = Keyring.from_keys(new_key())
    repo = RunRepository(engine, sealer=keyring)
    pid = _project(engine)
    run_id = _run(repo, pid)
    repo.add_results(pid, run_id, [_result("a")])
    repo.cache_put(pid, {"k": TargetReply("cached answer", cost_usd=0.5)})
    with engine.connect() as conn:
        row = conn.execute(select(eval_results).where(eval_results.c.run_id == run_id)).one()._mapping
        reply = conn.execute(select(eval_output_cache.c.reply).where(eval_output_cache.c.project_id == pid))
        cached = reply.scalar_one()
    assert is_sealed(row["input"])
    assert is_sealed(row["output"])
    assert is_sealed(cached["output"])
    assert cached["cost_usd"] == 0.5  # costs and scores stay readable without the key
    assert row["scores"]["exact"]["passed"] is True
    assert repo.all_results(pid, run_id) == [_result("a")]
    assert repo.cache_get(pid, ["k"])["k"].output == "cached answer"
    with pytest.raises(ValueError, match="no encryption key is configured"):
        RunRepository(engine).all_results(pid, run_id)
