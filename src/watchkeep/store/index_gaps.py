"""Gaps in span ids that a pass behind a mark jumped, and the spans that commit into them.

PostgreSQL draws span ids before their transaction commits, so a pass jumps a gap in ids
once the span after it is ``GAP_WAIT_NS`` old (``index_marks``). The writer that drew the
gap's ids may still commit: a transaction stalled for seconds, or a replica whose clock
runs ahead of the others. Those spans sat behind the mark and were never passed: not
searchable, their traces not found by user or session. So each gap a pass jumps is kept
in ``index_gaps``, and every pass takes the spans committed into its gaps since, in the
transaction that holds its mark, and keeps what is still missing of each gap.

Most gaps never fill (a rolled-back group, a deleted project's newest spans; the ids
drawn for duplicate spans are no gap, ``void_ids``), so a gap is dropped ``GAP_RETIRE_NS``
after it was jumped (no writer transaction lives that long), and a pass keeps at most
``MAX_GAPS`` (the oldest go first, logged at info). SQLite commits one writer at a time in id order: it never has gaps.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import Connection, text

log = logging.getLogger(__name__)

GAP_RETIRE_NS = 3_600_000_000_000  # an hour
MAX_GAPS = 10_000  # a pass
MAX_LATE = 10_000  # spans taken from the gaps a pass; the rest wait for the next

_FOUND = text(
    "SELECT g.first_id, g.last_id, g.jumped_at_unix_nano, s.id FROM index_gaps g "
    "JOIN spans s ON s.id BETWEEN g.first_id AND g.last_id WHERE g.name = :n "
    "ORDER BY g.first_id, s.id LIMIT :limit"
)


def record(conn: Connection, name: str, gaps: Sequence[tuple[int, int]], now_ns: int) -> None:
    """Keep the gaps (first and last id) the pass ``name`` jumps in this transaction."""
    if not gaps:
        return
    conn.execute(
        text(
            "INSERT INTO index_gaps (name, first_id, last_id, jumped_at_unix_nano) "
            "VALUES (:n, :first, :last, :at)"
        ),
        [{"n": name, "first": first, "last": last, "at": now_ns} for first, last in gaps],
    )
    kept = int(
        conn.execute(text("SELECT count(*) FROM index_gaps WHERE name = :n"), {"n": name}).scalar_one()
    )
    if kept > MAX_GAPS:
        # Info, not a warning: many writers rolling back can reach it; the oldest gaps are
        # the least likely to fill.
        log.info("%s: %d span id gaps kept, dropping the oldest %d", name, kept, kept - MAX_GAPS)
        conn.execute(
            text(
                "DELETE FROM index_gaps WHERE name = :n AND first_id IN (SELECT first_id FROM "
                "index_gaps WHERE name = :n ORDER BY first_id LIMIT :extra)"
            ),
            {"n": name, "extra": kept - MAX_GAPS},
        )


def has_late(conn: Connection, name: str) -> bool:
    """Whether a span has committed into a gap the pass ``name`` jumped."""
    return conn.execute(_FOUND, {"n": name, "limit": 1}).first() is not None


def take_late(conn: Connection, name: str, now_ns: int) -> list[int]:
    """The ids of spans committed into the pass ``name``'s gaps (at most ``MAX_LATE``), each
    gap cut down to what is still missing of it; gaps past ``GAP_RETIRE_NS`` are dropped.
    Call it in the transaction that locked the mark, and pass the spans in it."""
    conn.execute(
        text("DELETE FROM index_gaps WHERE name = :n AND jumped_at_unix_nano < :before"),
        {"n": name, "before": now_ns - GAP_RETIRE_NS},
    )
    found: dict[tuple[int, int, int], list[int]] = {}
    for first, last, at, span_id in conn.execute(_FOUND, {"n": name, "limit": MAX_LATE}):
        found.setdefault((int(first), int(last), int(at)), []).append(int(span_id))
    if not found:
        return []
    conn.execute(
        text("DELETE FROM index_gaps WHERE name = :n AND first_id = :first"),
        [{"n": name, "first": first} for first, _, _ in found],
    )
    rest = [
        {"n": name, "first": a, "last": b, "at": at}
        for (first, last, at), ids in found.items()
        for a, b in missing(first, last, ids)
    ]
    if rest:
        conn.execute(
            text(
                "INSERT INTO index_gaps (name, first_id, last_id, jumped_at_unix_nano) "
                "VALUES (:n, :first, :last, :at)"
            ),
            rest,
        )
    return [i for ids in found.values() for i in ids]


def missing(first: int, last: int, found: Sequence[int]) -> list[tuple[int, int]]:
    """What is left of the gap ``first``..``last`` (inclusive) without the sorted ids
    ``found`` in it: the ranges between them."""
    out: list[tuple[int, int]] = []
    start = first
    for i in found:
        if i > start:
            out.append((start, i - 1))
        start = i + 1
    if start <= last:
        out.append((start, last))
    return out
