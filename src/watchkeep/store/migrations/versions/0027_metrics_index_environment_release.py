"""PostgreSQL: the metrics index also carries environment, release and the trace's row id

Metrics filtered by environment or release read a span's own value, else its trace's
(``store.trace_attributes.span_attribute_is``). Neither column was in the covering
start-time index (revision 0023), so such a query visited the heap for every span of its
window: at 10M spans a day's metrics for one environment took 172-196 ms p50, 191-230 p95,
against 119-127 / 127-152 unfiltered (issue 17). With them, and the trace's row id the
fallback probe joins on, the scan is index-only again. SQLite keeps its index as it is.

Rebuilding the index reads the spans table once (about a minute at 10M spans).

Revision ID: 0027
Revises: 0026
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

INDEX = "ix_spans_project_id_start_time_unix_nano"
KEY = ["project_id", "start_time_unix_nano"]
# as revision 0023
BEFORE = [
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
# as tables.METRIC_COLUMNS
AFTER = [*BEFORE, "environment", "release", "trace_row_id"]


def _rebuild(included: list[str]) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index(INDEX, table_name="spans")
    op.create_index(INDEX, "spans", KEY, postgresql_include=included)


def upgrade() -> None:
    _rebuild(AFTER)


def downgrade() -> None:
    _rebuild(BEFORE)
