"""Comments on traces (later runs and versions) and the mentions they make.

Every lookup takes the project id, so one project's key or session never reaches another's
comments. A comment is written, its mentions resolved and its activity entry recorded in one
transaction. ``@handle`` resolves only to users who can open the project; any other handle
is ignored without a trace, so nobody learns who exists in another organisation.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, insert, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from watchkeep.store.activity_repository import record_in, restate_in
from watchkeep.store.clock import now_ns
from watchkeep.store.eval_tables import eval_runs
from watchkeep.store.tables import (
    api_keys,
    comments,
    memberships,
    mentions,
    project_memberships,
    projects,
    traces,
    users,
)
from watchkeep.store.trace_queries import Page, decode_cursor, encode_cursor

BODY_MAX_CHARS = 10_000
MAX_PAGE = 200
MAX_MENTIONS = 50  # distinct handles resolved per comment: bounds the lookup
MAX_COUNT_TARGETS = 500  # targets per ``counts`` call
EXCERPT_CHARS = 200


@dataclass(frozen=True, slots=True)
class TargetKind:
    """What can be commented on: the shape of its ids and how to tell that one exists."""

    id_pattern: re.Pattern[str]
    exists: Callable[[Connection, int, str], bool]


def _trace_exists(conn: Connection, project_id: int, trace_id: str) -> bool:
    found = conn.execute(
        select(traces.c.trace_id).where(traces.c.project_id == project_id, traces.c.trace_id == trace_id)
    ).first()
    return found is not None


def _run_exists(conn: Connection, project_id: int, run_id: str) -> bool:
    found = conn.execute(
        select(eval_runs.c.id).where(eval_runs.c.project_id == project_id, eval_runs.c.id == int(run_id))
    ).first()
    return found is not None


# The one place a commentable kind is declared. The validation work adds "run" and the
# release work "version", each with its id pattern and its existence check in the project.
TARGET_KINDS: dict[str, TargetKind] = {
    "trace": TargetKind(re.compile(r"[0-9a-f]{32}"), _trace_exists),
    "run": TargetKind(re.compile(r"[1-9][0-9]{0,17}"), _run_exists),
}

# ``@alice`` (an e-mail's local part) or ``@alice@example.com`` (the full address).
_HANDLE = re.compile(r"(?<![\w@.+-])@([a-z0-9._%+-]+(?:@[a-z0-9-]+(?:\.[a-z0-9-]+)+)?)", re.IGNORECASE)


class CommentError(Exception):
    """A refusal with a stable code and a message for the person who asked."""

    code = "invalid_comment"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidComment(CommentError):
    """Bad input: unknown kind, malformed id, empty or oversized body (the API's 422)."""


class TargetNotFound(CommentError):
    """The target is not in the project (the API's 404, whether or not it exists elsewhere)."""

    code = "not_found"


class CommentNotFound(CommentError):
    """No such live comment in the project (the API's 404)."""

    code = "not_found"


class NotAllowed(CommentError):
    """The caller may not change this comment (the API's 403)."""

    code = "forbidden"


@dataclass(frozen=True, slots=True)
class Author:
    """Who writes: a user of the console or an API key (exactly one of the two ids)."""

    name: str
    user_id: int | None = None
    key_id: int | None = None

    def wrote(self, row: dict[str, Any]) -> bool:
        """Whether this author wrote the comment ``row``."""
        if self.user_id is not None:
            return bool(row["author_user_id"] == self.user_id)
        return self.key_id is not None and row["author_key_id"] == self.key_id


@dataclass(frozen=True, slots=True)
class Mentioned:
    """A user a comment mentions."""

    user_id: int
    display_name: str


@dataclass(frozen=True, slots=True)
class Comment:
    """A live comment as readers see it."""

    id: int
    target_kind: str
    target_id: str
    author_name: str
    author_user_id: int | None
    author_key_id: int | None
    body: str
    created_at_unix_nano: int
    edited_at_unix_nano: int | None
    mentions: list[Mentioned] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class MentionItem:
    """One mention in a user's feed."""

    id: int
    project_id: int
    project_name: str
    comment_id: int
    target_kind: str
    target_id: str
    author_name: str
    excerpt: str
    created_at_unix_nano: int
    read_at_unix_nano: int | None


def check_target(kind: str, target_id: str) -> str:
    """The normalised target id (lower case); ``InvalidComment`` for an unknown kind or a
    malformed id."""
    spec = TARGET_KINDS.get(kind)
    if spec is None:
        raise InvalidComment(f"unknown target_kind {kind!r}; one of: {', '.join(sorted(TARGET_KINDS))}")
    normalised = target_id.strip().lower()
    if not spec.id_pattern.fullmatch(normalised):
        raise InvalidComment(f"target_id is not a valid {kind} id")
    return normalised


def check_body(body: str) -> str:
    """``body`` as given, or ``InvalidComment`` when it is blank, too long or holds NUL."""
    if not body.strip():
        raise InvalidComment("body is empty")
    if len(body) > BODY_MAX_CHARS:
        raise InvalidComment(f"body is longer than {BODY_MAX_CHARS} characters")
    if "\x00" in body:
        raise InvalidComment("body holds a NUL character")
    return body


def handles_in(body: str) -> list[str]:
    """The distinct ``@handles`` of ``body``, lower-cased, in order, at most ``MAX_MENTIONS``."""
    seen: dict[str, None] = {}
    for match in _HANDLE.finditer(body):
        handle = match.group(1).lower().rstrip(".")
        if handle:
            seen.setdefault(handle, None)
        if len(seen) >= MAX_MENTIONS:
            break
    return list(seen)


def visible_project_ids(user_id: int) -> ColumnElement[bool]:
    """The condition "``projects.id`` is a project ``user_id`` can open": a membership of its
    organisation, or a membership of the project itself."""
    in_org = projects.c.organisation_id.in_(
        select(memberships.c.organisation_id).where(memberships.c.user_id == user_id)
    )
    in_project = projects.c.id.in_(
        select(project_memberships.c.project_id).where(project_memberships.c.user_id == user_id)
    )
    return or_(in_org, in_project)


def _resolve(conn: Connection, project_id: int, handles: Sequence[str]) -> list[Mentioned]:
    """The users with access to ``project_id`` whom ``handles`` name. A local part that names
    several such users is ambiguous and resolves to none (the full address is needed)."""
    if not handles:
        return []
    full = [h for h in handles if "@" in h]
    local = [h for h in handles if "@" not in h]
    named: list[ColumnElement[bool]] = [users.c.email.in_(full)] if full else []
    named += [users.c.email.startswith(f"{h}@", autoescape=True) for h in local]
    org = select(projects.c.organisation_id).where(projects.c.id == project_id).scalar_subquery()
    access = or_(
        users.c.id.in_(select(memberships.c.user_id).where(memberships.c.organisation_id == org)),
        users.c.id.in_(
            select(project_memberships.c.user_id).where(project_memberships.c.project_id == project_id)
        ),
    )
    query = select(users.c.id, users.c.email, users.c.display_name).where(
        or_(*named), access, users.c.disabled_at_unix_nano.is_(None)
    )
    rows = conn.execute(query.limit(4 * MAX_MENTIONS)).all()
    found: dict[int, Mentioned] = {}
    for handle in handles:
        if "@" in handle:
            hits = [r for r in rows if r.email == handle]
        else:
            hits = [r for r in rows if r.email.split("@", 1)[0] == handle]
        if len(hits) == 1:
            found.setdefault(int(hits[0].id), Mentioned(int(hits[0].id), hits[0].display_name))
    return list(found.values())


def _excerpt(body: str, width: int = EXCERPT_CHARS) -> str:
    flat = " ".join(body.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


class CommentRepository:
    """Comments scoped to their project."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def key_author(self, project_id: int, key_id: int) -> Author:
        """The author for an API key of the project: its name, else ``key <prefix>``."""
        c = api_keys.c
        with self._engine.connect() as conn:
            row = conn.execute(
                select(c.name, c.prefix).where(c.id == key_id, c.project_id == project_id)
            ).first()
        name = (row.name or f"key {row.prefix}") if row is not None else f"key #{key_id}"
        return Author(name=name[:200], key_id=key_id)

    def add(
        self,
        project_id: int,
        author: Author,
        target_kind: str,
        target_id: str,
        body: str,
        *,
        mentions_from: str | None = None,
    ) -> Comment:
        """Store a comment on a target of the project, its mentions and a ``commented`` entry.

        ``mentions_from``: the text mentions are read from when it is not the stored body
        (the body as written, before PII masking hid an ``@address`` mention)."""
        target_id = check_target(target_kind, target_id)
        check_body(body)
        now = now_ns()
        with self._engine.begin() as conn:
            if not TARGET_KINDS[target_kind].exists(conn, project_id, target_id):
                raise TargetNotFound(f"no such {target_kind} in this project")
            key = conn.execute(
                insert(comments).values(
                    project_id=project_id,
                    target_kind=target_kind,
                    target_id=target_id,
                    author_user_id=author.user_id,
                    author_key_id=author.key_id,
                    author_name=author.name[:200],
                    body=body,
                    created_at_unix_nano=now,
                )
            ).inserted_primary_key
            assert key is not None
            comment_id = int(key[0])
            mentioned = self._sync_mentions(conn, project_id, comment_id, author, mentions_from or body)
            self._record(conn, project_id, author, "commented", comment_id, target_kind, target_id, body)
        return Comment(
            comment_id,
            target_kind,
            target_id,
            author.name[:200],
            author.user_id,
            author.key_id,
            body,
            now,
            None,
            mentioned,
        )

    def get(self, project_id: int, comment_id: int) -> Comment:
        """The live comment ``comment_id`` of the project; ``CommentNotFound`` otherwise."""
        with self._engine.connect() as conn:
            row = self._live_row(conn, project_id, comment_id)
            return self._with_mentions(conn, [row])[0]

    def list(
        self, project_id: int, target_kind: str, target_id: str, limit: int = 50, cursor: str | None = None
    ) -> Page[Comment]:
        """A target's live comments, oldest first (``InvalidCursor`` for a foreign cursor)."""
        target_id = check_target(target_kind, target_id)
        limit = max(1, min(limit, MAX_PAGE))
        c = comments.c
        cond = [
            c.project_id == project_id,
            c.target_kind == target_kind,
            c.target_id == target_id,
            c.deleted_at_unix_nano.is_(None),
        ]
        if cursor is not None:
            created, row_id = decode_cursor(cursor, (int, int))
            cond.append(
                or_(c.created_at_unix_nano > created, and_(c.created_at_unix_nano == created, c.id > row_id))
            )
        query = select(comments).where(*cond).order_by(c.created_at_unix_nano, c.id).limit(limit + 1)
        with self._engine.connect() as conn:
            if not TARGET_KINDS[target_kind].exists(conn, project_id, target_id):
                raise TargetNotFound(f"no such {target_kind} in this project")
            rows = [dict(r._mapping) for r in conn.execute(query)]
            items = self._with_mentions(conn, rows[:limit])
        more = len(rows) > limit
        last = rows[limit - 1] if more else None
        return Page(items, encode_cursor(last["created_at_unix_nano"], last["id"]) if last else None)

    def counts(self, project_id: int, target_kind: str, target_ids: Iterable[str]) -> dict[str, int]:
        """Live comments per target (targets without any are left out), for list pages;
        at most ``MAX_COUNT_TARGETS`` targets are counted."""
        wanted = sorted({t.lower() for t in target_ids})[:MAX_COUNT_TARGETS]
        if not wanted:
            return {}
        c = comments.c
        query = (
            select(c.target_id, func.count())
            .where(
                c.project_id == project_id,
                c.target_kind == target_kind,
                c.target_id.in_(wanted),
                c.deleted_at_unix_nano.is_(None),
            )
            .group_by(c.target_id)
        )
        with self._engine.connect() as conn:
            return {str(t): int(n) for t, n in conn.execute(query)}

    def edit(
        self, project_id: int, comment_id: int, author: Author, body: str, *, mentions_from: str | None = None
    ) -> Comment:
        """Replace the body (its author only): sets ``edited_at``, re-resolves mentions (a
        user still mentioned keeps the read state) and records ``edited`` (``mentions_from``
        as in ``add``)."""
        check_body(body)
        with self._engine.begin() as conn:
            row = self._live_row(conn, project_id, comment_id)
            if not author.wrote(row):
                raise NotAllowed("only the author can edit a comment")
            now = now_ns()
            conn.execute(
                update(comments).where(comments.c.id == comment_id).values(body=body, edited_at_unix_nano=now)
            )
            self._sync_mentions(conn, project_id, comment_id, author, mentions_from or body)
            self._record(
                conn,
                project_id,
                author,
                "edited",
                comment_id,
                row["target_kind"],
                row["target_id"],
                body,
                row["created_at_unix_nano"],
            )
            row.update(body=body, edited_at_unix_nano=now)
            return self._with_mentions(conn, [row])[0]

    def delete(self, project_id: int, comment_id: int, author: Author, *, moderator: bool = False) -> None:
        """Soft-delete (its author, or a ``moderator``: a project admin); the body is kept
        out of every answer from then on and its mentions leave the feeds."""
        with self._engine.begin() as conn:
            row = self._live_row(conn, project_id, comment_id)
            if not (moderator or author.wrote(row)):
                raise NotAllowed("only the author or a project admin can delete a comment")
            conn.execute(
                update(comments).where(comments.c.id == comment_id).values(deleted_at_unix_nano=now_ns())
            )
            self._record(
                conn,
                project_id,
                author,
                "deleted",
                comment_id,
                row["target_kind"],
                row["target_id"],
                None,
                row["created_at_unix_nano"],
            )

    # --- mentions: a user's feed across the projects they can open -------------------

    def mentions_for(
        self, user_id: int, limit: int = 50, before_id: int | None = None, *, unread_only: bool = False
    ) -> builtins.list[MentionItem]:
        """``user_id``'s mentions newest first, only in projects the user can open now and
        only of live comments; page on with ``before_id`` (the last item's id)."""
        limit = max(1, min(limit, MAX_PAGE))
        m, c = mentions.c, comments.c
        query = (
            select(
                m.id,
                m.project_id,
                projects.c.name.label("project_name"),
                m.comment_id,
                c.target_kind,
                c.target_id,
                c.author_name,
                c.body,
                m.created_at_unix_nano,
                m.read_at_unix_nano,
            )
            .join(comments, comments.c.id == m.comment_id)
            .join(projects, projects.c.id == m.project_id)
            .where(*self._feed_conditions(user_id, unread_only))
            .order_by(m.id.desc())
            .limit(limit)
        )
        if before_id is not None:
            query = query.where(m.id < before_id)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            MentionItem(
                int(r.id),
                int(r.project_id),
                r.project_name,
                int(r.comment_id),
                r.target_kind,
                r.target_id,
                r.author_name,
                _excerpt(r.body),
                int(r.created_at_unix_nano),
                r.read_at_unix_nano,
            )
            for r in rows
        ]

    def unread_count(self, user_id: int) -> int:
        """How many of ``user_id``'s visible mentions are unread."""
        query = (
            select(func.count())
            .select_from(
                mentions.join(comments, comments.c.id == mentions.c.comment_id).join(
                    projects, projects.c.id == mentions.c.project_id
                )
            )
            .where(*self._feed_conditions(user_id, unread_only=True))
        )
        with self._engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def mark_read(self, user_id: int, mention_ids: Sequence[int] | None = None) -> int:
        """Mark ``user_id``'s mentions read (the given ones, at most ``MAX_PAGE``, or all);
        how many changed. Another user's mention ids change nothing."""
        m = mentions.c
        cond = [m.user_id == user_id, m.read_at_unix_nano.is_(None)]
        if mention_ids is not None:
            cond.append(m.id.in_(list(mention_ids)[:MAX_PAGE]))
        with self._engine.begin() as conn:
            return int(
                conn.execute(update(mentions).where(*cond).values(read_at_unix_nano=now_ns())).rowcount
            )

    # --- internals ---------------------------------------------------------------------

    @staticmethod
    def _feed_conditions(user_id: int, unread_only: bool) -> builtins.list[ColumnElement[bool]]:
        cond = [
            mentions.c.user_id == user_id,
            comments.c.deleted_at_unix_nano.is_(None),
            visible_project_ids(user_id),
        ]
        if unread_only:
            cond.append(mentions.c.read_at_unix_nano.is_(None))
        return cond

    @staticmethod
    def _live_row(conn: Connection, project_id: int, comment_id: int) -> dict[str, Any]:
        c = comments.c
        row = conn.execute(
            select(comments).where(
                c.id == comment_id, c.project_id == project_id, c.deleted_at_unix_nano.is_(None)
            )
        ).first()
        if row is None:
            raise CommentNotFound("no such comment in this project")
        return dict(row._mapping)

    @staticmethod
    def _sync_mentions(
        conn: Connection, project_id: int, comment_id: int, author: Author, body: str
    ) -> builtins.list[Mentioned]:
        """Make the comment's mention rows those of ``body`` (the author never mentions itself)."""
        wanted = [u for u in _resolve(conn, project_id, handles_in(body)) if u.user_id != author.user_id]
        ids = {u.user_id for u in wanted}
        m = mentions.c
        have = {int(r[0]) for r in conn.execute(select(m.user_id).where(m.comment_id == comment_id))}
        if have - ids:
            conn.execute(
                delete(mentions).where(m.comment_id == comment_id, m.user_id.in_(sorted(have - ids)))
            )
        new = [
            {
                "comment_id": comment_id,
                "project_id": project_id,
                "user_id": uid,
                "created_at_unix_nano": now_ns(),
            }
            for uid in sorted(ids - have)
        ]
        if new:
            conn.execute(insert(mentions), new)
        return wanted

    @staticmethod
    def _with_mentions(conn: Connection, rows: builtins.list[dict[str, Any]]) -> builtins.list[Comment]:
        ids = [int(r["id"]) for r in rows]
        by_comment: dict[int, builtins.list[Mentioned]] = {i: [] for i in ids}
        if ids:
            query = (
                select(mentions.c.comment_id, users.c.id, users.c.display_name)
                .join(users, users.c.id == mentions.c.user_id)
                .where(mentions.c.comment_id.in_(ids))
                .order_by(mentions.c.id)
            )
            for comment_id, uid, name in conn.execute(query):
                by_comment[int(comment_id)].append(Mentioned(int(uid), name))
        return [
            Comment(
                id=int(r["id"]),
                target_kind=r["target_kind"],
                target_id=r["target_id"],
                author_name=r["author_name"],
                author_user_id=r["author_user_id"],
                author_key_id=r["author_key_id"],
                body=r["body"],
                created_at_unix_nano=int(r["created_at_unix_nano"]),
                edited_at_unix_nano=r["edited_at_unix_nano"],
                mentions=by_comment[int(r["id"])],
            )
            for r in rows
        ]

    @staticmethod
    def _record(
        conn: Connection,
        project_id: int,
        author: Author,
        verb: str,
        comment_id: int,
        kind: str,
        target_id: str,
        body: str | None,
        since_ns: int | None = None,
    ) -> None:
        """Record ``verb`` and restate the comment's earlier entries, so that a feed shows
        only its current body, and none once it is deleted (``body`` None); ``since_ns`` is
        the comment's creation (None for a new one: it has no earlier entries)."""
        prefix = f"comment #{comment_id}: "
        summary = prefix + ("(deleted)" if body is None else _excerpt(body))
        if since_ns is not None:
            restate_in(conn, project_id, (kind, target_id), prefix, summary, since_ns)
        record_in(
            conn,
            project_id,
            actor=author.name,
            actor_user_id=author.user_id,
            verb=verb,
            target_kind=kind,
            target_id=target_id,
            summary=summary,
        )
