"""the trace's end in its lookup rows

The span list bounds a user's or session's spans by the start of their (page x step)-th
newest trace and reads only the traces that end at or after it (revision 0026). With the
end on the trace rows alone, each of a user's traces was probed for it: 49 / 66 ms p50 /
p95 at 10M spans on PostgreSQL for a user with 5,000 traces (ADR 0034, Consequences). The
lookup rows now carry it: in the row on SQLite (no rowid), in the primary key's payload
(``INCLUDE``) on PostgreSQL, so the bound is tested on the key's range alone.

The table is built again from the stored traces (as revision 0028 built it) and its mark
set to the newest span; downgrade builds it again without the end.

Revision ID: 0029
Revises: 0028
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

TABLE = "trace_lookups"
KINDS = (("user_id", 0), ("session_id", 1))  # trace_lookups.USER, SESSION
STATE_NAME = "trace_lookups"
KEY = ("project_id", "kind", "value", "start_time_unix_nano", "trace_id")


def _rebuild(with_end: bool) -> None:
    """Drop the table and fill it again from the traces, with or without their end."""
    op.drop_index("ix_trace_lookups_trace_row_id", table_name=TABLE)
    op.drop_table(TABLE)
    end = [sa.Column("end_time_unix_nano", sa.BigInteger(), nullable=False)] if with_end else []
    op.create_table(
        TABLE,
        sa.Column("project_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.Column("start_time_unix_nano", sa.BigInteger(), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("trace_row_id", sa.BigInteger(), nullable=False),
        *end,
        sa.PrimaryKeyConstraint(
            *KEY,
            name=op.f("pk_trace_lookups"),
            postgresql_include=["end_time_unix_nano"] if with_end else [],
        ),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_trace_lookups_trace_row_id", TABLE, ["trace_row_id"])
    columns = ", ".join([*KEY, "trace_row_id"] + (["end_time_unix_nano"] if with_end else []))
    values = "start_time_unix_nano, trace_id, id" + (", end_time_unix_nano" if with_end else "")
    for column, kind in KINDS:
        op.execute(
            f"INSERT INTO {TABLE} ({columns}) SELECT project_id, {kind}, {column}, {values} FROM traces "
            f"WHERE {column} IS NOT NULL ORDER BY project_id, {column}, start_time_unix_nano, trace_id"
        )
    op.execute(
        "UPDATE search_index_state SET position = coalesce((SELECT max(id) FROM spans), 0) "
        f"WHERE name = '{STATE_NAME}'"
    )


def upgrade() -> None:
    _rebuild(with_end=True)


def downgrade() -> None:
    _rebuild(with_end=False)
