"""Collaboration: annotation queues, comments with mentions, the activity feed; silences

Annotation queues hold traces to label; each annotator's label is a row, and the agreed
label becomes a categorical score's ground truth. Comments attach to a trace (later to
runs and versions) and may mention users. The activity feed records what people did.
A monitor may be silenced until a time: it is still evaluated, but notifies no channel.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _id() -> sa.Column[int]:
    return sa.Column("id", ROW_ID, autoincrement=True, nullable=False)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete="CASCADE"
    )


def _index(table: str, *columns: str) -> None:
    op.create_index(op.f(f"ix_{table}_{'_'.join(columns)}"), table, list(columns), unique=False)


def upgrade() -> None:
    op.create_table(
        "annotation_queues",
        _id(),
        sa.Column("project_id", ROW_ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("score_name", sa.String(length=256), nullable=False),
        sa.Column("labels", JSON, nullable=False),
        sa.Column("source", JSON, nullable=True),
        sa.Column("annotators_per_item", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.Column("created_at_unix_nano", sa.BigInteger(), nullable=False),
        _fk("annotation_queues", "project_id", "projects"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_annotation_queues")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_annotation_queues_project_id_name")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "annotation_items",
        _id(),
        sa.Column("queue_id", ROW_ID, nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("span_id", sa.String(length=16), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at_unix_nano", sa.BigInteger(), nullable=False),
        _fk("annotation_items", "queue_id", "annotation_queues"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_annotation_items")),
        sa.UniqueConstraint("queue_id", "trace_id", name=op.f("uq_annotation_items_queue_id_trace_id")),
    )
    _index("annotation_items", "queue_id", "position")
    op.create_table(
        "annotations",
        _id(),
        sa.Column("item_id", ROW_ID, nullable=False),
        sa.Column("queue_id", sa.BigInteger(), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", ROW_ID, nullable=False),
        sa.Column("label", sa.String(length=1024), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at_unix_nano", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_unix_nano", sa.BigInteger(), nullable=False),
        _fk("annotations", "item_id", "annotation_items"),
        _fk("annotations", "user_id", "users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_annotations")),
        sa.UniqueConstraint("item_id", "user_id", name=op.f("uq_annotations_item_id_user_id")),
    )
    _index("annotations", "queue_id", "user_id")
    op.create_table(
        "comments",
        _id(),
        sa.Column("project_id", ROW_ID, nullable=False),
        sa.Column("target_kind", sa.String(length=16), nullable=False),
        sa.Column("target_id", sa.String(length=128), nullable=False),
        sa.Column("author_user_id", sa.BigInteger(), nullable=True),
        sa.Column("author_key_id", sa.BigInteger(), nullable=True),
        sa.Column("author_name", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at_unix_nano", sa.BigInteger(), nullable=False),
        sa.Column("edited_at_unix_nano", sa.BigInteger(), nullable=True),
        sa.Column("deleted_at_unix_nano", sa.BigInteger(), nullable=True),
        _fk("comments", "project_id", "projects"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comments")),
        sqlite_autoincrement=True,
    )
    _index("comments", "project_id", "target_kind", "target_id", "created_at_unix_nano")
    op.create_table(
        "mentions",
        _id(),
        sa.Column("comment_id", ROW_ID, nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", ROW_ID, nullable=False),
        sa.Column("created_at_unix_nano", sa.BigInteger(), nullable=False),
        sa.Column("read_at_unix_nano", sa.BigInteger(), nullable=True),
        _fk("mentions", "comment_id", "comments"),
        _fk("mentions", "user_id", "users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mentions")),
        sa.UniqueConstraint("comment_id", "user_id", name=op.f("uq_mentions_comment_id_user_id")),
    )
    _index("mentions", "user_id", "created_at_unix_nano")
    op.create_table(
        "activity",
        _id(),
        sa.Column("project_id", ROW_ID, nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("actor_user_id", sa.BigInteger(), nullable=True),
        sa.Column("verb", sa.String(length=32), nullable=False),
        sa.Column("target_kind", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.String(length=128), nullable=False),
        sa.Column("summary", sa.String(length=500), nullable=False),
        sa.Column("created_at_unix_nano", sa.BigInteger(), nullable=False),
        _fk("activity", "project_id", "projects"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activity")),
    )
    _index("activity", "project_id", "created_at_unix_nano")
    with op.batch_alter_table("monitors") as batch_op:
        batch_op.add_column(sa.Column("silenced_until_unix_nano", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("silenced_by", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("silence_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("monitors") as batch_op:
        batch_op.drop_column("silence_reason")
        batch_op.drop_column("silenced_by")
        batch_op.drop_column("silenced_until_unix_nano")
    for table in ("activity", "mentions", "comments", "annotations", "annotation_items", "annotation_queues"):
        op.drop_table(table)
