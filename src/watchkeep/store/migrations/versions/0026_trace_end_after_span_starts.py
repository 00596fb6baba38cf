"""a trace ends no earlier than any of its spans starts

A trace's end was the latest end of its spans, so a malformed span that ends before it
starts could start after its trace's end. The OTLP decoders refuse such a span, but a
writer that does not pass through them could store one; trace rows now count its start as
its end (``rows.summarise_traces``), and this revision extends the trace rows already
stored the same way. The span list reads only the traces that end at or after a bound it picks
(``span_list.span_page``), which needs every span of a trace to start no later than its end.

One pass over the spans (the malformed ones are few), then an update of their traces.

Revision ID: 0026
Revises: 0025
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

LATEST_START = "(SELECT MAX(s.start_time_unix_nano) FROM spans s WHERE s.trace_row_id = traces.id)"


def upgrade() -> None:
    op.execute(
        f"UPDATE traces SET end_time_unix_nano = {LATEST_START} "
        "WHERE id IN (SELECT trace_row_id FROM spans WHERE start_time_unix_nano > end_time_unix_nano) "
        f"AND end_time_unix_nano < {LATEST_START}"
    )


def downgrade() -> None:
    """Nothing to undo: the extended ends are what ingest now writes."""
