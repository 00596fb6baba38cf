"""Closed buckets of anomaly monitors' metric series

``monitor_series_buckets`` keeps each closed (settled) bucket of a series an anomaly
monitor watches, one row per metric, keyed by project, a hash of the series' definition
(filter, bucket width), the metric and the bucket start: a restarted worker's first pass
reads its reference buckets back instead of rescanning a day of spans (decision 0009).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "monitor_series_buckets",
        sa.Column("project_id", ROW_ID, nullable=False),
        sa.Column("series_key", sa.String(length=64), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("start_unix_nano", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("created_at_unix_nano", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_monitor_series_buckets_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "project_id", "series_key", "metric", "start_unix_nano", name=op.f("pk_monitor_series_buckets")
        ),
    )


def downgrade() -> None:
    op.drop_table("monitor_series_buckets")
