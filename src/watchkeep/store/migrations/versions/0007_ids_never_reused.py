"""SQLite: projects, api_keys and monitors never hand a deleted row's id on (AUTOINCREMENT)

Without AUTOINCREMENT SQLite gives a new row the largest id plus one, so deleting the
newest project gave its id to the next project created: spans still queued for the old
project, keys cached by a server and anything else holding the id would then have
reached the new tenant. The same goes for key ids (the gateway's rate limits are per key
id) and monitor ids (alert history keeps the monitor id without a foreign key).
AUTOINCREMENT keeps the largest id ever used in ``sqlite_sequence``; it cannot be added
in place, so the three tables are rebuilt. The rebuild drops the old table, which with
foreign keys enforced would delete every row that references it (ON DELETE CASCADE):
``watchkeep.store.migrate.upgrade`` turns enforcement off while migrating, and this
revision refuses to run with it on. PostgreSQL sequences never hand a value out twice:
nothing changes there.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TABLES = ("projects", "api_keys", "monitors")


def _rebuild(autoincrement: bool) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError(
            "revision 0007 rebuilds tables that others reference: run it with SQLite foreign keys "
            "off (watchkeep db upgrade does), or the rebuild would cascade-delete their rows"
        )
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ) as batch_op:
            batch_op.alter_column("id", existing_nullable=False)  # the copy is the change


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
