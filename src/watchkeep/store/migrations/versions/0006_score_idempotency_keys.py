"""scores carry an optional idempotency key, unique per project

A client that times out after the server stored a score cannot tell whether it was
stored; with a key of its own choosing it can send it again and the score is kept
once. Rows without a key (NULL) are not constrained.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scores") as batch_op:
        batch_op.add_column(sa.Column("idempotency_key", sa.String(length=128), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_scores_project_id_idempotency_key"), ["project_id", "idempotency_key"], unique=True
        )


def downgrade() -> None:
    with op.batch_alter_table("scores") as batch_op:
        batch_op.drop_index(batch_op.f("ix_scores_project_id_idempotency_key"))
        batch_op.drop_column("idempotency_key")
