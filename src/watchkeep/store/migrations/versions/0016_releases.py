"""Releases: promotion policies per alias and canary analyses

A promotion policy is stored per (project, kind, name, alias); a canary keeps its
sequential test's state and the watermark of the spans it has counted, so a restarted
worker goes on where it stopped.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-28
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _common(table: str) -> list[Any]:
    return [
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("project_id", ROW_ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f(f"fk_{table}_project_id_projects"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
    ]


def upgrade() -> None:
    op.create_table(
        "promotion_policies",
        *_common("promotion_policies"),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("alias", sa.String(length=100), nullable=False),
        sa.Column("policy", JSON, nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at_unix_nano", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint(
            "project_id",
            "kind",
            "name",
            "alias",
            name=op.f("uq_promotion_policies_project_id_kind_name_alias"),
        ),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "canaries",
        *_common("canaries"),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("route", sa.String(length=200), nullable=False),
        sa.Column("baseline_alias", sa.String(length=100), nullable=False),
        sa.Column("candidate_alias", sa.String(length=100), nullable=False),
        sa.Column("baseline_version", sa.Integer(), nullable=False),
        sa.Column("candidate_version", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("policy", JSON, nullable=False),
        sa.Column("state", JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("watermark_unix_nano", sa.BigInteger(), nullable=False),
        sa.Column("started_by", sa.String(length=200), nullable=False),
        sa.Column("started_at_unix_nano", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_unix_nano", sa.BigInteger(), nullable=False),
        sa.Column("ended_at_unix_nano", sa.BigInteger(), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_canaries_project_id_status"), "canaries", ["project_id", "status"])
    op.create_index(op.f("ix_canaries_project_id_name"), "canaries", ["project_id", "name"])


def downgrade() -> None:
    for table in ("canaries", "promotion_policies"):
        op.drop_table(table)
