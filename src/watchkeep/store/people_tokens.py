"""Console sessions and invitations: the two secrets a person is handed.

Both are 32 random bytes (URL-safe), returned once and stored only as their SHA-256 hex
digest, like API keys: a copy of the database opens no session and accepts no invitation.
A session slides: each use at least a minute after the last moves its end to a full
window (the one it was created with) past now, so an idle session ends and a busy one
does not. An invitation is single use: accepting it is one conditional UPDATE, so two
concurrent accepts cannot both succeed.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Row, Select, delete, insert, select, update

from watchkeep.store.clock import now_ns
from watchkeep.store.people_grants import grant
from watchkeep.store.tables import invitations, organisations, projects, user_sessions, users

SLIDE_EVERY_NS = 60 * 10**9  # a session's last use is written at most once a minute
INVITATION_TTL_NS = 7 * 24 * 3600 * 10**9


@dataclass(frozen=True, slots=True)
class User:
    """A person who can log in to the console."""

    id: int
    email: str
    display_name: str


@dataclass(frozen=True, slots=True)
class SessionUser:
    """The user behind a live console session."""

    session_id: int
    user: User
    csrf_token: str
    expires_at_unix_nano: int


@dataclass(frozen=True, slots=True)
class Invitation:
    """An invitation to an organisation (or one of its projects) with a role."""

    id: int
    organisation_id: int
    organisation_name: str
    project_id: int | None
    project_name: str | None
    email: str
    role: str
    invited_by_user_id: int | None
    created_at_unix_nano: int
    expires_at_unix_nano: int


class InvitationInvalid(Exception):
    """The invitation cannot be used (unknown, used, revoked, expired, or for someone else)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def token_digest(token: str) -> str:
    """The stored form of a session or invitation token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh secret token and its digest."""
    token = secrets.token_urlsafe(32)
    return token, token_digest(token)


def _invitation_query() -> Select[Any]:
    return (
        select(
            invitations,
            organisations.c.name.label("organisation_name"),
            projects.c.name.label("project_name"),
        )
        .join(organisations, organisations.c.id == invitations.c.organisation_id)
        .outerjoin(projects, projects.c.id == invitations.c.project_id)
    )


def _invitation(row: Row[Any]) -> Invitation:
    r = row
    return Invitation(
        id=int(r.id),
        organisation_id=int(r.organisation_id),
        organisation_name=str(r.organisation_name),
        project_id=r.project_id,
        project_name=r.project_name,
        email=str(r.email),
        role=str(r.role),
        invited_by_user_id=r.invited_by_user_id,
        created_at_unix_nano=int(r.created_at_unix_nano),
        expires_at_unix_nano=int(r.expires_at_unix_nano),
    )


