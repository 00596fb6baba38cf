"""monitoring: monitors, alert channels and history, drift references, online evaluators,
resource samples

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _id() -> sa.Column[int]:
    return sa.Column("id", ROW_ID, autoincrement=True, nullable=False)


def _project(table: str) -> tuple[sa.Column[int], sa.ForeignKeyConstraint]:
    return (
        sa.Column("project_id", ROW_ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f(f"fk_{table}_project_id_projects"), ondelete="CASCADE"
        ),
    )


def upgrade() -> None:
    op.create_table(
        "monitors",
        _id(),
        *_project("monitors"),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("spec", JSON, nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("state_since_unix_nano", sa.BigInteger(), nullable=False),
        sa.Column("pending_state", sa.String(length=16), nullable=True),
        sa.Column("pending_count", sa.Integer(), nullable=False),
        sa.Column("last_value", sa.Float(), nullable=True),
        sa.Column("last_message", sa.Text(), nullable=True),
        sa.Column("last_evaluated_at_unix_nano", sa.BigInteger(), nullable=True),
        sa.Column("last_notified_at_unix_nano", sa.BigInteger(), nullable=True),
        sa.Column("next_run_at_unix_nano", sa.BigInteger(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until_unix_nano", sa.BigInteger(), nullable=True),
        sa.Column("created_at_unix_nano", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_unix_nano", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitors")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_monitors_project_id_name")),
    )
    op.create_index(
        op.f("ix_monitors_enabled_next_run_at_unix_nano"), "monitors", ["enabled", "next_run_at_unix_nano"]
    )
    op.create_table(
        "alert_channels",
        _id(),
        *_project("alert_channels"),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("config", JSON, nullable=False),
        sa.Column("created_at_unix_nano", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_channels")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_alert_channels_project_id_name")),
    )
    op.create_table(
        "alert_events",
        _id(),
        *_project("alert_events"),
        sa.Column("monitor_id", sa.BigInteger(), nullable=False),
        sa.Column("monitor_name", sa.String(length=200), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=False),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("deliveries", JSON, nullable=True),
        sa.Column("created_at_unix_nano", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_events")),
    )
    op.create_index(
        op.f("ix_alert_events_project_id_created_at_unix_nano"),
        "alert_events",
        ["project_id", "created_at_unix_nano"],
    )
    op.create_index(
        op.f("ix_alert_events_project_id_monitor_id_created_at_unix_nano"),
        "alert_events",
        ["project_id", "monitor_id", "created_at_unix_nano"],
    )
    op.create_table(
        "drift_references",
        _id(),
        *_project("drift_references"),
        sa.Column("cache_key", sa.String(length=64), nullable=False),
        sa.Column("summary", JSON, nullable=False),
        sa.Column("created_at_unix_nano", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drift_references")),
        sa.UniqueConstraint("project_id", "cache_key", name=op.f("uq_drift_references_project_id_cache_key")),
    )
    op.create_table(
        "online_evaluators",
        _id(),
        *_project("online_evaluators"),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("evaluator", sa.String(length=64), nullable=False),
        sa.Column("params", JSON, nullable=True),
        sa.Column("sample_rate", sa.Float(), nullable=False),
        sa.Column("model", sa.String(length=256), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("last_span_row_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at_unix_nano", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_online_evaluators")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_online_evaluators_project_id_name")),
    )
    op.create_table(
        "resource_samples",
        _id(),
        sa.Column("sampled_at_unix_nano", sa.BigInteger(), nullable=False),
        sa.Column("host", sa.String(length=256), nullable=False),
        sa.Column("process", sa.String(length=128), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resource_samples")),
    )
    op.create_index(
        op.f("ix_resource_samples_metric_sampled_at_unix_nano"),
        "resource_samples",
        ["metric", "sampled_at_unix_nano"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_resource_samples_metric_sampled_at_unix_nano"), table_name="resource_samples")
    op.drop_table("resource_samples")
    op.drop_table("online_evaluators")
    op.drop_table("drift_references")
    op.drop_index(
        op.f("ix_alert_events_project_id_monitor_id_created_at_unix_nano"), table_name="alert_events"
    )
    op.drop_index(op.f("ix_alert_events_project_id_created_at_unix_nano"), table_name="alert_events")
    op.drop_table("alert_events")
    op.drop_table("alert_channels")
    op.drop_index(op.f("ix_monitors_enabled_next_run_at_unix_nano"), table_name="monitors")
    op.drop_table("monitors")
