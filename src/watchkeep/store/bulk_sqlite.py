"""SQLite bulk writes: multi-row ``INSERT OR IGNORE ... VALUES (...), (...)``.

One statement per few hundred rows instead of one per row: far fewer trips through
the driver, and one release of the GIL for a whole chunk rather than one per row,
which keeps the writer thread from convoying behind the HTTP loop. Rows are cut into
full chunks and then powers of two, so only a handful of statement shapes exist: with
one shape per row count, a gateway's varying batch sizes filled the driver's statement
cache with large prepared statements and resident memory grew by tens of MiB. Trace rows
are upserted first, their row ids read back (``RETURNING``) and stored on their spans
(ADR 0032).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import chain
from typing import Any

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

MAX_VARIABLES = 30_000  # SQLite's limit is 32,766 since 3.32


class MultiRowStatement:
    """``head VALUES (?, ...), (?, ...) tail`` for any number of rows, in chunks."""

    def __init__(self, head: str, tail: str, ncols: int) -> None:
        self._head = head
        self._tail = tail
        self._row = "(" + ", ".join("?" * ncols) + ")"
        self.chunk = max(1, min(500, MAX_VARIABLES // ncols))
        self._sql: dict[int, str] = {}

    def sql(self, rows: int) -> str:
        """The statement text for ``rows`` rows (cached per size)."""
        text = self._sql.get(rows)
        if text is None:
            text = f"{self._head} VALUES {', '.join([self._row] * rows)} {self._tail}"
            self._sql[rows] = text
        return text

    def execute(self, cursor: Any, rows: Sequence[tuple[Any, ...]]) -> int:
        """Insert ``rows``; the number of rows changed."""
        changed = 0
        start = 0
        for size in piece_sizes(len(rows), self.chunk):
            part = rows[start : start + size]
            start += size
            cursor.execute(self.sql(size), tuple(chain.from_iterable(part)))
            changed += max(0, cursor.rowcount)
        return changed

    def fetch(self, cursor: Any, rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Insert ``rows``; what the statement's RETURNING tail gives for them."""
        out: list[tuple[Any, ...]] = []
        start = 0
        for size in piece_sizes(len(rows), self.chunk):
            cursor.execute(self.sql(size), tuple(chain.from_iterable(rows[start : start + size])))
            start += size
            out.extend(cursor.fetchall())
        return out


