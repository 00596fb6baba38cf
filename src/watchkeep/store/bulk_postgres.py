"""PostgreSQL bulk writes: COPY into temporary staging tables, then one INSERT ... SELECT.

COPY is PostgreSQL's fast path (measured: 18 µs a span against 36 µs for pipelined
executemany and over 200 µs for multi-row VALUES, whose thousands of parameters are
costly to plan). COPY cannot skip duplicates, so spans and payloads are first copied
straight into their tables inside a savepoint (replays are rare); only when that hits
a duplicate do they go the slower way, through per-session temporary tables (emptied
at commit) and ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``. Trace rows always go
through staging, since they are upserts, and go first: each span is stored with its
trace's row id, which the upsert returns (ADR 0032).

Every COPY uses the binary format: no text to escape on the way out (most of a span's
bytes are its messages) and values already typed. Measured with ``benchmarks/writer.py
--postgres`` (100k Phoenix-shaped spans in groups of two exports, two runs each, issue 17):
the writer thread's CPU fell from 9.6-10.0 to 6.9-7.6 µs a span, PostgreSQL's stayed at
about 24; the writer is the serial part of ingest on PostgreSQL.

Span and trace row ids are drawn from their sequences before the COPY (one statement for
the whole group, which also asks whether any early payload waits), so the payloads of the
spans a write inserts know their span's row id without reading them back through the
spans' unique key: that join cost about 7 µs a span of the database's time
(pg_stat_statements, issue 17). Only payloads whose span was stored by an earlier write
are still looked up. The ids drawn for spans that were stored already stay unused; the
write records them (``void_ids``), so the passes behind a mark do not wait at them.

A trace row that the upsert inserted keeps the id drawn for it; one that was stored
already keeps its own. When every trace of a group is new, no stored span or payload can
share a key with the group's (spans are keyed by their trace's row id, payloads by their
span's), so those COPYs need no savepoint: a savepoint and its release are two more
round trips, each a wake-up of a backend that then waits for a core. Staging tables are
created once a connection, not once a commit. Metadata rows, few and keyed by text,
go in through ``unnest`` with ``ON CONFLICT DO NOTHING``: one statement, never a savepoint.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

from psycopg import postgres
from psycopg.adapt import Dumper
from psycopg.errors import UniqueViolation
from psycopg.pq import Format
from sqlalchemy.dialects import postgresql

from watchkeep.store import tables, void_ids
from watchkeep.store.clock import now_ns
from watchkeep.store.rows import (
    EARLY_PAYLOAD_FILL,
    METADATA_COLUMNS,
    PAYLOAD_COLUMNS,
    PAYLOAD_FILL,
    RESOURCE_COLUMNS,
    STORED_PAYLOAD_COLUMNS,
    STORED_SPAN_COLUMNS,
    TRACE_COLUMNS,
    NewSpans,
    SpanKey,
    place_payloads,
    trace_upsert_assignments,
    with_trace_row_ids,
)


class _JsonTextDumper(Dumper):
    """A JSON document that ingest already serialised, in ``jsonb``'s binary COPY form (a
    version byte, then the text): psycopg's own jsonb dumper would serialise the string again."""

    format = Format.BINARY
    oid = postgres.types["jsonb"].oid

    def dump(self, obj: Any) -> bytes:
        return b"\x01" + (obj.encode() if isinstance(obj, str) else bytes(obj))


_COPY_TYPES = {"BIGINT": "int8", "SMALLINT": "int2", "FLOAT": "float8", "BOOLEAN": "bool", "JSONB": "jsonb"}


