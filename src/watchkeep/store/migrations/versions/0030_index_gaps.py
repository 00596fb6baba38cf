"""the span id gaps each pass behind the commit jumped

PostgreSQL draws span ids before their transaction commits, so the passes behind a mark
(search, the traces' user and session lookups) move it over a gap in ids only once the span
after it is five seconds old; a span whose transaction commits later than that was never
passed (ADR 0034, Consequences). ``index_gaps`` keeps each gap a pass jumped, so later
passes take the spans that commit into it (``store/index_gaps``); a gap is dropped once
filled, or after an hour.

Revision ID: 0030
Revises: 0029
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "index_gaps",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("first_id", sa.BigInteger(), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("jumped_at_unix_nano", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", "first_id", name=op.f("pk_index_gaps")),
    )


def downgrade() -> None:
    op.drop_table("index_gaps")
