"""Spans written straight into the tables (for tests that need shapes ingest would not
make quickly): each span stored with its trace's row id, the trace row made first if the
store has none (``spans.trace_row_id``, ADR 0032)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, insert, select

from watchkeep.store.tables import spans, traces


def insert_spans(conn: Connection, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert span rows (``spans`` columns, no ``trace_row_id``); their row ids in order."""
    ids: dict[tuple[int, str], int] = {}
    for key in sorted({(int(r["project_id"]), str(r["trace_id"])) for r in rows}):
        mine = [r for r in rows if (r["project_id"], r["trace_id"]) == key]
        found = conn.execute(
            select(traces.c.id).where(traces.c.project_id == key[0], traces.c.trace_id == key[1])
        ).scalar()
        if found is None:
            found = conn.execute(
                insert(traces)
                .values(
                    project_id=key[0],
                    trace_id=key[1],
                    name=mine[0]["name"],
                    start_time_unix_nano=min(r["start_time_unix_nano"] for r in mine),
                    end_time_unix_nano=max(r["end_time_unix_nano"] for r in mine),
                    has_error=any(r.get("status_code") == 2 for r in mine),
                )
                .returning(traces.c.id)
            ).scalar_one()
        ids[key] = int(found)
    return [
        int(
            conn.execute(
                insert(spans)
                .values(**r, trace_row_id=ids[(r["project_id"], r["trace_id"])])
                .returning(spans.c.id)
            ).scalar_one()
        )
        for r in rows
    ]