class PeopleTokens:
    """Sessions and invitations (the base of ``PeopleRepository``)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # --- sessions ----------------------------------------------------------------------
    def create_session(
        self,
        user: User,
        *,
        lifetime_ns: int,
        user_agent: str | None = None,
        address: str | None = None,
        now: int | None = None,
    ) -> tuple[str, SessionUser]:
        """A new session of ``user`` lasting ``lifetime_ns`` past its last use; the token is
        returned once (only its digest is kept)."""
        now = now_ns() if now is None else now
        token, digest = new_token()
        csrf = secrets.token_urlsafe(32)
        expires = now + lifetime_ns
        with self._engine.begin() as conn:
            sid = conn.execute(
                insert(user_sessions).values(
                    token_hash=digest,
                    user_id=user.id,
                    csrf_token=csrf,
                    created_at_unix_nano=now,
                    last_seen_at_unix_nano=now,
                    expires_at_unix_nano=expires,
                    user_agent=None if user_agent is None else user_agent[:300],
                    address=None if address is None else address[:64],
                )
            ).inserted_primary_key
        assert sid is not None
        return token, SessionUser(
            session_id=int(sid[0]), user=user, csrf_token=csrf, expires_at_unix_nano=expires
        )

    def session_user(self, token: str, *, now: int | None = None) -> SessionUser | None:
        """The user behind session ``token`` (looked up by digest); None when unknown,
        expired, or the user is disabled. A use a minute or more after the last slides it."""
        now = now_ns() if now is None else now
        query = (
            select(user_sessions, users.c.email, users.c.display_name)
            .join(users, users.c.id == user_sessions.c.user_id)
            .where(
                user_sessions.c.token_hash == token_digest(token),
                user_sessions.c.expires_at_unix_nano > now,
                users.c.disabled_at_unix_nano.is_(None),
            )
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        expires = int(row.expires_at_unix_nano)
        if now - int(row.last_seen_at_unix_nano) >= SLIDE_EVERY_NS:
            expires = now + (expires - int(row.last_seen_at_unix_nano))
            with self._engine.begin() as conn:
                conn.execute(
                    update(user_sessions)
                    .where(user_sessions.c.id == row.id)
                    .values(last_seen_at_unix_nano=now, expires_at_unix_nano=expires)
                )
        user = User(id=int(row.user_id), email=str(row.email), display_name=str(row.display_name))
        return SessionUser(
            session_id=int(row.id), user=user, csrf_token=str(row.csrf_token), expires_at_unix_nano=expires
        )

    def delete_session(self, token: str) -> bool:
        """End the session of ``token``; False when there was none."""
        with self._engine.begin() as conn:
            done = conn.execute(
                delete(user_sessions).where(user_sessions.c.token_hash == token_digest(token))
            )
        return bool(done.rowcount)

    def delete_user_sessions(self, user_id: int) -> int:
        """End every session of the user (logout everywhere); how many ended."""
        with self._engine.begin() as conn:
            return int(conn.execute(delete(user_sessions).where(user_sessions.c.user_id == user_id)).rowcount)

    def purge_expired_sessions(self, now: int | None = None) -> int:
        """Delete the sessions that have ended (by the expiry index); how many."""
        now = now_ns() if now is None else now
        with self._engine.begin() as conn:
            gone = conn.execute(delete(user_sessions).where(user_sessions.c.expires_at_unix_nano <= now))
        return int(gone.rowcount)

    # --- invitations -------------------------------------------------------------------
    def create_invitation(
        self,
        organisation_id: int,
        email: str,
        role: str,
        *,
        project_id: int | None = None,
        invited_by_user_id: int | None = None,
        ttl_ns: int = INVITATION_TTL_NS,
        now: int | None = None,
    ) -> tuple[str, Invitation]:
        """A new invitation; the token is returned once (only its digest is kept)."""
        now = now_ns() if now is None else now
        token, digest = new_token()
        with self._engine.begin() as conn:
            iid = conn.execute(
                insert(invitations).values(
                    token_hash=digest,
                    organisation_id=organisation_id,
                    project_id=project_id,
                    email=email.strip().lower(),
                    role=role,
                    invited_by_user_id=invited_by_user_id,
                    created_at_unix_nano=now,
                    expires_at_unix_nano=now + ttl_ns,
                )
            ).inserted_primary_key
            assert iid is not None
            row = conn.execute(_invitation_query().where(invitations.c.id == iid[0])).one()
        return token, _invitation(row)

    def pending_invitations(
        self, organisation_id: int, now: int | None = None, limit: int = 1000
    ) -> list[Invitation]:
        """The organisation's invitations still usable, newest first."""
        now = now_ns() if now is None else now
        query = (
            _invitation_query()
            .where(
                invitations.c.organisation_id == organisation_id,
                invitations.c.accepted_at_unix_nano.is_(None),
                invitations.c.revoked_at_unix_nano.is_(None),
                invitations.c.expires_at_unix_nano > now,
            )
            .order_by(invitations.c.created_at_unix_nano.desc(), invitations.c.id.desc())
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [_invitation(r) for r in conn.execute(query).all()]

    def revoke_invitation(self, organisation_id: int, invitation_id: int) -> bool:
        """Revoke an unused invitation of the organisation (scoped to it); False if none."""
        with self._engine.begin() as conn:
            done = conn.execute(
                update(invitations)
                .where(
                    invitations.c.id == invitation_id,
                    invitations.c.organisation_id == organisation_id,
                    invitations.c.accepted_at_unix_nano.is_(None),
                    invitations.c.revoked_at_unix_nano.is_(None),
                )
                .values(revoked_at_unix_nano=now_ns())
            )
        return bool(done.rowcount)

    def pending_invitation(self, token: str, now: int | None = None) -> Invitation | None:
        """The usable invitation of ``token`` (None when unknown, used, revoked or expired)."""
        now = now_ns() if now is None else now
        query = _invitation_query().where(
            invitations.c.token_hash == token_digest(token),
            invitations.c.accepted_at_unix_nano.is_(None),
            invitations.c.revoked_at_unix_nano.is_(None),
            invitations.c.expires_at_unix_nano > now,
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _invitation(row)

    def accept_invitation(self, token: str, user: User, now: int | None = None) -> Invitation:
        """Use the invitation for ``user`` (whose address must be the invited one) and grant
        its role (never lowering a role the user already has); ``InvitationInvalid`` else."""
        now = now_ns() if now is None else now
        found = self.pending_invitation(token, now)
        if found is None:
            raise InvitationInvalid("this invitation is unknown, used, revoked or expired")
        if found.email != user.email.lower():
            raise InvitationInvalid(f"this invitation is for {found.email}; log in as that address")
        with self._engine.begin() as conn:
            used = conn.execute(
                update(invitations)
                .where(
                    invitations.c.id == found.id,
                    invitations.c.accepted_at_unix_nano.is_(None),
                    invitations.c.revoked_at_unix_nano.is_(None),
                    invitations.c.expires_at_unix_nano > now,
                )
                .values(accepted_at_unix_nano=now, accepted_by_user_id=user.id)
            ).rowcount
            if not used:
                raise InvitationInvalid("this invitation is unknown, used, revoked or expired")
            grant(conn, found.organisation_id, found.project_id, user.id, found.role)
        return found
