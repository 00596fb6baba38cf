"""Deleting a project and everything it owns.

Keys, scores, monitors, alert history, drift references, online evaluators and gateway
routes reference ``projects`` with ON DELETE CASCADE and go with the project row. The
telemetry tables (spans, payloads, traces, resources) and the search index have no foreign key (revision
0003: a per-row check cost a fifth of a PostgreSQL span insert), so they are deleted
here explicitly, in batches: one transaction per batch keeps each lock short and lets
ingest of other projects go on. The project row goes first, so its keys stop working
and nothing new is accepted for it (servers that cached a key may accept a last export
for up to ``WATCHKEEP_KEY_CACHE_SECONDS``; a caller in a server process evicts them at once
with ``KeyVerifier.evict_project``). Spans already queued for it are dropped by the ingest
writer at their commit, and its id is never given to another project (revision 0007).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, Engine, Table, delete, select, tuple_

from watchkeep.store.eval_tables import eval_output_cache
from watchkeep.store.index_marks import rewind_marks
from watchkeep.store.index_tables import trace_lookups
from watchkeep.store.tables import (
    early_payloads,
    projects,
    resources,
    span_metadata,
    span_payloads,
    spans,
    traces,
)
from watchkeep.store.text_search import purge_project

# Each telemetry table with the columns that pick one of its rows within a project.
# Spans go with their payloads (``_delete_spans``).
_TELEMETRY: tuple[tuple[Table, tuple[str, ...]], ...] = (
    (early_payloads, ("trace_id", "span_id")),
    (span_metadata, ("trace_id", "span_id", "key")),
    (trace_lookups, ("trace_row_id",)),  # before the traces: live projects' passes skip it (ADR 0034)
    (traces, ("trace_id",)),
    (resources, ("resource_id",)),
    (eval_output_cache, ("cache_key",)),  # keyed by project, no foreign key
)


@dataclass
class DeletedProject:
    """What a deletion removed: the project's id and the telemetry rows per table."""

    project_id: int
    rows: dict[str, int] = field(default_factory=dict)
    index_rows: int = 0  # full-text search documents


def delete_project(
    engine: Engine, name: str, *, batch: int = 20_000, progress: Callable[[str, int], None] | None = None
) -> DeletedProject | None:
    """Delete project ``name`` with its keys, settings and telemetry; None if there is none."""
    with engine.begin() as conn:
        found = conn.execute(select(projects.c.id).where(projects.c.name == name)).first()
        if found is None:
            return None
        project_id = int(found.id)
        conn.execute(delete(projects).where(projects.c.id == project_id))  # cascades to the rest
    result = DeletedProject(project_id)
    result.index_rows = purge_project(engine, project_id, batch)  # finds rows by span id
    result.rows["spans"], result.rows["span_payloads"] = _delete_spans(engine, project_id, batch, progress)
    for table, key in _TELEMETRY:
        result.rows[table.name] = _delete_in_batches(engine, table, key, project_id, batch, progress)
    rewind_marks(engine)
    return result


def _delete_spans(
    engine: Engine, project_id: int, batch: int, progress: Callable[[str, int], None] | None
) -> tuple[int, int]:
    """The project's spans and their payloads, ``batch`` spans a transaction; the numbers of
    spans and payloads removed. Payloads are found by their span's row id, their key: they
    have no index by project (revision 0025), and none outlives its span."""
    s = spans.c
    chosen = select(s.id).where(s.project_id == project_id).limit(batch)
    removed, payloads = 0, 0
    while True:
        with engine.begin() as conn:
            ids = [int(row.id) for row in conn.execute(chosen)]
            if ids:
                gone = conn.execute(delete(span_payloads).where(span_payloads.c.span_row_id.in_(ids)))
                payloads += max(0, gone.rowcount)
                conn.execute(delete(spans).where(s.id.in_(ids)))
        removed += len(ids)
        if progress is not None and ids:
            progress("spans", removed)
        if len(ids) < batch:
            return removed, payloads


def _delete_in_batches(
    engine: Engine,
    table: Table,
    key: tuple[str, ...],
    project_id: int,
    batch: int,
    progress: Callable[[str, int], None] | None,
) -> int:
    of_project = table.c.project_id == project_id
    columns = [table.c[k] for k in key]
    picked: ColumnElement[bool]
    chosen = select(*columns).where(of_project).limit(batch)
    picked = columns[0].in_(chosen) if len(columns) == 1 else tuple_(*columns).in_(chosen)
    total = 0
    while True:
        with engine.begin() as conn:
            removed = conn.execute(delete(table).where(of_project, picked)).rowcount
        total += max(0, removed)
        if progress is not None and removed:
            progress(table.name, total)
        if removed < batch:
            return total
