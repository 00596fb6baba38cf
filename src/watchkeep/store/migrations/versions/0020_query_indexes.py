"""trace filter indexes carry the list's whole order; tagged traces get their own index

The trace list is ordered by (start, trace_id). Indexes on (project, X, start) left the
tie-break to a sort, so SQLite preferred walking the (project, start, trace_id) index and
testing every trace for the user, session, release or environment: a rare value read the
whole project. With trace_id appended, a filtered page is the first rows of one index
range on both databases. The partial index on tagged traces lets a tag filter walk only
traces that have tags (ADR 0026).

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

FILTERED = ("user_id", "session_id", "release", "environment")
TAGGED = "ix_traces_tagged"


def _name(column: str, *, with_trace_id: bool) -> str:
    return f"ix_traces_project_id_{column}_start_time_unix_nano" + ("_trace_id" if with_trace_id else "")


def upgrade() -> None:
    for column in FILTERED:
        op.create_index(
            _name(column, with_trace_id=True),
            "traces",
            ["project_id", column, "start_time_unix_nano", "trace_id"],
        )
        op.drop_index(_name(column, with_trace_id=False), table_name="traces")
    where = sa.text("tags IS NOT NULL")
    op.create_index(
        TAGGED,
        "traces",
        ["project_id", "start_time_unix_nano", "trace_id"],
        sqlite_where=where,
        postgresql_where=where,
    )


def downgrade() -> None:
    op.drop_index(TAGGED, table_name="traces")
    for column in FILTERED:
        op.create_index(
            _name(column, with_trace_id=False), "traces", ["project_id", column, "start_time_unix_nano"]
        )
        op.drop_index(_name(column, with_trace_id=True), table_name="traces")
