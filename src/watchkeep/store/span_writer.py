"""Bulk, idempotent writes of normalised spans: one transaction per group commit.

Rows (``rows``) arrive as tuples in the column order of ``SPAN_COLUMNS`` / ``PAYLOAD_COLUMNS``
(JSON columns already serialised to text), cheap to pickle from a decode worker and
to bind. Spans and payloads are inserted with "ignore on conflict" on (project, trace,
span), so replays are harmless; trace rows are upserted with idempotent merges only
(min start, max end, root name, error flag, first non-null trace attributes).
The DB-API cursor is used directly: SQLAlchemy's per-row bind processing would cost
more than the insert itself at ingest rates.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Engine

from watchkeep.store.engine import is_sqlite
from watchkeep.store.rows import (
    BulkStatements,
    NewSpans,
    TraceRows,
    WriteBatch,
    final_metadata,
    merge_payloads,
    merge_traces,
    summarise_traces,
)
from watchkeep.store.sealing import Sealer, seal_payload_rows


class SpanWriter:
    """Writes many batches in one transaction; returns how many spans were new.

    It keeps one connection of its own rather than taking any from the pool: SQLite
    gives every connection a private page cache, so a writer rotating through the pool
    filled each of them in turn (resident memory kept growing with the store), and on
    PostgreSQL a checkout costs a liveness round trip. A connection that failed is
    dropped and a fresh one is opened for the next write.
    """

    def __init__(
        self, engine: Engine, *, sqlite_cache_mib: int | None = None, sealer: Sealer | None = None
    ) -> None:
        self._engine = engine
        self._sealer = sealer  # encryption at rest of payload text (None: plaintext)
        self._conn: Connection | None = None
        # Spans of the last write whose project was deleted before their commit: dropped,
        # never written under an id that no project (or, on an old SQLite store, a new one) has.
        self.last_discarded = 0
        self._sqlite_cache_mib = sqlite_cache_mib if is_sqlite(engine.url.drivername) else None
        if is_sqlite(engine.url.drivername):
            from watchkeep.store.bulk_sqlite import SqliteBulk

            self._bulk: BulkStatements = SqliteBulk()
        else:
            from watchkeep.store.bulk_postgres import PostgresBulk

            self._bulk = PostgresBulk()

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._conn = self._engine.connect()
            if self._sqlite_cache_mib is not None:
                # Only this connection inserts: its cache holds the hot index pages (measured:
                # 64 MiB kept 19-22k spans/s over a store's first 300k spans, 16 MiB 15-17k).
                self._conn.exec_driver_sql(f"PRAGMA cache_size=-{int(self._sqlite_cache_mib) * 1024}")
                self._conn.commit()
        return self._conn

    @contextlib.contextmanager
    def _using(self) -> Iterator[Connection]:
        """The writer's connection, dropped (and replaced at the next write) if anything fails."""
        conn = self._connection()
        try:
            yield conn
        except Exception:
            self._conn = None
            with contextlib.suppress(Exception):
                conn.invalidate()
            raise

    def probe(self) -> None:
        """Raise if the store cannot take new data now; stores nothing.

        Creates a scratch table, puts 64 KiB in it (new pages, as a commit needs) and rolls
        back: a full disk, a read-only database or a lost server fails it as a commit would.
        """
        if is_sqlite(self._engine.url.drivername):
            create = "CREATE TABLE watchkeep_write_probe (b BLOB)"
            fill = "INSERT INTO watchkeep_write_probe VALUES (randomblob(65536))"
        else:
            create = "CREATE TABLE watchkeep_write_probe (b bytea)"
            fill = (
                "INSERT INTO watchkeep_write_probe "
                "SELECT decode(md5(g::text), 'hex') FROM generate_series(1, 4096) g"
            )
        with self._using() as conn, conn.begin() as tx:
            conn.exec_driver_sql(create)
            conn.exec_driver_sql(fill)
            tx.rollback()

    def close(self) -> None:
        """Give the writer's connection back."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def write(self, batches: Sequence[WriteBatch]) -> int:
        """Commit every batch in ``batches`` atomically; the number of spans inserted."""
        return sum(len(rows) for rows in self.write_new(batches))

    def write_new(self, batches: Sequence[WriteBatch]) -> list[list[tuple[Any, ...]]]:
        """Commit every batch atomically; for each batch, its span rows that were new.

        A span sent twice in one group counts as new in the first batch that has it.
        Spans of a project that no longer exists are dropped (``last_discarded``).
        """
        self.last_discarded = 0
        span_rows = [r for b in batches for r in b.spans]
        if not span_rows and not any(b.payloads for b in batches):  # OTLP logs carry payloads alone
            return [[] for _ in batches]
        fresh = self._write(batches, span_rows)
        if fresh is None:
            return [list(b.spans) for b in batches]
        out: list[list[tuple[Any, ...]]] = []
        for b in batches:
            mine = []
            for r in b.spans:
                key = (r[0], r[1], r[2])
                if key in fresh:
                    fresh.discard(key)
                    mine.append(r)
            out.append(mine)
        return out

    def _write(self, batches: Sequence[WriteBatch], span_rows: list[tuple[Any, ...]]) -> NewSpans:
        rows = (
            span_rows,
            merge_payloads(r for b in batches for r in self._sealed(b)),
            [tuple(r.values()) for r in merge_traces(_trace_rows(batches))],
            list({k: v for b in batches for k, v in b.resources.items()}.values()),
            [r for b in batches if b.metadata for r in final_metadata(b.spans, b.metadata)],
        )
        with self._using() as conn, conn.begin():
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                return self._write_live(cursor, *rows)
            finally:
                cursor.close()

    def _sealed(self, batch: WriteBatch) -> list[tuple[Any, ...]]:
        """The batch's payload rows encrypted (a decode worker may have done it already)."""
        if self._sealer is None or batch.sealed:
            return batch.payloads
        return seal_payload_rows(self._sealer, batch.payloads)

    def _write_live(
        self,
        cursor: Any,
        spans: list[tuple[Any, ...]],
        payloads: list[tuple[Any, ...]],
        traces: list[tuple[Any, ...]],
        resources: list[tuple[Any, ...]],
        metadata: list[tuple[Any, ...]],
    ) -> NewSpans:
        """Write the rows of projects that still exist (every row starts with its project id).

        A group holds few projects, so the check is one indexed read; its lock keeps a
        concurrent deletion waiting until this commit, whose rows it then deletes.
        """
        wanted = {r[0] for r in spans} | {r[0] for r in payloads}
        gone = wanted - self._bulk.live_projects(cursor, sorted(wanted))
        if not gone:
            return self._bulk.write(cursor, spans, payloads, traces, resources, metadata)
        kept = [r for r in spans if r[0] not in gone]
        self.last_discarded = len(spans) - len(kept)
        if not kept and not any(r[0] not in gone for r in payloads):
            return set()
        fresh = self._bulk.write(
            cursor,
            kept,
            [r for r in payloads if r[0] not in gone],
            [r for r in traces if r[0] not in gone],
            [r for r in resources if r[0] not in gone],
            [r for r in metadata if r[0] not in gone],
        )
        return {(r[0], r[1], r[2]) for r in kept} if fresh is None else fresh


def _trace_rows(batches: Sequence[WriteBatch]) -> Iterator[TraceRows]:
    """Each batch's trace rows, with rows summarised from its spans for any trace it lacks:
    every span is stored with its trace's row id, so each needs a trace row (ingest builds
    them all; this keeps a batch built by hand from failing its whole group)."""
    for b in batches:
        yield b.traces
        missing = [s for s in b.spans if (s[0], s[1]) not in b.traces]
        if missing:
            yield summarise_traces(missing)
