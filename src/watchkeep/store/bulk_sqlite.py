"""SQLite bulk writes: multi-row ``INSERT OR IGNORE ... VALUES (...), (...)``.

One statement per few hundred rows instead of one per row: far fewer trips through
the driver, and one release of the GIL for a whole chunk rather than one per row,
which keeps the writer thread from convoying behind the HTTP loop. Rows are cut into
full chunks and then powers of two, so only a handful of statement shapes exist: with
one shape per row count, a gateway's varying batch sizes filled the driver's statement
cache with large prepared statements and resident memory grew by tens of MiB.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import chain
from typing import Any

from watchkeep.store.rows import (
    METADATA_COLUMNS,
    PAYLOAD_COLUMNS,
    PAYLOAD_FILL,
    RESOURCE_COLUMNS,
    SPAN_COLUMNS,
    TRACE_COLUMNS,
    NewSpans,
    trace_upsert_assignments,
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
            f"INSERT OR IGNORE INTO spans ({', '.join(SPAN_COLUMNS)})", "", len(SPAN_COLUMNS)
        )
        self._payloads = MultiRowStatement(
            f"INSERT INTO span_payloads ({', '.join(PAYLOAD_COLUMNS)})", PAYLOAD_FILL, len(PAYLOAD_COLUMNS)
        )
        self._resources = MultiRowStatement(
            f"INSERT OR IGNORE INTO resources ({', '.join(RESOURCE_COLUMNS)})", "", len(RESOURCE_COLUMNS)
        )
        self._metadata = MultiRowStatement(
            f"INSERT OR IGNORE INTO span_metadata ({', '.join(METADATA_COLUMNS)})", "", len(METADATA_COLUMNS)
        )
        self._traces = MultiRowStatement(
            f"INSERT INTO traces ({', '.join(TRACE_COLUMNS)})",
            trace_upsert_assignments("min", "max"),
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
        inserted = self._spans.execute(cursor, spans)
        fresh = None if inserted == len(spans) else _last_inserted(cursor, inserted)
        self._payloads.execute(cursor, payloads)
        self._traces.execute(cursor, traces)
        if metadata:
            self._metadata.execute(cursor, metadata)
        return fresh


def _last_inserted(cursor: Any, count: int) -> set[tuple[int, str, str]]:
    """The keys of the ``count`` spans this transaction inserted.

    Within the write transaction nobody else inserts, and a rowid table gives each new
    row the current largest id plus one (ignored duplicates take none), so this
    transaction's spans are exactly the ``count`` largest ids.
    """
    if count == 0:
        return set()
    cursor.execute(
        "SELECT project_id, trace_id, span_id FROM spans WHERE id > (SELECT max(id) FROM spans) - ?",
        (count,),
    )
    return {(int(p), str(t), str(s)) for p, t, s in cursor.fetchall()}
