"""PostgreSQL: the spans start-time index carries the columns metrics read; inserts vacuum

Metrics over a day of a 10M-span store read 333k spans. Through the (project, start) index
each was a heap visit (about 44k pages); with the metric columns INCLUDEd the scan is
index-only. Index-only scans skip the heap only for pages marked all-visible, which
vacuum does: by default an insert-only table is vacuumed after inserts of a fifth of its
size (days of traffic at 10M), so spans is vacuumed every 100k inserts instead (ADR 0026).
SQLite keeps its index as it is.

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

INDEX = "ix_spans_project_id_start_time_unix_nano"
KEY = ["project_id", "start_time_unix_nano"]
# as tables.METRIC_COLUMNS
INCLUDED = [
    "request_model",
    "response_model",
    "provider",
    "model_version",
    "prompt_version",
    "status_code",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "duration_ms",
    "time_to_first_token_ms",
]
VACUUM_INSERTS = "autovacuum_vacuum_insert_threshold = 100000, autovacuum_vacuum_insert_scale_factor = 0"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index(INDEX, table_name="spans")
    op.create_index(INDEX, "spans", KEY, postgresql_include=INCLUDED)
    op.execute(f"ALTER TABLE spans SET ({VACUUM_INSERTS})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "ALTER TABLE spans RESET (autovacuum_vacuum_insert_threshold, autovacuum_vacuum_insert_scale_factor)"
    )
    op.drop_index(INDEX, table_name="spans")
    op.create_index(INDEX, "spans", KEY)
