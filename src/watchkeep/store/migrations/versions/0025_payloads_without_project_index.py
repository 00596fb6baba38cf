"""span_payloads loses its (project, span row id) index

Payloads are read by their span's row id, their primary key; the second index on
(project_id, span_row_id) served only project deletion, which now finds a project's
payloads through its spans (``project_deletion``). Each stored span cost one more index
entry to write: on PostgreSQL 0.6 µs of the database's time a span (``COPY span_payloads``
5.8 → 5.2 µs, writer alone, issue 17) and about 40 bytes.

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

INDEX = "ix_span_payloads_project_id_span_row_id"


def upgrade() -> None:
    op.drop_index(INDEX, table_name="span_payloads")


def downgrade() -> None:
    op.create_index(INDEX, "span_payloads", ["project_id", "span_row_id"])
