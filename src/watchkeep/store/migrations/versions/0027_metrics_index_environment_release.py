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

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

INDEX = "ix_spans_project_id_start_time_unix_nano"
KEY = ["project_id", "start_time_unix_nano"]
ADDED = ["environment", "release", "trace_row_id"]  # after revision 0023's columns
# The index's INCLUDE columns in order, as the catalog has them (those past its key columns).
_INCLUDED = sa.text(
    "SELECT a.attname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
    "CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n) "
    "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
    "WHERE c.relname = :name AND k.n > i.indnkeyatts ORDER BY k.n"
)


def _rebuild(change: Callable[[list[str]], list[str]]) -> None:
    """Recreate the index with ``change`` applied to its INCLUDE columns."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    included = [str(name) for name in bind.execute(_INCLUDED, {"name": INDEX}).scalars()]
    op.drop_index(INDEX, table_name="spans")
    op.create_index(INDEX, "spans", KEY, postgresql_include=change(included))


def upgrade() -> None:
    _rebuild(lambda included: [*included, *(c for c in ADDED if c not in included)])


def downgrade() -> None:
    _rebuild(lambda included: [c for c in included if c not in ADDED])
