"""Spans keyed by (trace row id, span id); traces get a stable row id

A span write probed and dirtied a random leaf of the spans' unique key (project, trace,
span) a span: at 2M stored SQLite spans, 0.54 of the 2.07 WAL pages a span wrote. Ingest
now upserts the trace first and stores its row id on each span; a new trace's id is the
largest yet, so its spans' keys land at the right edge of the new key (ADR 0032).

``traces`` gains ``id`` (SQLite: INTEGER PRIMARY KEY AUTOINCREMENT, keeping each row's
rowid, so a deleted trace's id is never handed on; PostgreSQL: a bigserial) and keeps
(project, trace) as a unique key. Spans whose trace row is gone (retention deletes a trace
whose span pass stopped at its batch limit) first get a trace row, so every span has one.
SQLite rebuilds both tables (a constraint cannot be dropped in place); PostgreSQL alters
them and rewrites every span row once (run ``VACUUM spans`` after on a large store).

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_NEW_SPAN_KEY = "uq_spans_trace_row_id_span_id"
_OLD_SPAN_KEY = "uq_spans_project_id_trace_id_span_id"
_TRACE_KEY = "uq_traces_project_id_trace_id"
_SPAN_INDEXES = {
    "ix_spans_project_id_start_time_unix_nano": ["project_id", "start_time_unix_nano"],
    "ix_spans_project_id_request_model_start_time_unix_nano": [
        "project_id",
        "request_model",
        "start_time_unix_nano",
    ],
}
_TRACE_INDEXES = {
    f"ix_traces_project_id_{name}start_time_unix_nano_trace_id": [
        "project_id",
        *key,
        "start_time_unix_nano",
        "trace_id",
    ]
    for name, key in (
        ("", []),
        ("user_id_", ["user_id"]),
        ("session_id_", ["session_id"]),
        ("release_", ["release"]),
        ("environment_", ["environment"]),
    )
}


def _sqlite() -> bool:
    return bool(op.get_bind().dialect.name == "sqlite")


def _add_orphan_traces() -> None:
    """A trace row (times and error flag from its spans) for every trace that has spans
    and no row."""
    has_error = "max(s.status_code = 2)" if _sqlite() else "bool_or(s.status_code = 2)"
    op.execute(
        "INSERT INTO traces (project_id, trace_id, start_time_unix_nano, end_time_unix_nano, has_error) "
        f"SELECT s.project_id, s.trace_id, min(s.start_time_unix_nano), max(s.end_time_unix_nano), {has_error} "
        "FROM spans s WHERE NOT EXISTS (SELECT 1 FROM traces t "
        "WHERE t.project_id = s.project_id AND t.trace_id = s.trace_id) GROUP BY s.project_id, s.trace_id"
    )


def _rebuild(
    table: str,
    fill: str,
    *,
    first: Sequence[sa.Column[object]] = (),
    last: Sequence[sa.Column[object]] = (),
    drop: str | None = None,
    constraints: Sequence[sa.Constraint] = (),
    autoincrement: bool = False,
) -> None:
    """SQLite: ``table`` rebuilt from its reflected columns (less ``drop``; ``first`` before
    them and ``last`` after) under ``constraints``; ``fill`` copies the rows (formatted with
    ``new``, the new table's name, ``columns``, the reflected columns kept, and ``old``, the
    same prefixed with ``o.``); ``autoincrement``: SQLite's AUTOINCREMENT. The old table and its indexes are dropped, the new one
    renamed and given the table's indexes again."""
    old = sa.Table(table, sa.MetaData(), autoload_with=op.get_bind())
    kept = [sa.Column(c.name, c.type, nullable=c.nullable) for c in old.columns if c.name != drop]
    names = [c.name for c in kept]
    new_name = f"{table}_0024"
    op.create_table(new_name, *first, *kept, *last, *constraints, sqlite_autoincrement=autoincrement)
    op.execute(fill.format(new=new_name, columns=", ".join(names), old=", ".join(f"o.{n}" for n in names)))
    op.drop_table(table)
    op.rename_table(new_name, table)
    for name, key in (_SPAN_INDEXES if table == "spans" else _TRACE_INDEXES).items():
        op.create_index(name, table, key)
    if table == "traces":
        op.create_index(
            "ix_traces_tagged",
            "traces",
            ["project_id", "start_time_unix_nano", "trace_id"],
            sqlite_where=sa.text("tags IS NOT NULL"),
        )


