"""Validation: datasets with immutable versions, evaluation runs, per-item results, output cache

A dataset version is named by the SHA-256 of its items; a run links a dataset version to
a target version and holds its aggregates and gate verdict; each computed (item, repeat,
variant) is one result row, unique per run, so an interrupted run resumes where it stopped.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _id() -> sa.Column[int]:
    return sa.Column("id", ROW_ID, autoincrement=True, nullable=False)


def _fk(table: str, column: str, target: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete
    )


def _index(table: str, *columns: str) -> None:
    op.create_index(op.f(f"ix_{table}_{'_'.join(columns)}"), table, list(columns), unique=False)


def _unique(table: str, *columns: str) -> sa.UniqueConstraint:
    return sa.UniqueConstraint(*columns, name=op.f(f"uq_{table}_{'_'.join(columns)}"))


def _created(name: str = "created_at_unix_nano") -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "datasets",
        _id(),
        sa.Column("project_id", ROW_ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        _created(),
        _fk("datasets", "project_id", "projects"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
        _unique("datasets", "project_id", "name"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "dataset_versions",
        _id(),
        sa.Column("dataset_id", ROW_ID, nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("splits", JSON, nullable=False),
        sa.Column("source", JSON, nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        _created(),
        _fk("dataset_versions", "dataset_id", "datasets"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_versions")),
        _unique("dataset_versions", "dataset_id", "version"),
        sqlite_autoincrement=True,
    )
    _index("dataset_versions", "dataset_id", "content_hash")
    op.create_table(
        "dataset_items",
        _id(),
        sa.Column("version_id", ROW_ID, nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("item_key", sa.String(length=200), nullable=False),
        sa.Column("item_hash", sa.String(length=64), nullable=False),
        sa.Column("split", sa.String(length=64), nullable=True),
        sa.Column("input", JSON, nullable=False),
        sa.Column("expected", JSON, nullable=True),
        sa.Column("item_metadata", JSON, nullable=True),
        sa.Column("trace_id", sa.String(length=32), nullable=True),
        _fk("dataset_items", "version_id", "dataset_versions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_items")),
        _unique("dataset_items", "version_id", "position"),
        sqlite_autoincrement=True,
    )
    _index("dataset_items", "version_id", "item_key")
    op.create_table(
        "eval_runs",
        _id(),
        sa.Column("project_id", ROW_ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("dataset_version_id", ROW_ID, nullable=True),
        sa.Column("target", JSON, nullable=False),
        sa.Column("target_version", sa.String(length=200), nullable=False),
        sa.Column("config", JSON, nullable=False),
        sa.Column("config_hash", sa.String(length=64), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("baseline_run_id", sa.BigInteger(), nullable=True),
        sa.Column("cases_total", sa.Integer(), nullable=False),
        sa.Column("cases_done", sa.Integer(), nullable=False),
        sa.Column("cases_failed", sa.Integer(), nullable=False),
        sa.Column("aggregates", JSON, nullable=True),
        sa.Column("gate", JSON, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        _created("started_at_unix_nano"),
        sa.Column("finished_at_unix_nano", sa.BigInteger(), nullable=True),
        _fk("eval_runs", "project_id", "projects"),
        _fk("eval_runs", "dataset_version_id", "dataset_versions", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eval_runs")),
        sqlite_autoincrement=True,
    )
    _index("eval_runs", "project_id", "id")
    _index("eval_runs", "project_id", "config_hash")
    op.create_table(
        "eval_results",
        _id(),
        sa.Column("run_id", ROW_ID, nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("item_key", sa.String(length=200), nullable=False),
        sa.Column("repeat", sa.Integer(), nullable=False),
        sa.Column("variant", sa.String(length=64), nullable=False),
        sa.Column("family", sa.String(length=64), nullable=True),
        sa.Column("input", JSON, nullable=True),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_kind", sa.String(length=32), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("input_tokens", sa.Integer(), nullable=True),
        sa.Column("output_tokens", sa.Integer(), nullable=True),
        sa.Column("scores", JSON, nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("cached", sa.Boolean(), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=True),
        _created(),
        _fk("eval_results", "run_id", "eval_runs"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eval_results")),
        _unique("eval_results", "run_id", "item_key", "repeat", "variant"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "eval_output_cache",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("cache_key", sa.String(length=64), nullable=False),
        sa.Column("reply", JSON, nullable=False),
        _created(),
        sa.PrimaryKeyConstraint("project_id", "cache_key", name=op.f("pk_eval_output_cache")),
    )


def downgrade() -> None:
    for table in ("eval_output_cache", "eval_results", "eval_runs", "dataset_items", "dataset_versions"):
        op.drop_table(table)
    op.drop_table("datasets")
