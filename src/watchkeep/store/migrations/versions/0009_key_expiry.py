"""API keys may carry an expiry time

Keys created through the admin API (or ``watchkeep keys create --expires``) can be given
an end of life; a key past it authenticates no more, like a revoked one. NULL means the
key does not expire (every key created before this revision).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch_op:
        batch_op.add_column(sa.Column("expires_at_unix_nano", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch_op:
        batch_op.drop_column("expires_at_unix_nano")
