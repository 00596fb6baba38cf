"""traces are indexed by release and by environment

Span filters and monitor windows on ``release`` or ``environment`` match a span by its own
value or, when it has none, by its trace's (attributes set once per trace reach every
span whatever the export order). These indexes let that trace-side lookup, and the trace
list's own filters, seek instead of scanning a project's traces.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_traces_project_id_release_start_time_unix_nano",
        "traces",
        ["project_id", "release", "start_time_unix_nano"],
    )
    op.create_index(
        "ix_traces_project_id_environment_start_time_unix_nano",
        "traces",
        ["project_id", "environment", "start_time_unix_nano"],
    )


def downgrade() -> None:
    op.drop_index("ix_traces_project_id_environment_start_time_unix_nano", table_name="traces")
    op.drop_index("ix_traces_project_id_release_start_time_unix_nano", table_name="traces")
