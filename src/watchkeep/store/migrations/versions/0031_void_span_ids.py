"""span ids a writer drew and left unused

PostgreSQL's writer draws a group's span ids before its COPY; a span that was stored
already (a replayed export) leaves the id drawn for it unused. The passes behind a mark
took such a gap for a span still committing: each waited five seconds at it and kept it in
``index_gaps``, where a flood of duplicates could crowd out gaps that real late spans
would fill (ADR 0035). The writer now records its unused ids here, in its own transaction,
and the passes move over them at once (``store/void_ids``).

Revision ID: 0031
Revises: 0030
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "void_span_ids",
        sa.Column("first_id", sa.BigInteger(), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("voided_at_unix_nano", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("first_id", name=op.f("pk_void_span_ids")),
    )
    op.create_index(op.f("ix_void_span_ids_voided_at_unix_nano"), "void_span_ids", ["voided_at_unix_nano"])


def downgrade() -> None:
    op.drop_index(op.f("ix_void_span_ids_voided_at_unix_nano"), table_name="void_span_ids")
    op.drop_table("void_span_ids")