def upgrade() -> None:
    _add_orphan_traces()
    if _sqlite():
        _rebuild(
            "traces",
            "INSERT INTO {new} (id, {columns}) SELECT rowid, {columns} FROM traces o ORDER BY rowid",
            first=[sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True)],
            constraints=[sa.UniqueConstraint("project_id", "trace_id", name=_TRACE_KEY)],
            autoincrement=True,
        )
        _rebuild(
            "spans",
            "INSERT INTO {new} ({columns}, trace_row_id) SELECT {old}, t.id FROM spans o "
            "JOIN traces t ON t.project_id = o.project_id AND t.trace_id = o.trace_id ORDER BY o.id",
            last=[sa.Column("trace_row_id", sa.Integer(), nullable=False)],
            constraints=[
                sa.PrimaryKeyConstraint("id", name="pk_spans"),
                sa.UniqueConstraint("trace_row_id", "span_id", name=_NEW_SPAN_KEY),
            ],
        )
        return
    op.execute("ALTER TABLE traces ADD COLUMN id BIGSERIAL")  # numbered in the rows' order on disk
    op.execute("ALTER TABLE traces DROP CONSTRAINT pk_traces")
    op.execute("ALTER TABLE traces ADD CONSTRAINT pk_traces PRIMARY KEY (id)")
    op.execute(f"ALTER TABLE traces ADD CONSTRAINT {_TRACE_KEY} UNIQUE (project_id, trace_id)")
    op.execute("ALTER TABLE spans ADD COLUMN trace_row_id BIGINT")
    op.execute(
        "UPDATE spans s SET trace_row_id = t.id FROM traces t "
        "WHERE t.project_id = s.project_id AND t.trace_id = s.trace_id"
    )
    op.execute("ALTER TABLE spans ALTER COLUMN trace_row_id SET NOT NULL")
    op.execute(f"ALTER TABLE spans DROP CONSTRAINT {_OLD_SPAN_KEY}")
    op.execute(f"ALTER TABLE spans ADD CONSTRAINT {_NEW_SPAN_KEY} UNIQUE (trace_row_id, span_id)")


def downgrade() -> None:
    # A span stored again under a newer row of its trace (its old row deleted by retention
    # before all its spans were) is kept once: the lowest row id.
    if _sqlite():
        _rebuild(
            "spans",
            "INSERT OR IGNORE INTO {new} ({columns}) SELECT {columns} FROM spans o ORDER BY id",
            drop="trace_row_id",
            constraints=[
                sa.PrimaryKeyConstraint("id", name="pk_spans"),
                sa.UniqueConstraint("project_id", "trace_id", "span_id", name=_OLD_SPAN_KEY),
            ],
        )
        _rebuild(
            "traces",
            "INSERT INTO {new} ({columns}) SELECT {columns} FROM traces o ORDER BY id",
            drop="id",
            constraints=[sa.PrimaryKeyConstraint("project_id", "trace_id", name="pk_traces")],
        )
        return
    op.execute(f"ALTER TABLE spans DROP CONSTRAINT {_NEW_SPAN_KEY}")
    op.execute(
        "DELETE FROM spans s USING spans d WHERE d.project_id = s.project_id "
        "AND d.trace_id = s.trace_id AND d.span_id = s.span_id AND d.id < s.id"
    )
    op.execute(f"ALTER TABLE spans ADD CONSTRAINT {_OLD_SPAN_KEY} UNIQUE (project_id, trace_id, span_id)")
    op.execute("ALTER TABLE spans DROP COLUMN trace_row_id")
    op.execute(f"ALTER TABLE traces DROP CONSTRAINT {_TRACE_KEY}")
    op.execute("ALTER TABLE traces DROP CONSTRAINT pk_traces")
    op.execute("ALTER TABLE traces ADD CONSTRAINT pk_traces PRIMARY KEY (project_id, trace_id)")
    op.execute("ALTER TABLE traces DROP COLUMN id")
