"""Datasets and evaluation runs for console tests, written through the real repositories.

A run here is what ``watchkeep eval run`` stores: a run row, immutable per-item results
and the aggregates of ``evals.aggregate`` computed from them; only the target calls are
skipped (the results say what the target answered).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from watchkeep.evals.aggregate import aggregate
from watchkeep.evals.dataset_repository import DatasetRepository, DatasetVersionInfo
from watchkeep.evals.model import DatasetItem, ItemResult, Score
from watchkeep.evals.run_repository import RunInfo, RunRepository
from watchkeep.store.engine import make_engine


def items(n: int, *, prefix: str = "q", split: str | None = None, answer: str = "a") -> list[DatasetItem]:
    """``n`` items ``{prefix}1..n`` with input "question k" and expected ``{answer}k``."""
    return [
        DatasetItem(key=f"{prefix}{k}", input=f"question {k}", expected=f"{answer}{k}", split=split)
        for k in range(1, n + 1)
    ]


def store_version(
    database_url: str, project_id: int, name: str, rows: Sequence[DatasetItem], **kwargs: Any
) -> DatasetVersionInfo:
    """A new version of dataset ``name`` holding ``rows``."""
    engine = make_engine(database_url)
    try:
        version, _ = DatasetRepository(engine).create_version(project_id, name, rows, **kwargs)
        return version
    finally:
        engine.dispose()


def result(key: str, passed: bool, *, output: str | None = None, trace_id: str | None = None) -> ItemResult:
    """One original-variant result of item ``key`` with an ``exact_match`` score."""
    return ItemResult(
        item_key=key,
        repeat=0,
        variant="",
        family=None,
        messages=({"role": "user", "content": f"question {key}"},),
        output=output if output is not None else (f"right {key}" if passed else f"wrong {key}"),
        scores={"exact_match": Score(passed=passed, value=1.0 if passed else 0.0)},
        latency_ms=12.0,
        trace_id=trace_id,
    )


def store_run(
    database_url: str,
    project_id: int,
    verdicts: Mapping[str, bool],
    *,
    name: str = "run",
    dataset_version_id: int | None = None,
    seed: int = 0,
    gate: dict[str, Any] | None = None,
    baseline_run_id: int | None = None,
    extra: Sequence[ItemResult] = (),
) -> RunInfo:
    """A completed run whose items pass or fail as ``verdicts`` says (item key → passed)."""
    rows = [result(key, ok) for key, ok in verdicts.items()] + list(extra)
    engine = make_engine(database_url)
    try:
        runs = RunRepository(engine)
        run = runs.create_run(
            project_id,
            name=name,
            dataset_version_id=dataset_version_id,
            target={"kind": "python", "callable": "tests:echo"},
            target_version=f"python:{name}",
            config={"name": name},
            config_hash=f"hash-{name}-{seed}",
            seed=seed,
            cases_total=len(rows),
            baseline_run_id=baseline_run_id,
            created_by="test",
        )
        runs.add_results(project_id, run.id, rows)
        return runs.finish_run(
            project_id, run.id, status="completed", aggregates=aggregate(rows, seed=seed), gate=gate
        )
    finally:
        engine.dispose()
