"""Deleting expired data and a data subject's data, in short batched transactions.

Retention deletes by indexed time columns, ``batch`` rows per transaction and at most
``max_batches`` transactions per call, so ingest (which writes to the same tables) never
waits long and a pass's work is bounded; what is left goes at the next pass. A span goes
with its payload and its search document (the search index keeps payload text); expiring
payloads alone clears the payload row and its search document and keeps the span.

On PostgreSQL a partitioned ``spans`` table (``pg_partitioned_table``) has its old range
partitions dropped whole once every project with rows in one has expired them; the
table is not partitioned today, so this path only runs where an operator partitioned it.

Erasure finds a subject's traces by ``user_id`` (traces and spans) within one project and
deletes every row tied to them; ``subject_rows`` reads the same rows for an export.
The store knows tables only: hashing, auditing and settings live in ``security``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Table, and_, bindparam, delete, exists, or_, select, text, tuple_

from watchkeep.store.engine import is_sqlite
from watchkeep.store.eval_tables import dataset_items, eval_results, eval_runs
from watchkeep.store.sealing import Sealer, open_json, open_text, row_aad
from watchkeep.store.tables import (
    activity,
    alert_events,
    annotation_items,
    annotation_labels,
    comments,
    early_payloads,
    scores,
    span_metadata,
    span_payloads,
    spans,
    traces,
)
from watchkeep.store.trace_attributes import spans_of_traces
from watchkeep.store.trace_lookups import USER, drop_lookups, looked_up_traces, read_lookup_mark

KINDS = ("spans", "payloads", "scores", "eval_items", "alerts")
_BOUND = re.compile(r"FOR VALUES FROM \('?(-?\d+)'?\) TO \('?(-?\d+)'?\)")


@dataclass(frozen=True, slots=True)
class Partition:
    """One range partition of a partitioned table, ``[low, high)`` on its time column."""

    name: str
    low: int
    high: int


class RetentionQueries:
    """Batched deletes of expired rows and of a subject's rows."""

    def __init__(
        self, engine: Engine, *, batch: int = 5000, max_batches: int = 20, sealer: Sealer | None = None
    ) -> None:
        self._engine = engine
        self._sealer = sealer  # opens encrypted payloads for an export
        self._sqlite = is_sqlite(engine.url.drivername)
        self.batch = batch
        self.max_batches = max_batches

    # --- retention ---------------------------------------------------------------------
    def expire(self, project_id: int, kind: str, before_ns: int) -> int:
        """Delete up to ``batch * max_batches`` rows of ``kind`` older than ``before_ns``."""
        step = {
            "spans": self._expire_spans,
            "payloads": self._expire_payloads,
            "scores": self._expire_scores,
            "eval_items": self._expire_eval_results,
            "alerts": self._expire_alerts,
        }[kind]
        total = 0
        for _ in range(self.max_batches):
            removed = step(project_id, before_ns)
            total += removed
            if removed < self.batch:
                break
        if kind == "spans":
            total += self._expire_traces(project_id, before_ns)
        return total

    def _expire_spans(self, project_id: int, before_ns: int) -> int:
        c = spans.c
        old = (
            select(c.id, c.trace_id, c.span_id)
            .where(c.project_id == project_id, c.start_time_unix_nano < before_ns)
            .order_by(c.start_time_unix_nano)
            .limit(self.batch)
        )
        with self._engine.begin() as conn:
            rows = conn.execute(old).all()
            self._drop_span_rows(conn, project_id, rows)
        return len(rows)

    def _expire_payloads(self, project_id: int, before_ns: int) -> int:
        s, p = spans.c, span_payloads.c
        old = (
            select(s.id, s.trace_id, s.span_id)
            .join(span_payloads, p.span_row_id == s.id)
            .where(s.project_id == project_id, s.start_time_unix_nano < before_ns)
            .limit(self.batch)
        )
        e = early_payloads.c  # payloads whose span never came
        waiting = and_(e.project_id == project_id, e.created_at_unix_nano < before_ns)
        with self._engine.begin() as conn:
            rows = conn.execute(old).all()
            ids = [int(r.id) for r in rows]
            self._drop_search_documents(conn, ids)
            self._drop_payloads(conn, ids)
            if len(rows) < self.batch:
                conn.execute(delete(early_payloads).where(waiting))
        return len(rows)

    def _expire_traces(self, project_id: int, before_ns: int) -> int:
        """Expired traces with no span left: a trace row outlives its spans, never the other
        way round, since spans are read through their trace's row (ADR 0032) and the span
        pass may stop at ``max_batches`` before reaching all of a trace's spans."""
        c = traces.c
        expired = and_(c.start_time_unix_nano < before_ns, c.end_time_unix_nano < before_ns)
        chosen = (
            select(c.id)
            .where(c.project_id == project_id, expired, ~exists().where(spans.c.trace_row_id == c.id))
            .limit(self.batch)
        )
        total = 0
        for _ in range(self.max_batches):
            with self._engine.begin() as conn:
                ids = [int(r[0]) for r in conn.execute(chosen)]
                # A trace a span reaches meanwhile keeps its row (below) and gets its lookup
                # rows again: that span is past the lookups' mark.
                drop_lookups(conn, ids)
                # again on the row itself: PostgreSQL re-reads a row a concurrent write changed
                # before deleting it, and a span written to the trace meanwhile moved its end
                total += _count(conn, delete(traces).where(c.id.in_(ids), expired)) if ids else 0
            if len(ids) < self.batch:
                break
        return total

    def _expire_scores(self, project_id: int, before_ns: int) -> int:
        c = scores.c
        old = select(c.id).where(c.project_id == project_id, c.created_at_unix_nano < before_ns)
        return self._one_batch(scores, c.id, old)

    def _expire_eval_results(self, project_id: int, before_ns: int) -> int:
        c = eval_results.c
        runs = select(eval_runs.c.id).where(
            eval_runs.c.project_id == project_id, eval_runs.c.started_at_unix_nano < before_ns
        )
        old = select(c.id).where(
            c.run_id.in_(runs), c.project_id == project_id, c.created_at_unix_nano < before_ns
        )
        return self._one_batch(eval_results, c.id, old)

    def _expire_alerts(self, project_id: int, before_ns: int) -> int:
        c = alert_events.c
        old = select(c.id).where(c.project_id == project_id, c.created_at_unix_nano < before_ns)
        return self._one_batch(alert_events, c.id, old)

    def _one_batch(self, table: Table, id_column: Any, chosen: Any) -> int:
        with self._engine.begin() as conn:
            ids = [int(r[0]) for r in conn.execute(chosen.limit(self.batch))]
            if ids:
                conn.execute(delete(table).where(id_column.in_(ids)))
        return len(ids)

    # --- partitions (PostgreSQL) -------------------------------------------------------
    def partitions(self, table: str) -> list[Partition]:
        """The range partitions of ``table`` with integer bounds; empty when it is not
        partitioned (always on SQLite)."""
        if self._sqlite:
            return []
        query = text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
            "JOIN pg_partitioned_table pt ON pt.partrelid = p.oid "
            "WHERE p.relname = :t AND p.relnamespace = current_schema()::regnamespace"
        )
        found: list[Partition] = []
        with self._engine.connect() as conn:
            for name, bound in conn.execute(query, {"t": table}):
                match = _BOUND.search(bound or "")
                if match:
                    found.append(Partition(name, int(match.group(1)), int(match.group(2))))
        return sorted(found, key=lambda p: p.low)

    def drop_expired_partitions(self, table: str, cutoffs: dict[int, int]) -> list[str]:
        """Drop each partition of ``table`` whose every row belongs to a project in
        ``cutoffs`` (project id: delete before this time) that expired the whole range.
        For ``spans`` the partition's payloads and search documents go first."""
        dropped: list[str] = []
        for part in self.partitions(table):
            expired = [p for p, before in cutoffs.items() if before >= part.high]
            quoted = '"' + part.name.replace('"', '""') + '"'
            with self._engine.begin() as conn:
                keeps = conn.execute(
                    text(f"SELECT 1 FROM {quoted} WHERE NOT (project_id = ANY(:p)) LIMIT 1"), {"p": expired}
                ).first()
                if keeps is not None:
                    continue
                if table == "spans":
                    conn.execute(
                        text(f"DELETE FROM search_documents WHERE span_row_id IN (SELECT id FROM {quoted})")
                    )
                    conn.execute(
                        text(f"DELETE FROM span_payloads p USING {quoted} s WHERE p.span_row_id = s.id")
                    )
                    conn.execute(
                        text(
                            f"DELETE FROM span_metadata p USING {quoted} s WHERE p.project_id = s.project_id "
                            "AND p.trace_id = s.trace_id AND p.span_id = s.span_id"
                        )
                    )
                conn.execute(text(f"DROP TABLE {quoted}"))
            dropped.append(part.name)
        return dropped

    # --- a data subject --------------------------------------------------------------
    def subject_traces(self, project_id: int, user_id: str) -> list[str]:
        """The ids of the project's traces tied to ``user_id`` (on the trace or any span)."""
        t, s = traces.c, spans.c
        with self._engine.connect() as conn:
            picked = looked_up_traces(project_id, USER, user_id, mark=read_lookup_mark(conn))
            found = {
                r[0]
                for r in conn.execute(
                    select(t.trace_id).where(t.project_id + 0 == project_id, t.id.in_(picked))
                )
            }
            found |= {
                r[0]
                for r in conn.execute(
                    select(s.trace_id).where(s.project_id == project_id, s.user_id == user_id).distinct()
                )
            }
        return sorted(found)

    def erase_subject(self, project_id: int, user_id: str, *, traces_per_batch: int = 200) -> dict[str, int]:
        """Delete every row of the project tied to ``user_id``'s traces, a few traces per
        transaction; returns the rows deleted per table."""
        counts: dict[str, int] = {}
        found = self.subject_traces(project_id, user_id)
        for start in range(0, len(found), traces_per_batch):
            chunk = found[start : start + traces_per_batch]
            with self._engine.begin() as conn:
                for name, removed in self._erase_traces(conn, project_id, chunk).items():
                    counts[name] = counts.get(name, 0) + removed
        # Spans may carry the id outside any of those traces' rows (a late span): once more.
        with self._engine.begin() as conn:
            rows = conn.execute(
                select(spans.c.id, spans.c.trace_id, spans.c.span_id).where(
                    spans.c.project_id == project_id, spans.c.user_id == user_id
                )
            ).all()
            counts["spans"] = counts.get("spans", 0) + self._drop_span_rows(conn, project_id, rows)
        return counts

    def _erase_traces(self, conn: Connection, project_id: int, ids: list[str]) -> dict[str, int]:
        s = spans.c
        span_rows = conn.execute(
            select(s.id, s.trace_id, s.span_id).where(spans_of_traces(project_id, ids))
        ).all()
        out = {"spans": self._drop_span_rows(conn, project_id, span_rows)}
        e = early_payloads.c  # payloads of the traces' spans that never came
        conn.execute(delete(early_payloads).where(e.project_id == project_id, e.trace_id.in_(ids)))
        of_traces = and_(traces.c.project_id == project_id, traces.c.trace_id.in_(ids))
        drop_lookups(conn, [int(r[0]) for r in conn.execute(select(traces.c.id).where(of_traces))])
        out["traces"] = _count(conn, delete(traces).where(of_traces))
        out["scores"] = _count(
            conn, delete(scores).where(scores.c.project_id == project_id, scores.c.trace_id.in_(ids))
        )
        on_traces = and_(comments.c.target_kind == "trace", comments.c.target_id.in_(ids))
        out["comments"] = _count(conn, delete(comments).where(comments.c.project_id == project_id, on_traces))
        about = and_(activity.c.target_kind == "trace", activity.c.target_id.in_(ids))
        out["activity"] = _count(conn, delete(activity).where(activity.c.project_id == project_id, about))
        items = select(annotation_items.c.id).where(
            annotation_items.c.project_id == project_id, annotation_items.c.trace_id.in_(ids)
        )
        out["annotations"] = _count(
            conn, delete(annotation_labels).where(annotation_labels.c.item_id.in_(items))
        )
        out["annotation_items"] = _count(
            conn,
            delete(annotation_items).where(
                annotation_items.c.project_id == project_id, annotation_items.c.trace_id.in_(ids)
            ),
        )
        out["eval_results"], out["dataset_items"] = self._erase_dataset_items(conn, project_id, ids)
        return out

    def _erase_dataset_items(self, conn: Connection, project_id: int, ids: list[str]) -> tuple[int, int]:
        """Dataset items taken from the traces, and the eval results the export lists for them
        (``_subject_eval_results``): the same rows, chosen by one query."""
        d, r = dataset_items.c, eval_results.c
        chosen = _subject_eval_results(project_id, ids).with_only_columns(r.id).order_by(None)
        results = _count(conn, delete(eval_results).where(r.id.in_(chosen)))
        removed = _count(conn, delete(dataset_items).where(d.project_id == project_id, d.trace_id.in_(ids)))
        return results, removed

    def subject_rows(self, project_id: int, user_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every row of the project tied to ``user_id`` as (kind, row): spans with their
        payloads, scores, annotations, comments and dataset items, a few traces at a time."""
        found = self.subject_traces(project_id, user_id)
        for start in range(0, len(found), 200):
            chunk = found[start : start + 200]
            with self._engine.connect() as conn:
                yield from self._rows_of(conn, project_id, chunk)

    def _rows_of(
        self, conn: Connection, project_id: int, ids: list[str]
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        s, p = spans.c, span_payloads.c
        joined = spans.outerjoin(span_payloads, p.span_row_id == s.id)
        span_query = (
            select(spans, p.input, p.output)
            .select_from(joined)
            .where(spans_of_traces(project_id, ids))
            .order_by(s.trace_id, s.start_time_unix_nano)
        )
        items = annotation_items.c
        queries: Sequence[tuple[str, Any]] = (
            ("trace", select(traces).where(traces.c.project_id == project_id, traces.c.trace_id.in_(ids))),
            ("span", span_query),
            ("score", select(scores).where(scores.c.project_id == project_id, scores.c.trace_id.in_(ids))),
            (
                "annotation",
                select(annotation_labels, items.trace_id, items.span_id)
                .join(annotation_items, items.id == annotation_labels.c.item_id)
                .where(items.project_id == project_id, items.trace_id.in_(ids)),
            ),
            (
                "comment",
                select(comments).where(
                    comments.c.project_id == project_id,
                    comments.c.target_kind == "trace",
                    comments.c.target_id.in_(ids),
                ),
            ),
            (
                "dataset_item",
                select(dataset_items).where(
                    dataset_items.c.project_id == project_id, dataset_items.c.trace_id.in_(ids)
                ),
            ),
            ("eval_result", _subject_eval_results(project_id, ids)),
        )
        for kind, query in queries:
            for row in conn.execute(query).mappings():
                yield kind, self._opened(kind, project_id, dict(row))

    def _opened(self, kind: str, project_id: int, row: dict[str, Any]) -> dict[str, Any]:
        """The row with its encrypted columns opened (an export hands out plaintext)."""
        if kind == "span":
            for side in ("input", "output"):
                row[side] = open_text(self._sealer, row[side], row_aad("span_payloads", side, project_id))
        elif kind == "dataset_item":
            for side in ("input", "expected"):
                row[side] = open_json(self._sealer, row[side], row_aad("dataset_items", side, project_id))
        elif kind == "eval_result":
            row["input"] = open_json(self._sealer, row["input"], row_aad("eval_results", "input", project_id))
            row["output"] = open_text(
                self._sealer, row["output"], row_aad("eval_results", "output", project_id)
            )
        return row

    # --- shared ------------------------------------------------------------------------
    def _drop_span_rows(self, conn: Connection, project_id: int, rows: Sequence[Any]) -> int:
        if not rows:
            return 0
        ids = [int(r.id) for r in rows]
        self._drop_search_documents(conn, ids)
        keys = [(r.trace_id, r.span_id) for r in rows]
        self._drop_payloads(conn, ids)
        for side in (span_metadata, early_payloads):
            c = side.c
            conn.execute(
                delete(side).where(c.project_id == project_id, tuple_(c.trace_id, c.span_id).in_(keys))
            )
        return _count(conn, delete(spans).where(spans.c.id.in_(ids)))

    def _drop_payloads(self, conn: Connection, span_row_ids: list[int]) -> None:
        if span_row_ids:
            conn.execute(delete(span_payloads).where(span_payloads.c.span_row_id.in_(span_row_ids)))

    def _drop_search_documents(self, conn: Connection, span_ids: list[int]) -> None:
        if not span_ids:
            return
        statement = (
            text("DELETE FROM search_fts WHERE rowid IN :ids")
            if self._sqlite
            else text("DELETE FROM search_documents WHERE span_row_id IN :ids")
        )
        conn.execute(statement.bindparams(bindparam("ids", expanding=True)), {"ids": span_ids})


def _count(conn: Connection, statement: Any) -> int:
    return max(0, conn.execute(statement).rowcount)


def _subject_eval_results(project_id: int, ids: list[str]) -> Any:
    """The eval results of these traces, for export and erasure alike: those of dataset items
    taken from them (their inputs are the subject's) and those whose own call trace is one of
    them."""
    r, d, runs = eval_results.c, dataset_items.c, eval_runs.c
    from_items = (
        exists()
        .where(
            runs.id == r.run_id,
            d.version_id == runs.dataset_version_id,
            d.item_key == r.item_key,
            d.project_id == project_id,
            d.trace_id.in_(ids),
        )
        .correlate(eval_results)
    )
    return (
        select(eval_results)
        .where(r.project_id == project_id, or_(r.trace_id.in_(ids), from_items))
        .order_by(r.id)
    )
