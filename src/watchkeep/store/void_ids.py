"""Span ids the PostgreSQL writer drew and left unused, so the passes behind a mark do not
wait at them.

The writer draws a group's span ids before its COPY (``bulk_postgres``); a span stored
already (an exporter's retry, a replayed spool file) leaves the id drawn for it unused. To a
pass (``index_marks.contiguous``) that hole looked like a span still committing: it waited
``GAP_WAIT_NS`` there, holding back every project's newer spans, then kept the hole in
``index_gaps``, whose bound a tenant sending duplicates could fill, pushing out a gap that
another project's late commit would have filled (ADR 0035). So the writer records its
unused ids in ``void_span_ids`` in the transaction that leaves them unused (committed with
it, or not at all), and the passes treat them as passed.

The rows are ranges of consecutive ids; a group adds at most one range a duplicate span,
and only when it had duplicates. The lookups pass deletes the ranges below every mark, and any older than
``index_gaps.GAP_RETIRE_NS`` (a pass that far behind takes them for gaps, as before). SQLite
never draws ids ahead: it has no rows here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, text

from watchkeep.store.index_gaps import GAP_RETIRE_NS

_RECORD = (
    "INSERT INTO void_span_ids (first_id, last_id, voided_at_unix_nano) "
    "SELECT f, l, %s FROM unnest(%s::bigint[], %s::bigint[]) AS u(f, l)"
)
_WITHIN = text(
    "SELECT first_id, last_id FROM void_span_ids WHERE first_id > :mark AND first_id <= :upto "
    "ORDER BY first_id"
)
# Every mark in search_index_state is over spans.id (a mark over another table's ids
# belongs elsewhere). Marks are span ids that were stored, which no range holds: a range
# starting below the lowest mark lies wholly below it.
_PRUNE = text(
    "DELETE FROM void_span_ids WHERE first_id < (SELECT min(position) FROM search_index_state) "
    "OR voided_at_unix_nano < :before"
)


def unused_ranges(drawn: Iterable[int], used: set[int]) -> list[tuple[int, int]]:
    """The ids of ``drawn`` not in ``used``, as ranges of consecutive ids (first, last)."""
    out: list[tuple[int, int]] = []
    for i in sorted(i for i in drawn if i not in used):
        if out and out[-1][1] == i - 1:
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return out


def record(cursor: Any, ranges: Sequence[tuple[int, int]], now_ns: int) -> None:
    """Record ``ranges`` of unused span ids in the writer's transaction (a psycopg cursor)."""
    if ranges:
        cursor.execute(_RECORD, (now_ns, [r[0] for r in ranges], [r[1] for r in ranges]))


def within(conn: Connection, mark: int, upto: int) -> list[tuple[int, int]]:
    """The unused ranges past ``mark`` that start at or before ``upto``, in id order."""
    return [(int(a), int(b)) for a, b in conn.execute(_WITHIN, {"mark": mark, "upto": upto})]


def prune(conn: Connection, now_ns: int) -> None:
    """Delete the ranges every pass has moved over, and those older than an hour."""
    conn.execute(_PRUNE, {"before": now_ns - GAP_RETIRE_NS})
