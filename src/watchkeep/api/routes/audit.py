"""The audit log over REST: ``GET /api/v1/audit``, oldest first, for admins and owners.

A key sees its own project's entries only; server-wide entries (no project: logins,
user accounts, project deletions) are read with ``watchkeep audit list`` on the server,
never through a project's key, so no tenant learns of another tenant or of the server.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from watchkeep.api.auth import require, services
from watchkeep.api.openapi import errors
from watchkeep.api.schemas import MAX_ROW_ID, ns_to_datetime
from watchkeep.security.audit import AuditEntry
from watchkeep.security.authz import Permission
from watchkeep.security.keys import Principal

router = APIRouter(prefix="/api/v1", tags=["audit"])
MAX_PAGE = 500


class AuditEntryOut(BaseModel):
    """One recorded action with its place in the hash chain."""

    seq: int
    at: datetime
    actor: str
    action: str
    target: str | None
    before: Any
    after: Any
    detail: str | None
    prev_hash: str
    hash: str

    @classmethod
    def of(cls, e: AuditEntry) -> AuditEntryOut:
        return cls(
            seq=e.seq,
            at=ns_to_datetime(e.at_ns),
            actor=e.actor,
            action=e.action,
            target=e.target,
            before=e.before,
            after=e.after,
            detail=e.detail,
            prev_hash=e.prev_hash,
            hash=e.hash,
        )


class AuditPageOut(BaseModel):
    """Entries oldest first; pass ``next_after_seq`` as ``after_seq`` for the next page."""

    items: list[AuditEntryOut]
    next_after_seq: int | None


@router.get("/audit", response_model=AuditPageOut, responses=errors(400, 401, 403, 422))
def list_audit(
    request: Request,
    principal: Annotated[Principal, Depends(require(Permission.AUDIT_READ))],
    action: Annotated[str | None, Query(min_length=1, max_length=64, description="Only this action")] = None,
    after_seq: Annotated[int | None, Query(ge=0, le=MAX_ROW_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> AuditPageOut:
    """The key's project's audit entries after ``after_seq``, optionally of one action
    (``key.create``, ``route.update``, ``alias.move`` ...)."""
    log = services(request).audit
    items = log.entries(project_id=principal.project_id, action=action, after_seq=after_seq, limit=limit)
    return AuditPageOut(
        items=[AuditEntryOut.of(e) for e in items],
        next_after_seq=items[-1].seq if len(items) == limit else None,
    )
