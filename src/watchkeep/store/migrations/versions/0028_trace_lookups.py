"""users and sessions looked up in ``trace_lookups``, kept behind the commit

The traces' (project, user, start, trace) and (project, session, start, trace) indexes
cost every new trace a random leaf each at commit: a third of SQLite's ingest writer at
2M stored spans (issue 17, ADR 0034). Their rows move to ``trace_lookups``, which
``TraceLookupIndexer`` fills in sorted batches behind a mark over ``spans.id``; the
trace list and span list read it, and the traces past the mark as they are.

The table is filled from the stored traces (one pass over ``traces``) and its mark set to
the newest span, then the two indexes are dropped. Downgrade builds them again.

Revision ID: 0028
Revises: 0027
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

TABLE = "trace_lookups"
KINDS = (("user_id", 0), ("session_id", 1))  # trace_lookups.USER, SESSION
STATE_NAME = "trace_lookups"


def _index(column: str) -> str:
    return f"ix_traces_project_id_{column}_start_time_unix_nano_trace_id"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("project_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.Column("start_time_unix_nano", sa.BigInteger(), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("trace_row_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "project_id", "kind", "value", "start_time_unix_nano", "trace_id", name=op.f("pk_trace_lookups")
        ),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_trace_lookups_trace_row_id", TABLE, ["trace_row_id"])
    for column, kind in KINDS:
        op.execute(
            f"INSERT INTO {TABLE} (project_id, kind, value, start_time_unix_nano, trace_id, trace_row_id) "
            f"SELECT project_id, {kind}, {column}, start_time_unix_nano, trace_id, id FROM traces "
            f"WHERE {column} IS NOT NULL ORDER BY project_id, {column}, start_time_unix_nano, trace_id"
        )
    op.execute(
        "INSERT INTO search_index_state (name, position) "
        f"SELECT '{STATE_NAME}', coalesce((SELECT max(id) FROM spans), 0)"
    )
    for column, _ in KINDS:
        op.drop_index(_index(column), table_name="traces")


def downgrade() -> None:
    for column, _ in KINDS:
        op.create_index(_index(column), "traces", ["project_id", column, "start_time_unix_nano", "trace_id"])
    op.execute(f"DELETE FROM search_index_state WHERE name = '{STATE_NAME}'")
    op.drop_index("ix_trace_lookups_trace_row_id", table_name=TABLE)
    op.drop_table(TABLE)
