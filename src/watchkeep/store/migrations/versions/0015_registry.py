"""Releases: model and prompt versions, and the append-only alias event log

Versions are immutable and numbered per (project, name), with a content digest that finds
identical registrations. Aliases live only as events; (project, kind, name, alias, seq) is
unique so two moves planned from the same state cannot both land.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-28
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0015"
down_revision = "0014"
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


def _versions(table: str, *columns: sa.Column[object]) -> None:
    op.create_table(
        table,
        *_common(table),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        *columns,
        sa.Column("parent", sa.Integer(), nullable=True),
        sa.Column("content_digest", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.Column("created_at_unix_nano", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint(
            "project_id", "name", "version", name=op.f(f"uq_{table}_project_id_name_version")
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f(f"ix_{table}_project_id_name_content_digest"), table, ["project_id", "name", "content_digest"]
    )


def upgrade() -> None:
    _versions(
        "model_versions",
        sa.Column("backend", sa.String(length=100), nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("artifact_uri", sa.Text(), nullable=True),
        sa.Column("artifact_digest", sa.String(length=200), nullable=True),
        sa.Column("version_metadata", JSON, nullable=False),
        sa.Column("training_dataset", sa.String(length=300), nullable=True),
        sa.Column("eval_runs", JSON, nullable=False),
    )
    _versions(
        "prompt_versions",
        sa.Column("template", JSON, nullable=False),
        sa.Column("variables", JSON, nullable=False),
        sa.Column("model_settings", JSON, nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
    )
    op.create_table(
        "alias_events",
        *_common("alias_events"),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("alias", sa.String(length=100), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("from_version", sa.Integer(), nullable=True),
        sa.Column("to_version", sa.Integer(), nullable=True),
        sa.Column("event_kind", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("at_unix_nano", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint(
            "project_id",
            "kind",
            "name",
            "alias",
            "seq",
            name=op.f("uq_alias_events_project_id_kind_name_alias_seq"),
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_alias_events_project_id_kind_name"), "alias_events", ["project_id", "kind", "name"]
    )


def downgrade() -> None:
    for table in ("alias_events", "prompt_versions", "model_versions"):
        op.drop_table(table)
