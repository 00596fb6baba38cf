"""Privacy: the hash-chained audit log and per-project privacy settings

``audit_events`` has no foreign keys on purpose (the record of a deletion outlives what
was deleted); ``privacy_settings`` holds a project's PII actions and retention periods.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("seq", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("at_unix_nano", sa.BigInteger(), nullable=False),
        sa.Column("project_id", ROW_ID, nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=300), nullable=True),
        sa.Column("before", JSON, nullable=True),
        sa.Column("after", JSON, nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_events")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_events_hash")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_audit_events_project_id_at_unix_nano"), "audit_events", ["project_id", "at_unix_nano"]
    )
    op.create_index(op.f("ix_audit_events_action_at_unix_nano"), "audit_events", ["action", "at_unix_nano"])
    op.create_table(
        "privacy_settings",
        sa.Column("project_id", ROW_ID, nullable=False),
        sa.Column("pii", JSON, nullable=False),
        sa.Column("retention", JSON, nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at_unix_nano", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_privacy_settings_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_privacy_settings")),
    )


def downgrade() -> None:
    op.drop_table("privacy_settings")
    op.drop_table("audit_events")
