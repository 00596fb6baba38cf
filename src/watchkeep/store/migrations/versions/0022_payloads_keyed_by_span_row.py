"""span_payloads keyed by the span's row id; early_payloads for payloads before their span

Ingest appends span ids, so a payload keyed by its span's ``spans.id`` is appended too:
the key index on the random (project, trace, span) dirtied one leaf page a span at size,
written to SQLite's WAL and again by its checkpoint (ADR 0029: at 1M stored the writer's
CPU a span fell from 56 to 44 µs, the checkpoint's from 12 to 6). Payloads whose span is
not stored (GenAI log records sent before their span) go to ``early_payloads``, keyed as
before. Existing rows are copied in batches of span ids; sealed values are copied as they
are (their associated data names the project only), so they stay openable.

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

BATCH = 50_000  # span ids per copy statement
INDEX = "ix_span_payloads_project_id_span_row_id"
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_KEY = "p.project_id = s.project_id AND p.trace_id = s.trace_id AND p.span_id = s.span_id"
_COLUMNS = "project_id, trace_id, span_id, input, output, created_at_unix_nano"
_OLD = "span_payloads_0021"


def _payload_table(name: str, key: list[str], *columns: sa.Column[object]) -> None:
    op.create_table(
        name,
        *columns,
        sa.Column("project_id", _ID, nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("span_id", sa.String(length=16), nullable=False),
        sa.Column("input", sa.Text(), nullable=True),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("created_at_unix_nano", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(*key, name=op.f(f"pk_{name}")),
    )


def _lz4(table: str) -> None:
    """As revision 0019: payload values over the TOAST threshold compressed with lz4."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql" or (bind.dialect.server_version_info or (0,)) < (14,):
        return
    op.execute(
        "DO $$ BEGIN "
        f"ALTER TABLE {table} ALTER COLUMN input SET COMPRESSION lz4, ALTER COLUMN output SET COMPRESSION lz4; "
        "EXCEPTION WHEN feature_not_supported THEN NULL; END $$"
    )


def _set_aside(old: str, new: str) -> None:
    """Rename table ``old`` (and on PostgreSQL its primary key) to ``new``."""
    op.rename_table(old, new)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE {new} RENAME CONSTRAINT pk_{old} TO pk_{new}")


def upgrade() -> None:
    _set_aside("span_payloads", _OLD)
    _payload_table(
        "span_payloads", ["span_row_id"], sa.Column("span_row_id", _ID, nullable=False, autoincrement=False)
    )
    _payload_table("early_payloads", ["project_id", "trace_id", "span_id"])
    for table in ("span_payloads", "early_payloads"):
        _lz4(table)
    conn = op.get_bind()
    top = int(conn.execute(sa.text("SELECT max(id) FROM spans")).scalar() or 0)
    copy = sa.text(
        f"INSERT INTO span_payloads (span_row_id, {_COLUMNS}) "
        f"SELECT s.id, {', '.join('p.' + c for c in _COLUMNS.split(', '))} "
        f"FROM spans s JOIN {_OLD} p ON {_KEY} WHERE s.id > :low AND s.id <= :high"
    )
    for low in range(0, top, BATCH):
        conn.execute(copy, {"low": low, "high": low + BATCH})
    conn.execute(
        sa.text(
            f"INSERT INTO early_payloads ({_COLUMNS}) SELECT {_COLUMNS} FROM {_OLD} p "
            f"WHERE NOT EXISTS (SELECT 1 FROM spans s WHERE {_KEY})"
        )
    )
    op.drop_table(_OLD)
    op.create_index(INDEX, "span_payloads", ["project_id", "span_row_id"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name="span_payloads")
    _set_aside("span_payloads", _OLD)
    _payload_table("span_payloads", ["project_id", "trace_id", "span_id"])
    _lz4("span_payloads")
    op.execute(f"INSERT INTO span_payloads ({_COLUMNS}) SELECT {_COLUMNS} FROM {_OLD}")
    op.execute(f"INSERT INTO span_payloads ({_COLUMNS}) SELECT {_COLUMNS} FROM early_payloads")
    op.drop_table(_OLD)
    op.drop_table("early_payloads")
