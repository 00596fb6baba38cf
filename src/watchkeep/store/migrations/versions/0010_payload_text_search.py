"""Full-text search of prompt and response text

An index filled off the ingest path by ``watchkeep.store.text_search.SearchIndexer``:
SQLite gets an FTS5 table keyed by span row id, PostgreSQL a ``tsvector`` table under a
GIN index; ``search_index_state`` keeps the indexer's high-water mark (the largest span
row id passed). Spans stored before this revision are indexed by the first servers that
run it, a bounded batch at a time.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "search_index_state",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_search_index_state")),
    )
    op.execute("INSERT INTO search_index_state (name, position) VALUES ('payload_text', 0)")
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE search_fts USING fts5("
            "project_id UNINDEXED, body, tokenize = 'unicode61 remove_diacritics 2')"
        )
        return
    op.execute(
        "CREATE TABLE search_documents (span_row_id BIGINT PRIMARY KEY, "
        "project_id BIGINT NOT NULL, document TSVECTOR NOT NULL)"
    )
    op.execute("CREATE INDEX ix_search_documents_document ON search_documents USING GIN (document)")
    op.execute("CREATE INDEX ix_search_documents_project_id ON search_documents (project_id)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE search_fts")
    else:
        op.execute("DROP TABLE search_documents")
    op.drop_table("search_index_state")
