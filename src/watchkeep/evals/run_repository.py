"""Evaluation runs, their per-item results and the output cache in the store, per project.

Result rows are written once per (run, item, repeat, variant) with ``ON CONFLICT DO
NOTHING`` on both dialects, so a resumed or retried batch never duplicates nor rewrites
what was computed, and the run's counters advance only by what was new.

With a ``Sealer`` (encryption at rest, issue 16) the target's side of a result is sealed
like span payloads: ``eval_results.input`` (the messages sent) and ``.output`` (the
completion), and the ``output`` inside ``eval_output_cache.reply``; scores, costs and
counters stay plain, so aggregates and gates read them without the key.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Insert,
    Row,
    RowMapping,
    Table,
    and_,
    delete,
    false,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from watchkeep.evals.model import ItemResult, Score, TargetReply
from watchkeep.store.clock import now_ns
from watchkeep.store.eval_tables import (
    dataset_versions,
    datasets,
    eval_output_cache,
    eval_results,
    eval_runs,
)
from watchkeep.store.sealing import Sealer, open_json, open_text, row_aad, seal_json, seal_text
from watchkeep.store.trace_queries import Page, decode_cursor, encode_cursor

RUN_STATUSES = ("running", "completed", "failed", "interrupted")
MAX_PAGE = 1000  # rows one page of runs or results may hold
STREAM_BATCH = 5000  # rows a query of ``all_results`` reads
CACHE_BATCH = 500  # keys a query of ``cache_get`` looks up
INSERT_BATCH = 1000  # rows one INSERT statement carries
RESULT_KEY = ("run_id", "item_key", "repeat", "variant")


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


def score_to_dict(score: Score) -> dict[str, Any]:
    """A score as stored in the ``scores`` JSON column."""
    return {
        "passed": score.passed,
        "value": score.value,
        "comment": score.comment,
        "details": dict(score.details) if score.details is not None else None,
        "error": score.error,
    }


def score_from_dict(data: Mapping[str, Any]) -> Score:
    """The inverse of ``score_to_dict``."""
    value = data.get("value")
    return Score(
        passed=data.get("passed"),
        value=float(value) if value is not None else None,
        comment=data.get("comment"),
        details=data.get("details"),
        error=data.get("error"),
    )


def to_row(
    project_id: int,
    run_id: int,
    result: ItemResult,
    created: int | None = None,
    sealer: Sealer | None = None,
) -> dict[str, Any]:
    """The ``eval_results`` row of ``result`` (``created``: its creation time, default now;
    ``sealer``: input and output encrypted)."""
    messages = [dict(m) for m in result.messages] if result.messages is not None else None
    return {
        "run_id": run_id,
        "project_id": project_id,
        "item_key": result.item_key,
        "repeat": result.repeat,
        "variant": result.variant,
        "family": result.family,
        "input": seal_json(sealer, messages, row_aad("eval_results", "input", project_id)),
        "output": seal_text(sealer, result.output, row_aad("eval_results", "output", project_id)),
        "error": result.error,
        "error_kind": result.error_kind,
        "latency_ms": result.latency_ms,
        "cost_usd": result.cost_usd,
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "scores": {name: score_to_dict(s) for name, s in result.scores.items()},
        "passed": result.passed,
        "cached": result.cached,
        "trace_id": result.trace_id,
        "created_at_unix_nano": now_ns() if created is None else created,
    }


def from_row(row: Mapping[str, Any] | RowMapping, sealer: Sealer | None = None) -> ItemResult:
    """The result an ``eval_results`` row holds (the inverse of ``to_row``; a sealed value
    without ``sealer`` raises ``ValueError``)."""
    project_id = row["project_id"]
    messages = open_json(sealer, row["input"], row_aad("eval_results", "input", project_id))
    return ItemResult(
        item_key=row["item_key"],
        repeat=row["repeat"],
        variant=row["variant"],
        family=row["family"],
        messages=tuple(dict(m) for m in messages) if messages is not None else None,
        output=open_text(sealer, row["output"], row_aad("eval_results", "output", project_id)),
        scores={name: score_from_dict(s) for name, s in (row["scores"] or {}).items()},
        error=row["error"],
        error_kind=row["error_kind"],
        latency_ms=row["latency_ms"],
        cost_usd=row["cost_usd"],
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        cached=bool(row["cached"]),
        trace_id=row["trace_id"],
    )


REPLY_FIELDS = ("output", "latency_ms", "input_tokens", "output_tokens", "cost_usd", "model")


def reply_to_dict(reply: TargetReply, project_id: int, sealer: Sealer | None = None) -> dict[str, Any]:
    """What the cache keeps of a reply: the answer (sealed with ``sealer``) and its cost,
    not the call's trace."""
    data = {f: getattr(reply, f) for f in REPLY_FIELDS}
    data["output"] = seal_text(sealer, data["output"], row_aad("eval_output_cache", "reply", project_id))
    return data


