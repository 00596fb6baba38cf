"""One running canary per model and route, even when two starts race

A partial unique index on (project_id, name, route) where status is 'running': the
second of two concurrent starts fails on insert instead of both running.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

RUNNING = sa.text("status = 'running'")


def upgrade() -> None:
    op.create_index(
        "uq_canaries_running",
        "canaries",
        ["project_id", "name", "route"],
        unique=True,
        sqlite_where=RUNNING,
        postgresql_where=RUNNING,
    )


def downgrade() -> None:
    op.drop_index("uq_canaries_running", table_name="canaries")
