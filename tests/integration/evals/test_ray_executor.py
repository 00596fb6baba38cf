"""The Ray executor on a real local Ray instance: the same results as the local executor."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support import eval_run_targets
from tests.support.eval_run_targets import python_target, write_config, write_dataset
from tests.support.gateway import mock_upstream_args, process
from tests.support.servers import free_port

from watchkeep.config import Settings
from watchkeep.evals.config import load_config
from watchkeep.evals.model import Case, ItemResult, RunPlan
from watchkeep.evals.ray_executor import RayExecutor
from watchkeep.evals.run_repository import RunRepository
from watchkeep.evals.runner import LocalExecutor
from watchkeep.evals.service import EvalService
from watchkeep.store.engine import make_engine
from watchkeep.store.projects import ProjectRepository

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """One local Ray instance for the module (started by the test, as a user's cluster)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with process(mock_upstream_args(port), ready_url=f"{url}/_stats"):
        yield url


def _comparable(results: list[ItemResult]) -> dict[tuple[str, int, str], Any]:
    return {
        r.key: (r.output, r.error_kind, {n: (s.passed, s.value, s.comment) for n, s in r.scores.items()})
        for r in results
    }


def _run_both(database_url: str, tmp_path: Path, target: dict[str, Any], **extra: Any) -> tuple[Any, Any]:
    write_dataset(tmp_path / "numbers.jsonl", 25)
    path = write_config(
        tmp_path / "c.yaml",
        target=target,
        dataset_file="numbers.jsonl",
        repeats=2,
        perturbations=["typos", "case"],
        cache=False,
        seed=11,
        evaluators=[
            {"name": "exact_match"},
            {"name": "similarity"},
            {"name": "length", "params": {"max_chars": 80}},
        ],
        **extra,
    )
    config = load_config(path)
    engine = make_engine(database_url)
    service = EvalService(engine, Settings(home=tmp_path, database_url=database_url))
    repo = RunRepository(engine)
    found = []
    for executor in (LocalExecutor(), RayExecutor(batch_size=16)):
        project_id = ProjectRepository(engine).get_or_create(f"ray-{uuid.uuid4().hex[:8]}").id
        outcome = asyncio.run(service.run(config, project_id, executor=executor, base_dir=tmp_path))
        assert outcome.run.status == "completed", outcome.run.error
        found.append(repo.all_results(project_id, outcome.run.id))
    engine.dispose()
    return found[0], found[1]


@pytest.mark.usefixtures("ray_cluster")
def test_python_target_gives_identical_results_on_ray_and_locally(database_url: str, tmp_path: Path) -> None:
    local, on_ray = _run_both(database_url, tmp_path, python_target(eval_run_targets.wrong_share))
    assert len(local) == 25 * 2 * 3
    assert _comparable(local) == _comparable(on_ray)
    assert {r.passed for r in local} == {True, False}  # the comparison covers both verdicts


@pytest.mark.usefixtures("ray_cluster")
def test_mock_upstream_gives_identical_results_on_ray_and_locally(
    database_url: str, tmp_path: Path, upstream: str
) -> None:
    target = {"kind": "openai", "base_url": f"{upstream}/v1", "model": "mock"}
    local, on_ray = _run_both(database_url, tmp_path, target)
    assert _comparable(local) == _comparable(on_ray)
    assert all(r.output == "The quick brown fox jumps over the lazy dog." for r in on_ray)


@pytest.mark.usefixtures("ray_cluster")
def test_batches_stream_to_the_sink_and_a_failed_batch_raises() -> None:
    plan = RunPlan(
        target=python_target(eval_run_targets.correct),
        checks=(),
        params={},
        seed=3,
    )
    cases = [
        Case(f"q{i:03d}", ({"role": "user", "content": f"What is {i} plus zero?"},), expected=str(i))
        for i in range(10)
    ]
    batches: list[list[ItemResult]] = []

    async def sink(results: list[ItemResult]) -> None:
        batches.append(results)

    asyncio.run(RayExecutor(batch_size=3).execute(plan, cases, sink))
    assert sorted(len(b) for b in batches) == [1, 3, 3, 3]
    assert sorted(r.output or "" for b in batches for r in b) == sorted(str(i) for i in range(10))
    assert ray.is_initialized()  # it used the running instance and left it running


def test_batch_size_is_bounded() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        RayExecutor(batch_size=0)
