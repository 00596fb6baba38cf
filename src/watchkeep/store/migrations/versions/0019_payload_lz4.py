"""Payloads compressed with lz4 on PostgreSQL (ADR 0025)

New ``span_payloads`` values over PostgreSQL's TOAST threshold (a row of about 2 KB) are
compressed with lz4 instead of pglz: measured on PostgreSQL 15 (2-core VM, 10k rows of
two 3 KB messages), the backend's CPU to insert a row fell from 135 to 58 µs and to read
one from 14 to 9 µs, for about 5 % more stored bytes of the compressed column. Rows
under the threshold are not compressed at all (``toast_tuple_target`` does not change
that on insert), and existing values keep their method. A catalog change, no rewrite;
a server built without lz4 keeps pglz. SQLite: nothing to do.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def _set_compression(method: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql" or (bind.dialect.server_version_info or (0,)) < (14,):
        return
    op.execute(
        "DO $$ BEGIN "
        f"ALTER TABLE span_payloads ALTER COLUMN input SET COMPRESSION {method}, "
        f"ALTER COLUMN output SET COMPRESSION {method}; "
        "EXCEPTION WHEN feature_not_supported THEN "
        f"RAISE NOTICE 'compression method {method} not supported: span_payloads keeps its default'; "
        "END $$"
    )


def upgrade() -> None:
    _set_compression("lz4")


def downgrade() -> None:
    _set_compression("pglz")