def piece_sizes(total: int, chunk: int) -> list[int]:
    """Sizes summing to ``total``: full chunks, then descending powers of two."""
    sizes = [chunk] * (total // chunk)
    rest = total % chunk
    power = 1 << max(0, rest.bit_length() - 1)
    while rest:
        if rest >= power:
            sizes.append(power)
            rest -= power
        power >>= 1
    return sizes


class SqliteBulk:
    """The three statements of a span write."""

    def __init__(self) -> None:
        self._spans = MultiRowStatement(
            f"INSERT OR IGNORE INTO spans ({', '.join(STORED_SPAN_COLUMNS)})", "", len(STORED_SPAN_COLUMNS)
        )
        self._payloads = MultiRowStatement(
            f"INSERT INTO span_payloads ({', '.join(STORED_PAYLOAD_COLUMNS)})",
            PAYLOAD_FILL,
            len(STORED_PAYLOAD_COLUMNS),
        )
        self._early = MultiRowStatement(
            f"INSERT INTO early_payloads ({', '.join(PAYLOAD_COLUMNS)})",
            EARLY_PAYLOAD_FILL,
            len(PAYLOAD_COLUMNS),
        )
        self._resources = MultiRowStatement(
            f"INSERT OR IGNORE INTO resources ({', '.join(RESOURCE_COLUMNS)})", "", len(RESOURCE_COLUMNS)
        )
        self._metadata = MultiRowStatement(
            f"INSERT OR IGNORE INTO span_metadata ({', '.join(METADATA_COLUMNS)})", "", len(METADATA_COLUMNS)
        )
        self._traces = MultiRowStatement(
            f"INSERT INTO traces ({', '.join(TRACE_COLUMNS)})",
            trace_upsert_assignments("min", "max") + " RETURNING id, project_id, trace_id",
            len(TRACE_COLUMNS),
        )

    def live_projects(self, cursor: Any, project_ids: Sequence[int]) -> set[int]:
        """Those of ``project_ids`` that exist. The write transaction starts here, holding
        the database's write lock, so no deletion can commit between this read and the
        inserts (a deferred transaction would read an older snapshot)."""
        if not cursor.connection.in_transaction:
            cursor.execute("BEGIN IMMEDIATE")
        cursor.execute(
            "SELECT id FROM projects WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(project_ids)),),
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
        self._resources.execute(cursor, resources)
        # Traces first: each span row carries its trace's row id (ADR 0032).
        trace_row_ids = {(p, t): i for i, p, t in self._traces.fetch(cursor, traces)}
        rows = with_trace_row_ids(spans, trace_row_ids)
        before = _largest_span_id(cursor)
        inserted = self._spans.execute(cursor, rows)
        new_ids = _inserted_ids(cursor, rows, inserted, before)
        fresh = None if inserted == len(spans) else set(new_ids)
        if payloads or new_ids:  # a new span may take payloads that came before it
            self._write_payloads(cursor, payloads, new_ids)
        if metadata:
            self._metadata.execute(cursor, metadata)
        return fresh

    def _write_payloads(
        self, cursor: Any, payloads: Sequence[tuple[Any, ...]], new_ids: dict[SpanKey, int]
    ) -> None:
        """Payloads keyed by their span's row id; those of spans not stored yet wait in
        ``early_payloads``, and the spans this write stored take theirs from there."""
        ids = new_ids
        others = [r[:3] for r in payloads if r[:3] not in new_ids]  # replays, log records
        if others:
            ids = {**new_ids, **_span_ids(cursor, others)}
        early: list[tuple[Any, ...]] = []
        if new_ids:
            cursor.execute("SELECT EXISTS (SELECT 1 FROM early_payloads)")
            if cursor.fetchone()[0]:
                early = _take_early(cursor, list(new_ids.values()))
        stored, waiting = place_payloads(payloads, ids, early)
        self._payloads.execute(cursor, stored)
        self._early.execute(cursor, waiting)


def _largest_span_id(cursor: Any) -> int:
    cursor.execute("SELECT coalesce(max(id), 0) FROM spans")
    return int(cursor.fetchone()[0])


def _inserted_ids(
    cursor: Any, rows: Sequence[tuple[Any, ...]], inserted: int, before: int
) -> dict[SpanKey, int]:
    """The keys and row ids of the spans this transaction inserted (``inserted`` of ``rows``;
    ``before``: the largest span id before the insert).

    Within the write transaction nobody else inserts, and a rowid table gives each new
    row the current largest id plus one, in the statement's order (ignored duplicates take
    none). So when every row was new their ids are ``before + 1`` onwards, in order: known
    without reading the rows back (about 1 µs a span at 2M stored spans); otherwise the
    ``inserted`` largest ids are read back.
    """
    if inserted and inserted == len(rows):
        return {(r[0], r[1], r[2]): before + 1 + k for k, r in enumerate(rows)}
    return _last_inserted(cursor, inserted)


def _last_inserted(cursor: Any, count: int) -> dict[SpanKey, int]:
    """The keys and row ids of the ``count`` spans this transaction inserted: the ``count``
    largest ids (see ``_inserted_ids``), read back."""
    if count == 0:
        return {}
    cursor.execute(
        "SELECT id, project_id, trace_id, span_id FROM spans WHERE id > (SELECT max(id) FROM spans) - ?",
        (count,),
    )
    return {(int(p), str(t), str(s)): int(i) for i, p, t, s in cursor.fetchall()}


def _span_ids(cursor: Any, keys: Sequence[SpanKey]) -> dict[SpanKey, int]:
    """The row ids of the stored spans among ``keys`` (a probe of the traces' key and one of
    the spans' key each)."""
    cursor.execute(
        "SELECT s.id, t.project_id, t.trace_id, s.span_id FROM json_each(?) k "
        "JOIN traces t ON t.project_id = json_extract(k.value, '$[0]') "
        "AND t.trace_id = json_extract(k.value, '$[1]') "
        "JOIN spans s ON s.trace_row_id = t.id AND s.span_id = json_extract(k.value, '$[2]')",
        (json.dumps(keys),),
    )
    return {(int(p), str(t), str(s)): int(i) for i, p, t, s in cursor.fetchall()}


def _take_early(cursor: Any, span_row_ids: list[int]) -> list[tuple[Any, ...]]:
    """Remove and return (``PAYLOAD_COLUMNS``) the early payloads of these new spans."""
    cursor.execute(
        f"SELECT {', '.join('e.' + c for c in PAYLOAD_COLUMNS)} FROM spans s JOIN early_payloads e "
        "ON e.project_id = s.project_id AND e.trace_id = s.trace_id AND e.span_id = s.span_id "
        "WHERE s.id IN (SELECT value FROM json_each(?))",
        (json.dumps(span_row_ids),),
    )
    rows = [tuple(r) for r in cursor.fetchall()]
    cursor.executemany(
        "DELETE FROM early_payloads WHERE project_id = ? AND trace_id = ? AND span_id = ?",
        [r[:3] for r in rows],
    )
    return rows
