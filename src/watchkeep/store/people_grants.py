"""Granting a console role inside a caller's transaction: shared by memberships and the
acceptance of invitations, so both write roles the same way."""

from __future__ import annotations

from sqlalchemy import Connection, and_, insert, select, update

from watchkeep.store.clock import now_ns
from watchkeep.store.tables import memberships, project_memberships

# The order of the console roles, lowest first (the same as ``security.authz.UserRole``,
# which the store may not import): an invitation never lowers a role someone already has.
ROLE_ORDER = ("viewer", "member", "admin", "owner")


def higher_role(current: str | None, granted: str) -> str:
    """The higher of two console roles (an unknown current role counts as none)."""
    if current not in ROLE_ORDER:
        return granted
    return max(current, granted, key=ROLE_ORDER.index)


def set_membership(conn: Connection, organisation_id: int, user_id: int, role: str) -> None:
    """Give ``user_id`` ``role`` in the organisation (added or changed)."""
    where = and_(memberships.c.organisation_id == organisation_id, memberships.c.user_id == user_id)
    if not conn.execute(update(memberships).where(where).values(role=role)).rowcount:
        conn.execute(
            insert(memberships).values(
                organisation_id=organisation_id, user_id=user_id, role=role, created_at_unix_nano=now_ns()
            )
        )


def set_project_membership(conn: Connection, project_id: int, user_id: int, role: str) -> None:
    """Give ``user_id`` ``role`` in the project, over its organisation role."""
    where = and_(project_memberships.c.project_id == project_id, project_memberships.c.user_id == user_id)
    if not conn.execute(update(project_memberships).where(where).values(role=role)).rowcount:
        conn.execute(
            insert(project_memberships).values(
                project_id=project_id, user_id=user_id, role=role, created_at_unix_nano=now_ns()
            )
        )


def grant(conn: Connection, organisation_id: int, project_id: int | None, user_id: int, role: str) -> None:
    """Grant ``role`` in the organisation (or in one of its projects when ``project_id``),
    keeping a higher role the user already holds there."""
    if project_id is None:
        table, where = memberships, memberships.c.organisation_id == organisation_id
    else:
        table, where = project_memberships, project_memberships.c.project_id == project_id
    current = conn.execute(select(table.c.role).where(where, table.c.user_id == user_id)).scalar()
    if project_id is None:
        set_membership(conn, organisation_id, user_id, higher_role(current, role))
    else:
        set_project_membership(conn, project_id, user_id, higher_role(current, role))