def copy_types(table: str, columns: Sequence[str]) -> list[str]:
    """The psycopg type names ``Copy.set_types`` needs for a binary COPY of ``columns``."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    out = []
    for column in columns:
        name = tables.metadata.tables[table].c[column].type.compile(dialect=dialect).split("(")[0]
        out.append(_COPY_TYPES.get(name, "text"))  # VARCHAR and TEXT: the same binary form
    return out


class StagedTable:
    """COPY statements for one table and its temporary staging twin, in COPY's binary
    format: no escaping of text to write or to parse (payload text is most of a span)."""

    def __init__(
        self, table: str, columns: Sequence[str], conflict: str, order: str = "project_id, trace_id"
    ) -> None:
        cols = ", ".join(columns)
        self.types = copy_types(table, columns)
        self.direct = f"COPY {table} ({cols}) FROM STDIN (FORMAT BINARY)"
        self.create_stage = (
            f"CREATE TEMP TABLE IF NOT EXISTS {table}_stage ON COMMIT DELETE ROWS "
            f"AS SELECT {cols} FROM {table} WITH NO DATA"
        )
        self.to_stage = f"COPY {table}_stage ({cols}) FROM STDIN (FORMAT BINARY)"
        self.from_stage = (
            f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {table}_stage ORDER BY {order} {conflict}"
        )


def _copy(cursor: Any, statement: str, types: list[str], rows: Sequence[tuple[Any, ...]]) -> None:
    with cursor.copy(statement) as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)


class _Stages:
    """The staging tables each connection has created (temporary tables live as long as
    their session; a writer drops its connection after any failed write, so a table created
    in a transaction that rolled back is never taken for present)."""

    def __init__(self) -> None:
        self._made: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()

    def ensure(self, cursor: Any, table: StagedTable) -> None:
        made = self._made.setdefault(cursor.connection, set())
        if table.create_stage not in made:
            cursor.execute(table.create_stage)
            made.add(table.create_stage)

    def staged(
        self, cursor: Any, table: StagedTable, rows: Sequence[tuple[Any, ...]], returning: str = ""
    ) -> int:
        """COPY ``rows`` into ``table``'s stage, then insert them from there."""
        self.ensure(cursor, table)
        _copy(cursor, table.to_stage, table.types, rows)
        cursor.execute(table.from_stage + returning)
        return max(0, int(cursor.rowcount))

    def insert_new(
        self, cursor: Any, table: StagedTable, rows: Sequence[tuple[Any, ...]], returning: str = ""
    ) -> tuple[int, list[tuple[Any, ...]] | None]:
        """COPY straight in; on a duplicate, undo and take the staged path.

        Returns the number of new rows and, from the staged path, the ``returning`` columns
        of the rows it inserted (None when the COPY took every row).
        """
        if not rows:
            return 0, None
        cursor.execute("SAVEPOINT watchkeep_copy")
        try:
            _copy(cursor, table.direct, table.types, rows)
        except UniqueViolation:
            cursor.execute("ROLLBACK TO SAVEPOINT watchkeep_copy")
            inserted = self.staged(cursor, table, rows, returning)
            return inserted, cursor.fetchall() if returning else []
        cursor.execute("RELEASE SAVEPOINT watchkeep_copy")
        return len(rows), None


