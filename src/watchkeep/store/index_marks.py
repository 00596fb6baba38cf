"""High-water marks over ``spans.id`` for the indexes kept behind the commit.

The search index (``text_search``) and the traces' user and session lookups
(``trace_lookups``) are not written by ingest: a pass on a thread of every server process
reads the spans past its mark in ``search_index_state`` (one row a mark, by name), writes
what they add, and moves the mark in the same transaction, only if no other process moved
it meanwhile. These are the parts the passes share.

PostgreSQL hands out span ids in ``nextval`` order, not commit order, so a lower id may
commit after a higher one: a mark only moves over contiguous ids, and jumps a gap only once
the row after it is ``GAP_WAIT_NS`` old (a rolled-back insert never fills its gap). A gap
it jumped is kept, and the spans that commit into it later are passed then (``index_gaps``).
Ids the writer drew for spans it found stored already are no gap (``void_ids``).
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, text

from watchkeep.store import void_ids
from watchkeep.store.engine import is_sqlite

GAP_WAIT_NS = 5_000_000_000


def read_mark(conn: Connection, name: str) -> int:
    """The span id up to which the pass ``name`` has worked."""
    return int(
        conn.execute(
            text("SELECT position FROM search_index_state WHERE name = :n"), {"n": name}
        ).scalar_one()
    )


def lock_mark(conn: Connection, name: str, sqlite: bool) -> int | None:
    """The mark ``name``, locked for this transaction (None: another process holds it).

    SQLite: written first, so the transaction takes the database's write lock before it
    reads. PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so a second replica skips the pass."""
    if sqlite:
        conn.execute(text("UPDATE search_index_state SET position = position WHERE name = :n"), {"n": name})
        lock = ""
    else:
        lock = " FOR UPDATE SKIP LOCKED"
    row = conn.execute(
        text(f"SELECT position FROM search_index_state WHERE name = :n{lock}"), {"n": name}
    ).first()
    return None if row is None else int(row[0])


def move_mark(conn: Connection, name: str, position: int) -> None:
    """Set the mark ``name`` (inside the transaction that locked it)."""
    conn.execute(
        text("UPDATE search_index_state SET position = :p WHERE name = :n"), {"p": position, "n": name}
    )


def live_projects(conn: Connection, ids: set[int], sqlite: bool) -> set[int]:
    """Those of ``ids`` not deleted; PostgreSQL share-locks them so a deletion waits for
    this commit (and then purges what it wrote)."""
    if not ids:
        return set()
    lock = "" if sqlite else " FOR KEY SHARE"
    found = conn.execute(
        text(f"SELECT id FROM projects WHERE id IN ({', '.join(str(i) for i in sorted(ids))}){lock}")
    )
    return {int(r[0]) for r in found}


def contiguous(
    rows: Iterable[Any], mark: int, gap_before_ns: int, void: Sequence[tuple[int, int]] = ()
) -> tuple[list[Any], list[tuple[int, int]]]:
    """The rows (with ``id`` and ``ingested_at_unix_nano``) up to the first gap in ids that
    may still fill (see the module docstring), and the gaps they jump (first and last id).

    ``void``: ranges of ids the writer drew and left unused (``void_ids``), in id order;
    they are no gap."""
    accepted: list[Any] = []
    jumped: list[tuple[int, int]] = []
    expected = mark + 1
    v = 0
    for row in rows:
        row_id = int(row.id)
        holes: list[tuple[int, int]] = []
        while expected < row_id:
            while v < len(void) and void[v][1] < expected:
                v += 1
            if v < len(void) and void[v][0] <= expected:
                expected = void[v][1] + 1
                continue
            end = row_id - 1 if v == len(void) else min(row_id - 1, void[v][0] - 1)
            holes.append((expected, end))
            expected = end + 1
        if holes:
            if int(row.ingested_at_unix_nano) > gap_before_ns:
                break
            jumped += holes
        accepted.append(row)
        expected = row_id + 1
    return accepted, jumped


def passable(
    conn: Connection, rows: Iterable[Any], mark: int, gap_before_ns: int, sqlite: bool
) -> tuple[list[Any], list[tuple[int, int]]]:
    """``contiguous`` over ``rows`` read past ``mark``, the writer's unused ids among them
    read from the store (PostgreSQL; SQLite has none)."""
    rows = list(rows)
    void = [] if sqlite or not rows else void_ids.within(conn, mark, int(rows[-1].id))
    return contiguous(rows, mark, gap_before_ns, void)


def rewind_marks(engine: Engine) -> None:
    """SQLite hands the largest id plus one to a new row, so after the newest spans are
    deleted their ids come back: keep every mark below them, or their spans are skipped."""
    if not is_sqlite(engine.url.drivername):
        return
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE search_index_state SET position = min(position, "
                "coalesce((SELECT max(id) FROM spans), 0))"
            )
        )


class MarkPass(ABC):
    """A pass behind a mark, on a thread of its own: started and stopped with the server,
    and caught up on demand (tools, tests, benchmarks)."""

    def __init__(self, thread_name: str) -> None:
        # How old the span past a gap must be before the mark jumps the gap (PostgreSQL).
        self.gap_wait_ns = GAP_WAIT_NS
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (what is left is done by the next process to run)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def catch_up(self, timeout: float = 10.0) -> int:
        """Work until no span is left past the mark; the spans passed here.

        Waits out another process's pass and an id gap that may still fill, up to
        ``timeout`` without progress: a long backlog takes as long as it takes (a bulk fill
        catching up while a server's pass runs meets that server's passes throughout)."""
        total = 0
        deadline = time.monotonic() + timeout
        while True:
            done = self.index_batch()
            total += done
            if done:
                deadline = time.monotonic() + timeout
            elif not self.behind() or time.monotonic() > deadline:
                return total
            else:
                time.sleep(0.05)

    @abstractmethod
    def index_batch(self) -> int:
        """One batch past the mark, the mark moved over it; the spans passed (0: none)."""

    @abstractmethod
    def behind(self) -> bool:
        """Whether a span is past the mark."""

    @abstractmethod
    def _run(self) -> None:
        """The thread: passes until ``_stop`` is set."""