def reply_from_dict(data: Mapping[str, Any], project_id: int, sealer: Sealer | None = None) -> TargetReply:
    """A cached reply (``cached=True``: no call was made for it)."""
    fields = {f: data.get(f) for f in REPLY_FIELDS}
    fields["output"] = open_text(sealer, fields["output"], row_aad("eval_output_cache", "reply", project_id))
    return TargetReply(**fields, cached=True)


def _insert_ignoring(conn: Connection, table: Table, keys: Sequence[str]) -> Insert:
    """An INSERT that skips rows whose ``keys`` are already stored, on either dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=list(keys))
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(keys))
    return insert(table)  # pragma: no cover - only the two dialects are supported


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


_RUN_SELECT = select(
    eval_runs, datasets.c.name.label("dataset_name"), dataset_versions.c.version.label("dv")
).select_from(
    eval_runs.outerjoin(dataset_versions, dataset_versions.c.id == eval_runs.c.dataset_version_id).outerjoin(
        datasets, datasets.c.id == dataset_versions.c.dataset_id
    )
)


def _run_info(row: Row[Any]) -> RunInfo:
    m = row._mapping
    return RunInfo(
        id=m["id"],
        project_id=m["project_id"],
        name=m["name"],
        status=m["status"],
        dataset_version_id=m["dataset_version_id"],
        dataset_name=m["dataset_name"],
        dataset_version=m["dv"],
        target=m["target"] or {},
        target_version=m["target_version"],
        config=m["config"] or {},
        config_hash=m["config_hash"],
        seed=m["seed"],
        baseline_run_id=m["baseline_run_id"],
        cases_total=m["cases_total"],
        cases_done=m["cases_done"],
        cases_failed=m["cases_failed"],
        aggregates=m["aggregates"],
        gate=m["gate"],
        error=m["error"],
        created_by=m["created_by"],
        started_at_ns=m["started_at_unix_nano"],
        finished_at_ns=m["finished_at_unix_nano"],
    )


def _bounded(limit: int) -> int:
    return max(1, min(int(limit), MAX_PAGE))


class RunRepository:
    """Runs and results: results are inserted once per (run, item, repeat, variant), never updated."""

    def __init__(self, engine: Engine, *, sealer: Sealer | None = None) -> None:
        self._engine = engine
        self._sealer = sealer  # encryption at rest of inputs and outputs (None: plaintext)

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
        with self._engine.begin() as conn:
            run_id = conn.execute(
                insert(eval_runs).values(
                    project_id=project_id,
                    name=name,
                    status="running",
                    dataset_version_id=dataset_version_id,
                    target=target,
                    target_version=target_version,
                    config=config,
                    config_hash=config_hash,
                    seed=seed,
                    baseline_run_id=baseline_run_id,
                    cases_total=cases_total,
                    cases_done=0,
                    cases_failed=0,
                    created_by=created_by,
                    started_at_unix_nano=now_ns(),
                )
            ).inserted_primary_key
            assert run_id is not None
            return self._get(conn, project_id, int(run_id[0]))

    def find_resumable(self, project_id: int, config_hash: str) -> RunInfo | None:
        """The newest run with this config hash that did not complete (running or interrupted)."""
        query = (
            _RUN_SELECT.where(
                eval_runs.c.project_id == project_id,
                eval_runs.c.config_hash == config_hash,
                eval_runs.c.status.in_(("running", "interrupted")),
            )
            .order_by(eval_runs.c.id.desc())
            .limit(1)
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return _run_info(row) if row is not None else None

    def get_run(self, project_id: int, run_id: int) -> RunInfo:
        """Raises ``RunNotFound``."""
        with self._engine.connect() as conn:
            return self._get(conn, project_id, run_id)

    def _get(self, conn: Connection, project_id: int, run_id: int) -> RunInfo:
        row = conn.execute(
            _RUN_SELECT.where(eval_runs.c.project_id == project_id, eval_runs.c.id == run_id)
        ).first()
        if row is None:
            raise RunNotFound(f"no run {run_id} in this project")
        return _run_info(row)

    def list_runs(
        self,
        project_id: int,
        *,
        limit: int = 50,
        cursor: str | None = None,
        dataset: str | None = None,
        status: str | None = None,
    ) -> Page[RunInfo]:
        """Newest first, keyset-paged (``InvalidCursor`` for a cursor not made here)."""
        limit = _bounded(limit)
        query = _RUN_SELECT.where(eval_runs.c.project_id == project_id)
        if cursor is not None:
            (before,) = decode_cursor(cursor, (int,))
            query = query.where(eval_runs.c.id < before)
        if dataset is not None:
            query = query.where(datasets.c.name == dataset)
        if status is not None:
            query = query.where(eval_runs.c.status == status)
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(eval_runs.c.id.desc()).limit(limit + 1)).all()
        items = [_run_info(r) for r in rows[:limit]]
        more = len(rows) > limit
        return Page(items, encode_cursor(items[-1].id) if more and items else None)

    def add_results(self, project_id: int, run_id: int, results: Sequence[ItemResult]) -> int:
        """Insert results (a key already stored is skipped) and advance the run's counters, in
        one transaction; returns how many were new."""
        if not results:
            return 0
        new = failed = 0
        with self._engine.begin() as conn:
            self._get(conn, project_id, run_id)  # the run must be this project's
            stamp = 0
            for chunk in _chunks(results, INSERT_BATCH):
                stamp = max(now_ns(), stamp + 1)  # one per chunk, never repeated within the call
                rows = [to_row(project_id, run_id, r, stamp, self._sealer) for r in chunk]
                inserted = conn.execute(_insert_ignoring(conn, eval_results, RESULT_KEY), rows).rowcount
                if inserted == len(rows):  # the usual case: nothing of this chunk was stored before
                    new += inserted
                    failed += sum(1 for r in chunk if r.error is not None)
                else:  # a resumed chunk: count what this transaction's rows hold
                    new_rows, new_failed = self._counted(conn, run_id, stamp)
                    new += new_rows
                    failed += new_failed
            if new:
                conn.execute(
                    update(eval_runs)
                    .where(eval_runs.c.project_id == project_id, eval_runs.c.id == run_id)
                    .values(
                        cases_done=eval_runs.c.cases_done + new,
                        cases_failed=eval_runs.c.cases_failed + failed,
                    )
                )
        return new

    @staticmethod
    def _counted(conn: Connection, run_id: int, stamp: int) -> tuple[int, int]:
        """Rows (and failed rows) of ``run_id`` written with ``stamp``, the creation time every
        row of one ``add_results`` call shares."""
        row = conn.execute(
            select(func.count(), func.count(eval_results.c.error)).where(
                eval_results.c.run_id == run_id, eval_results.c.created_at_unix_nano == stamp
            )
        ).one()
        return int(row[0]), int(row[1])

    def done_keys(self, project_id: int, run_id: int) -> set[tuple[str, int, str]]:
        """The (item, repeat, variant) keys already stored: what a resume skips."""
        query = select(eval_results.c.item_key, eval_results.c.repeat, eval_results.c.variant).where(
            eval_results.c.project_id == project_id, eval_results.c.run_id == run_id
        )
        with self._engine.connect() as conn:
            return {(r.item_key, r.repeat, r.variant) for r in conn.execute(query)}

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
        """A page of a run's results in id order (failed: an error or a failing evaluator)."""
        query = select(eval_results).where(
            eval_results.c.project_id == project_id, eval_results.c.run_id == run_id
        )
        if after_id is not None:
            query = query.where(eval_results.c.id > after_id)
        if failed_only:
            query = query.where(or_(eval_results.c.error.is_not(None), eval_results.c.passed == false()))
        if item_key is not None:
            query = query.where(eval_results.c.item_key == item_key)
        query = query.order_by(eval_results.c.id).limit(_bounded(limit))
        with self._engine.connect() as conn:
            return [StoredResult(r.id, from_row(r._mapping, self._sealer)) for r in conn.execute(query)]

    def all_results(self, project_id: int, run_id: int) -> list[ItemResult]:
        """Every result of a run (aggregates, comparisons, reports), streamed in batches."""
        out: list[ItemResult] = []
        after = 0
        with self._engine.connect() as conn:
            while True:
                rows = conn.execute(
                    select(eval_results)
                    .where(
                        and_(
                            eval_results.c.project_id == project_id,
                            eval_results.c.run_id == run_id,
                            eval_results.c.id > after,
                        )
                    )
                    .order_by(eval_results.c.id)
                    .limit(STREAM_BATCH)
                ).all()
                out.extend(from_row(r._mapping, self._sealer) for r in rows)
                if len(rows) < STREAM_BATCH:
                    return out
                after = rows[-1].id

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
        if status not in RUN_STATUSES:
            raise ValueError(f"status must be one of {', '.join(RUN_STATUSES)}")
        with self._engine.begin() as conn:
            self._get(conn, project_id, run_id)
            conn.execute(
                update(eval_runs)
                .where(eval_runs.c.project_id == project_id, eval_runs.c.id == run_id)
                .values(
                    status=status,
                    aggregates=aggregates,
                    gate=gate,
                    error=error,
                    finished_at_unix_nano=None if status == "running" else now_ns(),
                )
            )
            return self._get(conn, project_id, run_id)

    def delete_run(self, project_id: int, run_id: int) -> bool:
        """Delete a run and its results; False when there was none."""
        with self._engine.begin() as conn:
            conn.execute(
                delete(eval_results).where(
                    eval_results.c.project_id == project_id, eval_results.c.run_id == run_id
                )
            )
            gone = conn.execute(
                delete(eval_runs).where(eval_runs.c.project_id == project_id, eval_runs.c.id == run_id)
            ).rowcount
        return bool(gone)

    def cache_get(self, project_id: int, keys: Sequence[str]) -> dict[str, TargetReply]:
        """Cached replies by key (looked up in batches)."""
        found: dict[str, TargetReply] = {}
        unique = list(dict.fromkeys(keys))
        with self._engine.connect() as conn:
            for chunk in _chunks(unique, CACHE_BATCH):
                rows = conn.execute(
                    select(eval_output_cache.c.cache_key, eval_output_cache.c.reply).where(
                        eval_output_cache.c.project_id == project_id,
                        eval_output_cache.c.cache_key.in_(list(chunk)),
                    )
                )
                found.update((r.cache_key, reply_from_dict(r.reply, project_id, self._sealer)) for r in rows)
        return found

    def cache_put(self, project_id: int, entries: Mapping[str, TargetReply]) -> None:
        """Store replies (an existing key is kept)."""
        if not entries:
            return
        now = now_ns()
        rows = [
            {
                "project_id": project_id,
                "cache_key": key,
                "reply": reply_to_dict(reply, project_id, self._sealer),
                "created_at_unix_nano": now,
            }
            for key, reply in entries.items()
        ]
        with self._engine.begin() as conn:
            stmt = _insert_ignoring(conn, eval_output_cache, ("project_id", "cache_key"))
            for chunk in _chunks(rows, INSERT_BATCH):
                conn.execute(stmt, list(chunk))
