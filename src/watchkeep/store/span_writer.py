"""Bulk, idempotent writes of normalised spans: one transaction per group commit.

Rows arrive as tuples in the column order of ``SPAN_COLUMNS`` / ``PAYLOAD_COLUMNS``
(JSON columns already serialised to text), cheap to pickle from a decode worker and
to bind. Spans and payloads are inserted with "ignore on conflict" on (project, trace,
span), so replays are harmless; trace rows are upserted with idempotent merges only
(min start, max end, root name, error flag, first non-null trace attributes).
The DB-API cursor is used directly: SQLAlchemy's per-row bind processing would cost
more than the insert itself at ingest rates.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Connection, Engine

from watchkeep.store.engine import is_sqlite

SPAN_COLUMNS: tuple[str, ...] = (
    "project_id",
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "kind",
    "status_code",
    "status_message",
    "start_time_unix_nano",
    "end_time_unix_nano",
    "duration_ms",
    "service_name",
    "operation",
    "provider",
    "request_model",
    "response_model",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cost_usd",
    "time_to_first_token_ms",
    "finish_reason",
    "user_id",
    "session_id",
    "environment",
    "release",
    "tags",
    "prompt_name",
    "prompt_version",
    "model_version",
    "attributes",
    "resource_id",
    "events",
    "ingested_at_unix_nano",
)
JSON_SPAN_COLUMNS = frozenset({"tags", "attributes", "events"})
RESOURCE_COLUMNS: tuple[str, ...] = ("project_id", "resource_id", "attributes", "created_at_unix_nano")
PAYLOAD_COLUMNS: tuple[str, ...] = (
    "project_id",
    "trace_id",
    "span_id",
    "input",
    "output",
    "created_at_unix_nano",
)
TRACE_COLUMNS: tuple[str, ...] = (
    "project_id",
    "trace_id",
    "name",
    "root_span_id",
    "start_time_unix_nano",
    "end_time_unix_nano",
    "has_error",
    "user_id",
    "session_id",
    "environment",
    "release",
    "tags",
)
TRACE_ATTRIBUTE_COLUMNS: tuple[str, ...] = (
    "user_id",
    "session_id",
    "environment",
    "release",
    "tags",
)
STATUS_ERROR = 2

Row = dict[str, Any]
TraceRows = dict[tuple[int, str], Row]
SpanKey = tuple[int, str, str]  # (project id, trace id, span id)
# The keys of the spans a write inserted; None when it inserted every span it was given.
NewSpans = set[SpanKey] | None


@dataclass(slots=True)
class WriteBatch:
    """One request's rows: span and payload tuples in column order, trace summaries."""

    spans: list[tuple[Any, ...]] = field(default_factory=list)
    payloads: list[tuple[Any, ...]] = field(default_factory=list)
    traces: TraceRows = field(default_factory=dict)
    resources: dict[tuple[int, str], tuple[Any, ...]] = field(default_factory=dict)


def _trace_row(s: Row) -> Row:
    is_root = s["parent_span_id"] is None
    row = {
        "project_id": s["project_id"],
        "trace_id": s["trace_id"],
        "name": s["name"],
        "root_span_id": s["span_id"] if is_root else None,
        "start_time_unix_nano": s["start_time_unix_nano"],
        "end_time_unix_nano": s["end_time_unix_nano"],
        "has_error": s["status_code"] == STATUS_ERROR,
    }
    for c in TRACE_ATTRIBUTE_COLUMNS:
        row[c] = s[c]
    return row


def merge_trace_row(into: Row, other: Row) -> None:
    """Fold ``other`` into ``into`` exactly as the database upsert would."""
    if other["root_span_id"] is not None:
        into["name"], into["root_span_id"] = other["name"], other["root_span_id"]
    elif into["root_span_id"] is None and other["start_time_unix_nano"] < into["start_time_unix_nano"]:
        into["name"] = other["name"]
    into["start_time_unix_nano"] = min(into["start_time_unix_nano"], other["start_time_unix_nano"])
    into["end_time_unix_nano"] = max(into["end_time_unix_nano"], other["end_time_unix_nano"])
    into["has_error"] = into["has_error"] or other["has_error"]
    for c in TRACE_ATTRIBUTE_COLUMNS:
        if into[c] is None:
            into[c] = other[c]


def summarise_traces(spans: Iterable[Row]) -> TraceRows:
    """One idempotent trace row per (project, trace) of ``spans`` (dict rows).

    Trace attributes are taken from each trace's first span: the normaliser has already
    shared them across the spans of an export.
    """
    out: TraceRows = {}
    for s in spans:
        key = (s["project_id"], s["trace_id"])
        t = out.get(key)
        if t is None:
            out[key] = _trace_row(s)
            continue
        start = s["start_time_unix_nano"]
        if s["parent_span_id"] is None:
            t["name"], t["root_span_id"] = s["name"], s["span_id"]
        elif t["root_span_id"] is None and start < t["start_time_unix_nano"]:
            t["name"] = s["name"]
        if start < t["start_time_unix_nano"]:
            t["start_time_unix_nano"] = start
        if s["end_time_unix_nano"] > t["end_time_unix_nano"]:
            t["end_time_unix_nano"] = s["end_time_unix_nano"]
        if s["status_code"] == STATUS_ERROR:
            t["has_error"] = True
    return out


