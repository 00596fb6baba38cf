"""The project's activity feed: one append-only row per thing a person or key did.

Every pillar records through ``ActivityRepository.record`` (or ``record_in`` inside its own
transaction, as comments do, so the entry commits with the change it describes); the feed
is read newest first, by row id, so a cursor is a plain id and pages never shift.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, insert, select, update

from watchkeep.store.clock import now_ns
from watchkeep.store.tables import activity

MAX_PAGE = 200
SUMMARY_MAX_CHARS = 500
# Column widths of the table: longer values are cut, never refused (recording must not fail
# the action it records).
_WIDTHS = {"actor": 200, "verb": 32, "target_kind": 32, "target_id": 128, "summary": SUMMARY_MAX_CHARS}


@dataclass(frozen=True, slots=True)
class ActivityEntry:
    """One thing done in a project."""

    id: int
    actor: str
    actor_user_id: int | None
    verb: str
    target_kind: str
    target_id: str
    summary: str
    created_at_unix_nano: int


@dataclass(frozen=True, slots=True)
class ActivityPage:
    """Entries newest first, and the ``before_id`` of the next page (None at the end)."""

    items: list[ActivityEntry]
    next_before_id: int | None


def _clean(value: str, width: int) -> str:
    """``value`` without NUL (PostgreSQL refuses it in text) and cut to the column's width."""
    return value.replace("\x00", "")[:width]


def record_in(
    conn: Connection,
    project_id: int,
    *,
    actor: str,
    actor_user_id: int | None,
    verb: str,
    target_kind: str,
    target_id: str,
    summary: str,
) -> None:
    """Append one entry inside the caller's transaction."""
    values = {
        "actor": actor,
        "verb": verb,
        "target_kind": target_kind,
        "target_id": target_id,
        "summary": summary,
    }
    conn.execute(
        insert(activity).values(
            project_id=project_id,
            actor_user_id=actor_user_id,
            created_at_unix_nano=now_ns(),
            **{name: _clean(value, _WIDTHS[name]) for name, value in values.items()},
        )
    )


def restate_in(
    conn: Connection,
    project_id: int,
    target: tuple[str, str],
    prefix: str,
    summary: str,
    since_ns: int,
) -> None:
    """Replace the summary of the target's entries since ``since_ns`` that start with
    ``prefix`` (a comment's entries once it is edited or deleted), inside the caller's
    transaction; ``since_ns`` keeps the scan to the project's index range."""
    c = activity.c
    conn.execute(
        update(activity)
        .where(
            c.project_id == project_id,
            c.created_at_unix_nano >= since_ns,
            c.target_kind == target[0],
            c.target_id == target[1],
            c.summary.startswith(prefix, autoescape=True),
        )
        .values(summary=_clean(summary, SUMMARY_MAX_CHARS))
    )


class ActivityRepository:
    """What people did in a project, newest first."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(
        self,
        project_id: int,
        *,
        actor: str,
        actor_user_id: int | None,
        verb: str,
        target_kind: str,
        target_id: str,
        summary: str,
    ) -> None:
        """Append one entry (``verb`` such as ``commented``, ``labelled``, ``edited``;
        ``summary`` is cut to 500 characters)."""
        with self._engine.begin() as conn:
            record_in(
                conn,
                project_id,
                actor=actor,
                actor_user_id=actor_user_id,
                verb=verb,
                target_kind=target_kind,
                target_id=target_id,
                summary=summary,
            )

    def list(
        self,
        project_id: int,
        limit: int = 50,
        before_id: int | None = None,
        *,
        verbs: Sequence[str] = (),
        actor: str | None = None,
        actor_user_id: int | None = None,
    ) -> ActivityPage:
        """The project's entries newest first; at most ``MAX_PAGE`` per page whatever is asked,
        optionally only some ``verbs`` or one actor (by name or by user id)."""
        limit = max(1, min(limit, MAX_PAGE))
        c = activity.c
        cond = [c.project_id == project_id]
        if before_id is not None:
            cond.append(c.id < before_id)
        if verbs:
            cond.append(c.verb.in_(sorted(set(verbs))))
        if actor is not None:
            cond.append(c.actor == actor)
        if actor_user_id is not None:
            cond.append(c.actor_user_id == actor_user_id)
        query = select(activity).where(*cond).order_by(c.id.desc()).limit(limit + 1)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        items = [
            ActivityEntry(
                id=int(r.id),
                actor=r.actor,
                actor_user_id=r.actor_user_id,
                verb=r.verb,
                target_kind=r.target_kind,
                target_id=r.target_id,
                summary=r.summary,
                created_at_unix_nano=int(r.created_at_unix_nano),
            )
            for r in rows[:limit]
        ]
        more = len(rows) > limit
        return ActivityPage(items, items[-1].id if more else None)
