"""Evaluation runs, their per-item results and the output cache in the store, per project.

SKELETON (groundwork): signatures are the contract; the engine helper implements them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from watchkeep.evals.model import ItemResult, TargetReply
from watchkeep.store.trace_queries import Page

RUN_STATUSES = ("running", "completed", "failed", "interrupted")


class RunNotFound(LookupError):
    """No such run in this project."""


@dataclass(frozen=True, slots=True)
class RunInfo:
    """A run's row: what ran against what, how far it got, its aggregates and gate verdict."""

    id: int
    project_id: int
    name: str
    status: str
    dataset_version_id: int | None
    dataset_name: str | None
    dataset_version: int | None
    target: dict[str, Any]
    target_version: str
    config: dict[str, Any]
    config_hash: str
    seed: int
    baseline_run_id: int | None
    cases_total: int
    cases_done: int
    cases_failed: int
    aggregates: dict[str, Any] | None
    gate: dict[str, Any] | None
    error: str | None
    created_by: str | None
    started_at_ns: int
    finished_at_ns: int | None


@dataclass(frozen=True, slots=True)
class StoredResult:
    """A result row with its id (for keyset pages of a run's items)."""

    id: int
    result: ItemResult


class RunRepository:
    """Runs and results: results are inserted once per (run, item, repeat, variant), never updated."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create_run(
        self,
        project_id: int,
        *,
        name: str,
        dataset_version_id: int | None,
        target: dict[str, Any],
        target_version: str,
        config: dict[str, Any],
        config_hash: str,
        seed: int,
        cases_total: int,
        baseline_run_id: int | None = None,
        created_by: str | None = None,
    ) -> RunInfo:
        """A new run in status ``running``."""
        raise NotImplementedError

    def find_resumable(self, project_id: int, config_hash: str) -> RunInfo | None:
        """The newest run with this config hash that did not complete (running or interrupted)."""
        raise NotImplementedError

    def get_run(self, project_id: int, run_id: int) -> RunInfo:
        """Raises ``RunNotFound``."""
        raise NotImplementedError

    def list_runs(
        self,
        project_id: int,
        *,
        limit: int = 50,
        cursor: str | None = None,
        dataset: str | None = None,
        status: str | None = None,
    ) -> Page[RunInfo]:
        """Newest first, keyset-paged."""
        raise NotImplementedError

    def add_results(self, project_id: int, run_id: int, results: Sequence[ItemResult]) -> int:
        """Insert results (a key already stored is skipped) and advance the run's counters, in
        one transaction; returns how many were new."""
        raise NotImplementedError

    def done_keys(self, project_id: int, run_id: int) -> set[tuple[str, int, str]]:
        """The (item, repeat, variant) keys already stored: what a resume skips."""
        raise NotImplementedError

    def results(
        self,
        project_id: int,
        run_id: int,
        *,
        limit: int = 100,
        after_id: int | None = None,
        failed_only: bool = False,
        item_key: str | None = None,
    ) -> list[StoredResult]:
        """A page of a run's results in id order."""
        raise NotImplementedError

    def all_results(self, project_id: int, run_id: int) -> list[ItemResult]:
        """Every result of a run (aggregates, comparisons, reports), streamed in batches."""
        raise NotImplementedError

    def finish_run(
        self,
        project_id: int,
        run_id: int,
        *,
        status: str,
        aggregates: dict[str, Any] | None,
        gate: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> RunInfo:
        """Record the outcome (``status`` one of ``RUN_STATUSES``)."""
        raise NotImplementedError

    def delete_run(self, project_id: int, run_id: int) -> bool:
        """Delete a run and its results; False when there was none."""
        raise NotImplementedError

    def cache_get(self, project_id: int, keys: Sequence[str]) -> dict[str, TargetReply]:
        """Cached replies by key (looked up in batches)."""
        raise NotImplementedError

    def cache_put(self, project_id: int, entries: Mapping[str, TargetReply]) -> None:
        """Store replies (an existing key is kept)."""
        raise NotImplementedError
