"""span_metadata: SDK metadata of spans in a narrow indexed table, backfilled from spans

The metadata filter read the JSON attributes of every span in the list's window (3 s at
2M spans on SQLite when nothing matched). Spans carrying ``watchkeep.metadata.*``
attributes get one row per key here; the filter reads one range of the (project, key,
value, start) index (ADR 0028). Existing spans are copied in batches of span ids.

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

INDEX = "ix_span_metadata_lookup"
BATCH = 50_000  # span ids per backfill statement
PREFIX = "watchkeep.metadata."
KEY_CHARS, VALUE_CHARS = 256, 512  # as rows.METADATA_KEY_CHARS / METADATA_VALUE_CHARS

# Values as rows.metadata_text writes them: text as is, booleans true/false, others as JSON.
_SQLITE = (
    "INSERT OR IGNORE INTO span_metadata "
    "(project_id, trace_id, span_id, key, value, start_time_unix_nano) "
    f"SELECT s.project_id, s.trace_id, s.span_id, substr(substr(j.key, {len(PREFIX) + 1}), 1, {KEY_CHARS}), "
    "substr(CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "
    f"ELSE CAST(j.value AS TEXT) END, 1, {VALUE_CHARS}), s.start_time_unix_nano "
    "FROM spans s, json_each(s.attributes) j "
    "WHERE s.id > :low AND s.id <= :high AND s.attributes IS NOT NULL "
    f"AND substr(j.key, 1, {len(PREFIX)}) = '{PREFIX}' AND j.type <> 'null'"
)
_POSTGRES = (
    "INSERT INTO span_metadata "
    "(project_id, trace_id, span_id, key, value, start_time_unix_nano) "
    f"SELECT s.project_id, s.trace_id, s.span_id, left(substr(j.key, {len(PREFIX) + 1}), {KEY_CHARS}), "
    f"left(j.value, {VALUE_CHARS}), s.start_time_unix_nano "
    "FROM spans s, jsonb_each_text(s.attributes) j "
    "WHERE s.id > :low AND s.id <= :high AND s.attributes IS NOT NULL "
    f"AND left(j.key, {len(PREFIX)}) = '{PREFIX}' AND j.value IS NOT NULL "
    "ON CONFLICT DO NOTHING"
)


def upgrade() -> None:
    op.create_table(
        "span_metadata",
        sa.Column("project_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("span_id", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=KEY_CHARS), nullable=False),
        sa.Column("value", sa.String(length=VALUE_CHARS), nullable=False),
        sa.Column("start_time_unix_nano", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "trace_id", "span_id", "key", name=op.f("pk_span_metadata")),
        sqlite_with_rowid=False,
    )
    op.create_index(
        INDEX,
        "span_metadata",
        ["project_id", "key", "value", "start_time_unix_nano", "trace_id"],
    )
    conn = op.get_bind()
    top = conn.execute(sa.text("SELECT max(id) FROM spans")).scalar()
    statement = sa.text(_SQLITE if conn.dialect.name == "sqlite" else _POSTGRES)
    for low in range(0, int(top or 0), BATCH):
        conn.execute(statement, {"low": low, "high": low + BATCH})


def downgrade() -> None:
    op.drop_index(INDEX, table_name="span_metadata")
    op.drop_table("span_metadata")
