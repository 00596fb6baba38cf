"""People: organisations, users, memberships, console sessions and invitations

Users log in to the console (keys stay for machines). A project belongs to an
organisation; every project that exists before this revision is put in one organisation
named ``default``. Session and invitation tokens are stored as SHA-256 digests only.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _id() -> sa.Column[int]:
    return sa.Column("id", ROW_ID, autoincrement=True, nullable=False)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "organisations",
        _id(),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at_unix_nano", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisations")),
        sa.UniqueConstraint("name", name=op.f("uq_organisations_name")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "users",
        _id(),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=True),
        sa.Column("created_at_unix_nano", sa.BigInteger(), nullable=False),
        sa.Column("disabled_at_unix_nano", sa.BigInteger(), nullable=True),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until_unix_nano", sa.BigInteger(), nullable=True),
        sa.Column("last_login_at_unix_nano", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "memberships",
        _id(),
        sa.Column("organisation_id", ROW_ID, nullable=False),
        sa.Column("user_id", ROW_ID, nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at_unix_nano", sa.BigInteger(), nullable=False),
        _fk("memberships", "organisation_id", "organisations"),
        _fk("memberships", "user_id", "users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memberships")),
        sa.UniqueConstraint(
            "organisation_id", "user_id", name=op.f("uq_memberships_organisation_id_user_id")
        ),
    )
    op.create_index(op.f("ix_memberships_user_id"), "memberships", ["user_id"], unique=False)
    op.create_table(
        "project_memberships",
        _id(),
        sa.Column("project_id", ROW_ID, nullable=False),
        sa.Column("user_id", ROW_ID, nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at_unix_nano", sa.BigInteger(), nullable=False),
        _fk("project_memberships", "project_id", "projects"),
        _fk("project_memberships", "user_id", "users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project_memberships")),
        sa.UniqueConstraint("project_id", "user_id", name=op.f("uq_project_memberships_project_id_user_id")),
    )
    op.create_index(op.f("ix_project_memberships_user_id"), "project_memberships", ["user_id"], unique=False)
    op.create_table(
        "user_sessions",
        _id(),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", ROW_ID, nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at_unix_nano", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_at_unix_nano", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_unix_nano", sa.BigInteger(), nullable=False),
        sa.Column("user_agent", sa.String(length=300), nullable=True),
        sa.Column("address", sa.String(length=64), nullable=True),
        _fk("user_sessions", "user_id", "users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_user_sessions_token_hash")),
    )
    op.create_index(
        op.f("ix_user_sessions_expires_at_unix_nano"), "user_sessions", ["expires_at_unix_nano"], unique=False
    )
    op.create_index(op.f("ix_user_sessions_user_id"), "user_sessions", ["user_id"], unique=False)
    op.create_table(
        "invitations",
        _id(),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("organisation_id", ROW_ID, nullable=False),
        sa.Column("project_id", ROW_ID, nullable=True),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("invited_by_user_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at_unix_nano", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_unix_nano", sa.BigInteger(), nullable=False),
        sa.Column("accepted_at_unix_nano", sa.BigInteger(), nullable=True),
        sa.Column("accepted_by_user_id", sa.BigInteger(), nullable=True),
        sa.Column("revoked_at_unix_nano", sa.BigInteger(), nullable=True),
        _fk("invitations", "organisation_id", "organisations"),
        _fk("invitations", "project_id", "projects"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_invitations_token_hash")),
    )
    op.create_index(
        op.f("ix_invitations_organisation_id_created_at_unix_nano"),
        "invitations",
        ["organisation_id", "created_at_unix_nano"],
        unique=False,
    )
    with op.batch_alter_table("projects") as batch_op:
        batch_op.add_column(sa.Column("organisation_id", sa.BigInteger(), nullable=True))
        batch_op.create_index(batch_op.f("ix_projects_organisation_id"), ["organisation_id"], unique=False)
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT count(*) FROM projects")).scalar_one():
        bind.execute(
            sa.text("INSERT INTO organisations (name, created_at_unix_nano) VALUES ('default', :now)"),
            {"now": time.time_ns()},
        )
        bind.execute(
            sa.text(
                "UPDATE projects SET organisation_id = (SELECT id FROM organisations WHERE name = 'default')"
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch_op:
        batch_op.drop_index(batch_op.f("ix_projects_organisation_id"))
        batch_op.drop_column("organisation_id")
    for table in (
        "invitations",
        "user_sessions",
        "project_memberships",
        "memberships",
        "users",
        "organisations",
    ):
        op.drop_table(table)