def merge_traces(parts: Iterable[TraceRows]) -> list[Row]:
    """The trace rows of several batches, one per key, in key order (lock order)."""
    merged: TraceRows = {}
    for part in parts:
        for key, row in part.items():
            found = merged.get(key)
            if found is None:
                merged[key] = dict(row)
            else:
                merge_trace_row(found, row)
    return [merged[k] for k in sorted(merged)]


class BulkStatements(Protocol):
    """A dialect's way of writing many rows idempotently inside one transaction."""

    def live_projects(self, cursor: Any, project_ids: Sequence[int]) -> set[int]:
        """Those of ``project_ids`` (sorted) that exist, kept from deletion until commit."""

    def write(
        self,
        cursor: Any,
        spans: Sequence[tuple[Any, ...]],
        payloads: Sequence[tuple[Any, ...]],
        traces: Sequence[tuple[Any, ...]],
        resources: Sequence[tuple[Any, ...]],
    ) -> NewSpans:
        """Insert new spans, payloads and resources, upsert traces.

        Returns None when every span was new, else the keys of those that were (finding
        them costs a query, so only when some were duplicates).
        """


def trace_upsert_assignments(least: str, greatest: str) -> str:
    """The ON CONFLICT ... DO UPDATE SET clause merging a trace row, as ``merge_trace_row``."""
    keep_first = ", ".join(f"{c} = COALESCE(traces.{c}, excluded.{c})" for c in TRACE_ATTRIBUTE_COLUMNS)
    return (
        "ON CONFLICT (project_id, trace_id) DO UPDATE SET "
        "name = CASE WHEN excluded.root_span_id IS NOT NULL THEN excluded.name "
        "WHEN traces.root_span_id IS NULL "
        "AND excluded.start_time_unix_nano < traces.start_time_unix_nano THEN excluded.name "
        "ELSE traces.name END, "
        "root_span_id = COALESCE(excluded.root_span_id, traces.root_span_id), "
        f"start_time_unix_nano = {least}(traces.start_time_unix_nano, excluded.start_time_unix_nano), "
        f"end_time_unix_nano = {greatest}(traces.end_time_unix_nano, excluded.end_time_unix_nano), "
        "has_error = (traces.has_error OR excluded.has_error), "
        f"{keep_first}"
    )


class SpanWriter:
    """Writes many batches in one transaction; returns how many spans were new.

    It keeps one connection of its own rather than taking any from the pool: SQLite
    gives every connection a private page cache, so a writer rotating through the pool
    filled each of them in turn (resident memory kept growing with the store), and on
    PostgreSQL a checkout costs a liveness round trip. A connection that failed is
    dropped and a fresh one is opened for the next write.
    """

    def __init__(self, engine: Engine, *, sqlite_cache_mib: int | None = None) -> None:
        self._engine = engine
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
        if not span_rows:
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
            [r for b in batches for r in b.payloads],
            [tuple(r.values()) for r in merge_traces(b.traces for b in batches)],
            list({k: v for b in batches for k, v in b.resources.items()}.values()),
        )
        conn = self._connection()
        try:
            with conn.begin():
                cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
                try:
                    return self._write_live(cursor, *rows)
                finally:
                    cursor.close()
        except Exception:
            self._conn = None
            with contextlib.suppress(Exception):
                conn.invalidate()
            raise

    def _write_live(
        self,
        cursor: Any,
        spans: list[tuple[Any, ...]],
        payloads: list[tuple[Any, ...]],
        traces: list[tuple[Any, ...]],
        resources: list[tuple[Any, ...]],
    ) -> NewSpans:
        """Write the rows of projects that still exist (every row starts with its project id).

        A group holds few projects, so the check is one indexed read; its lock keeps a
        concurrent deletion waiting until this commit, whose rows it then deletes.
        """
        wanted = {r[0] for r in spans}
        gone = wanted - self._bulk.live_projects(cursor, sorted(wanted))
        if not gone:
            return self._bulk.write(cursor, spans, payloads, traces, resources)
        kept = [r for r in spans if r[0] not in gone]
        self.last_discarded = len(spans) - len(kept)
        if not kept:
            return set()
        fresh = self._bulk.write(
            cursor,
            kept,
            [r for r in payloads if r[0] not in gone],
            [r for r in traces if r[0] not in gone],
            [r for r in resources if r[0] not in gone],
        )
        return {(r[0], r[1], r[2]) for r in kept} if fresh is None else fresh
