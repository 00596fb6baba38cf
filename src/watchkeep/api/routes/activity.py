"""The project's activity feed: ``GET /api/v1/activity``, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from watchkeep.api.auth import require, services
from watchkeep.api.comment_schemas import ActivityPageOut
from watchkeep.api.errors import ApiError
from watchkeep.api.openapi import errors
from watchkeep.api.schemas import MAX_ROW_ID
from watchkeep.security.authz import Permission
from watchkeep.security.keys import Principal
from watchkeep.store.activity_repository import MAX_PAGE

router = APIRouter(prefix="/api/v1", tags=["activity"])
MAX_VERBS = 20


@router.get("/activity", response_model=ActivityPageOut, responses=errors(400, 401, 403, 422))
def list_activity(
    request: Request,
    principal: Annotated[Principal, Depends(require(Permission.TRACES_READ))],
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    before_id: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
    verb: Annotated[list[str] | None, Query(description=f"Only these verbs (at most {MAX_VERBS})")] = None,
    actor: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> ActivityPageOut:
    """What people and keys did in the key's project, newest first, optionally only some
    verbs (``commented``, ``edited``, ``deleted``, ``labelled`` ...) or one actor's."""
    verbs = verb or []
    if len(verbs) > MAX_VERBS or any(not 1 <= len(v) <= 32 for v in verbs):
        raise ApiError(422, "invalid_request", f"verb: at most {MAX_VERBS} verbs of 1 to 32 characters")
    page = services(request).activity.list(principal.project_id, limit, before_id, verbs=verbs, actor=actor)
    return ActivityPageOut.model_validate({"items": page.items, "next_before_id": page.next_before_id})