class PostgresBulk:
    """The COPY-based statements of a span write."""

    def __init__(self) -> None:
        ignore = "ON CONFLICT (trace_row_id, span_id) DO NOTHING"
        self._spans = StagedTable("spans", ("id", *STORED_SPAN_COLUMNS), ignore, "trace_row_id, span_id")
        self._payloads = StagedTable("span_payloads", STORED_PAYLOAD_COLUMNS, PAYLOAD_FILL, "span_row_id")
        self._early = StagedTable("early_payloads", PAYLOAD_COLUMNS, EARLY_PAYLOAD_FILL)
        self._traces = StagedTable(
            "traces", ("id", *TRACE_COLUMNS), trace_upsert_assignments("LEAST", "GREATEST")
        )
        self._stages = _Stages()
        # Few rows (one per distinct resource in the group): a plain statement is cheapest.
        self._resources = (
            f"INSERT INTO resources ({', '.join(RESOURCE_COLUMNS)}) VALUES (%s, %s, %s::jsonb, %s) "
            "ON CONFLICT (project_id, resource_id) DO NOTHING"
        )
        metadata_types = copy_types("span_metadata", METADATA_COLUMNS)
        self._metadata = (
            f"INSERT INTO span_metadata ({', '.join(METADATA_COLUMNS)}) SELECT * FROM unnest("
            + ", ".join(f"%s::{t}[]" for t in metadata_types)
            + ") ON CONFLICT DO NOTHING"
        )
        self._reserve_ids: str | None = None  # the statement drawing row ids, built on first use

    def _reserve(self, cursor: Any, traces: int, spans: int) -> tuple[list[int], list[int], bool]:
        """``traces`` new trace row ids and ``spans`` new span row ids from their tables' own
        sequences (as their defaults would draw them), and whether any early payload waits."""
        if self._reserve_ids is None:
            cursor.execute(
                "SELECT pg_get_serial_sequence('traces', 'id'), pg_get_serial_sequence('spans', 'id')"
            )
            trace_sequence, span_sequence = cursor.fetchone()
            self._reserve_ids = (
                f"SELECT ARRAY(SELECT nextval('{trace_sequence}'::regclass) FROM generate_series(1, %s)), "
                f"ARRAY(SELECT nextval('{span_sequence}'::regclass) FROM generate_series(1, %s)), "
                "EXISTS (SELECT 1 FROM early_payloads)"
            )
        cursor.execute(self._reserve_ids, (traces, spans))
        trace_ids, span_ids, early = cursor.fetchone()
        return trace_ids, span_ids, bool(early)

    def live_projects(self, cursor: Any, project_ids: Sequence[int]) -> set[int]:
        """Those of ``project_ids`` that exist, share-locked so that a deletion waits for
        this commit (and then deletes these rows with the rest of the project's)."""
        cursor.execute(
            "SELECT id FROM projects WHERE id = ANY(%s) ORDER BY id FOR KEY SHARE", (list(project_ids),)
        )
        return {int(row[0]) for row in cursor.fetchall()}

    def write(
        self,
        cursor: Any,
        spans: Sequence[tuple[Any, ...]],
        payloads: Sequence[tuple[Any, ...]],
        traces: Sequence[tuple[Any, ...]],
        resources: Sequence[tuple[Any, ...]],
        metadata: Sequence[tuple[Any, ...]] = (),
    ) -> NewSpans:
        """Insert new spans, payloads, resources and metadata, upsert traces; the new spans (see
        ``BulkStatements``)."""
        cursor.adapters.register_dumper(None, _JsonTextDumper)  # by oid alone: COPY's jsonb columns
        if resources:
            cursor.executemany(self._resources, sorted(resources))
        trace_ids, span_ids, early_waits = self._reserve(cursor, len(traces), len(spans))
        # Traces first: each span row carries its trace's row id (ADR 0032).
        trace_row_ids: dict[tuple[int, str], int] = {}
        if traces:  # none in an export of log records alone
            staged = [(row_id, *trace) for row_id, trace in zip(trace_ids, traces, strict=True)]
            self._stages.staged(cursor, self._traces, staged, " RETURNING id, project_id, trace_id")
            trace_row_ids = {(int(p), str(t)): int(i) for i, p, t in cursor.fetchall()}
        drawn = set(trace_ids)
        new_traces = all(i in drawn for i in trace_row_ids.values())  # else some trace was stored
        rows = [
            (row_id, *span)
            for row_id, span in zip(span_ids, with_trace_row_ids(spans, trace_row_ids), strict=True)
        ]
        inserted: list[tuple[Any, ...]] | None = None  # None: every span (if any) was new
        if new_traces and len({row[1:4] for row in rows}) == len(rows):
            if rows:  # no stored span shares a key with these
                _copy(cursor, self._spans.direct, self._spans.types, rows)
        else:
            _, inserted = self._stages.insert_new(
                cursor, self._spans, rows, " RETURNING id, project_id, trace_id, span_id"
            )
        if inserted is None:  # every span was new
            new_ids = {(row[1], row[2], row[3]): row[0] for row in rows}
            fresh = None
        else:
            new_ids = {(int(p), str(t), str(s)): int(i) for i, p, t, s in inserted}
            fresh = set(new_ids)
            # The ids drawn for spans stored already: passes behind a mark move over them.
            void_ids.record(cursor, void_ids.unused_ranges(span_ids, set(new_ids.values())), now_ns())
        if payloads or (spans and early_waits):  # a new span may take payloads that came before it
            self._write_payloads(cursor, payloads, new_ids, early_waits)
        if metadata:
            cursor.execute(self._metadata, [list(column) for column in zip(*metadata, strict=True)])
        return fresh

    def _write_payloads(
        self, cursor: Any, payloads: Sequence[tuple[Any, ...]], new_ids: dict[SpanKey, int], early_waits: bool
    ) -> None:
        """Payloads keyed by their span's row id (``new_ids``: the spans this write stored;
        others are looked up); those of spans not stored yet wait in ``early_payloads``,
        and the spans this write stored take theirs from there (if ``early_waits``)."""
        ids = dict(new_ids)
        older = [key for key in (r[:3] for r in payloads) if key not in ids]
        if older:
            ids.update(_span_ids(cursor, older))
        early = _take_early(cursor, list(new_ids)) if new_ids and early_waits else []
        stored, waiting = place_payloads(payloads, ids, early)
        mine = set(new_ids.values())
        if all(row[0] in mine for row in stored) and len({row[0] for row in stored}) == len(stored):
            if stored:  # only spans this write inserted: no payload row of theirs exists
                _copy(cursor, self._payloads.direct, self._payloads.types, stored)
        else:
            self._stages.insert_new(cursor, self._payloads, stored)
        self._stages.insert_new(cursor, self._early, waiting)


def _keys_table(keys: Sequence[tuple[Any, ...]]) -> tuple[str, tuple[list[Any], ...]]:
    """An ``unnest`` of (project, trace, span) keys to join on, and its parameters."""
    columns = ([int(k[0]) for k in keys], [k[1] for k in keys], [k[2] for k in keys])
    return "unnest(%s::bigint[], %s::text[], %s::text[]) AS k(p, t, s)", columns


def _span_ids(cursor: Any, keys: Sequence[tuple[Any, ...]]) -> dict[SpanKey, int]:
    """The row ids of the stored spans among ``keys`` (a probe of the traces' key and one of
    the spans' key each)."""
    table, params = _keys_table(keys)
    cursor.execute(
        f"SELECT s.id, t.project_id, t.trace_id, s.span_id FROM {table} "
        "JOIN traces t ON t.project_id = k.p AND t.trace_id = k.t "
        "JOIN spans s ON s.trace_row_id = t.id AND s.span_id = k.s",
        params,
    )
    return {(int(p), str(t), str(s)): int(i) for i, p, t, s in cursor.fetchall()}


def _take_early(cursor: Any, keys: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Remove and return (``PAYLOAD_COLUMNS``) the early payloads of the spans ``keys``."""
    table, params = _keys_table(keys)
    cursor.execute(
        f"DELETE FROM early_payloads e USING {table} "
        "WHERE e.project_id = k.p AND e.trace_id = k.t AND e.span_id = k.s "
        f"RETURNING {', '.join('e.' + c for c in PAYLOAD_COLUMNS)}",
        params,
    )
    return [tuple(r) for r in cursor.fetchall()]
