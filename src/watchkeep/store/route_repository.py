"""Project routes edited through the API, stored so that every gateway process serves them.

The store keeps each route's validated spec as JSON and knows nothing of its meaning
(the gateway validates on the way in and again on load). Every edit bumps the
``gateway_routes`` revision in the same transaction, so a process polls one row to
learn whether anything changed, deletions included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from watchkeep.store.clock import now_ns
from watchkeep.store.tables import config_revisions, gateway_routes

REVISION_NAME = "gateway_routes"


@dataclass(frozen=True, slots=True)
class StoredRoute:
    """One project's route as stored: its name and spec."""

    project_id: int
    name: str
    spec: dict[str, Any]


class RouteRepository:
    """Reads and edits ``gateway_routes``; each edit bumps the revision."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def revision(self) -> int:
        """The number of edits so far (0 on a fresh store)."""
        with self._engine.connect() as conn:
            value = conn.execute(
                select(config_revisions.c.revision).where(config_revisions.c.name == REVISION_NAME)
            ).scalar()
        return int(value or 0)

    def load(self) -> tuple[int, list[StoredRoute]]:
        """The revision and every stored route, read in one transaction."""
        r, c = config_revisions.c, gateway_routes.c
        with self._engine.begin() as conn:
            revision = conn.execute(select(r.revision).where(r.name == REVISION_NAME)).scalar()
            rows = conn.execute(select(c.project_id, c.name, c.spec).order_by(c.project_id, c.name)).all()
        return int(revision or 0), [StoredRoute(int(p), str(n), dict(s)) for p, n, s in rows]

    def put(self, project_id: int, name: str, spec: dict[str, Any]) -> None:
        """Create or replace the project's route ``name``."""
        try:
            self._put(project_id, name, spec)
        except IntegrityError:  # created by another process since our update: replace it
            self._put(project_id, name, spec)

    def _put(self, project_id: int, name: str, spec: dict[str, Any]) -> None:
        c = gateway_routes.c
        with self._engine.begin() as conn:
            changed = conn.execute(
                update(gateway_routes)
                .where(c.project_id == project_id, c.name == name)
                .values(spec=spec, updated_at_unix_nano=now_ns())
            ).rowcount
            if not changed:
                conn.execute(
                    insert(gateway_routes).values(
                        project_id=project_id, name=name, spec=spec, updated_at_unix_nano=now_ns()
                    )
                )
            bump_revision(conn)

    def delete(self, project_id: int, name: str) -> bool:
        """Remove the project's route ``name``; whether there was one."""
        c = gateway_routes.c
        with self._engine.begin() as conn:
            removed = conn.execute(delete(gateway_routes).where(c.project_id == project_id, c.name == name))
            if not removed.rowcount:
                return False
            bump_revision(conn)
        return True


def bump_revision(conn: Connection) -> None:
    """Tell every gateway process to reload its routes, in the caller's transaction (a route
    edit, or an alias move that changes what a route's registry references resolve to)."""
    r = config_revisions.c
    conn.execute(update(config_revisions).where(r.name == REVISION_NAME).values(revision=r.revision + 1))
