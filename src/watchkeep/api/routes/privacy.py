"""Retention periods and data subjects over HTTP: ``/api/v1/privacy``.

Every route needs ``privacy:admin`` (admin keys, owners and admins): retention periods
decide what is deleted, and a subject's export hands out their prompts, so reading is as
sensitive as writing. Every lookup is in the key's project: erasing or exporting a user id
of another project finds nothing there (an empty export, zero rows erased).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from watchkeep.api.auth import require, services
from watchkeep.api.errors import ApiError
from watchkeep.api.openapi import errors
from watchkeep.security.authz import Permission
from watchkeep.security.erasure import MAX_USER_ID, InvalidSubject, check_user_id, subject_service
from watchkeep.security.keys import Principal
from watchkeep.security.retention import MAX_DAYS, InvalidRetention, validate_retention

router = APIRouter(prefix="/api/v1/privacy", tags=["privacy"])
AUTH = errors(400, 401, 403)
INVALID = errors((422, "Invalid retention periods or user id (the message says which)"))
Admin = Annotated[Principal, Depends(require(Permission.PRIVACY_ADMIN))]
UserId = Annotated[
    str, Path(min_length=1, max_length=MAX_USER_ID, description="The end user's id, as on their traces.")
]
Days = Annotated[int | None, Field(ge=1, le=MAX_DAYS)]
MEDIA_TYPE = "application/x-ndjson"


class Retention(BaseModel):
    """Days each kind of data is kept (null: forever)."""

    model_config = ConfigDict(extra="forbid")

    spans: Days = Field(default=None, description="Spans with their payloads and search documents.")
    payloads: Days = Field(default=None, description="Payloads (prompts and completions) alone; spans stay.")
    scores: Days = None
    eval_items: Days = Field(default=None, description="Eval results (the inputs and outputs of eval calls).")
    alerts: Days = Field(default=None, description="Alert history.")


class ErasureOut(BaseModel):
    """What an erasure deleted."""

    subject: str = Field(description="The keyed hash the audit log names the subject by.")
    rows: dict[str, int]
    total: int


def checked(user_id: str) -> str:
    """The user id, or a 422 that says why it cannot name anyone."""
    try:
        return check_user_id(user_id)
    except InvalidSubject as exc:
        raise ApiError(422, "invalid", str(exc)) from None


@router.get("/retention", response_model=Retention, responses=AUTH)
def get_retention(request: Request, principal: Admin) -> Retention:
    """The project's retention periods."""
    stored = services(request).privacy.get(principal.project_id).retention
    return Retention.model_validate({k: v for k, v in stored.items() if k in Retention.model_fields})


@router.put("/retention", response_model=Retention, responses={**AUTH, **INVALID})
def put_retention(request: Request, principal: Admin, body: Retention) -> Retention:
    """Replace the project's retention periods (a kind left out is kept forever)."""
    try:
        periods = validate_retention(body.model_dump())
    except InvalidRetention as exc:
        raise ApiError(422, "invalid", str(exc)) from None
    svc = services(request)
    before = svc.privacy.get(principal.project_id).retention
    svc.privacy.put(principal.project_id, actor=f"key:{principal.key_id}", retention=dict(periods))
    svc.audit.record(
        actor=f"key:{principal.key_id}",
        action="retention.update",
        project_id=principal.project_id,
        target="retention",
        before=before,
        after=periods,
    )
    return Retention.model_validate(periods)


@router.post("/subjects/{user_id}/erase", response_model=ErasureOut, responses={**AUTH, **INVALID})
def erase_subject(request: Request, principal: Admin, user_id: UserId) -> ErasureOut:
    """Delete every row of the project tied to the end user (traces, spans, payloads,
    scores, annotations, comments, dataset items) and record it in the audit log."""
    checked(user_id)
    svc = services(request)
    done = subject_service(svc.settings, svc.engine, svc.audit).erase(
        principal.project_id, user_id, actor=f"key:{principal.key_id}"
    )
    return ErasureOut(subject=done.subject, rows=done.rows, total=done.total)


@router.get(
    "/subjects/{user_id}/export",
    response_class=StreamingResponse,
    responses={**AUTH, **INVALID, 200: {"description": "One row a line", "content": {MEDIA_TYPE: {}}}},
)
def export_subject(request: Request, principal: Admin, user_id: UserId) -> StreamingResponse:
    """The end user's data in the project as JSON lines ``{"type": ..., "row": {...}}``
    (type: trace, span with its payload, score, annotation, comment, dataset_item), then
    ``{"_end": true, "count": N}``."""
    checked(user_id)
    svc = services(request)
    subjects = subject_service(svc.settings, svc.engine, svc.audit)
    subjects.audit_export(principal.project_id, user_id, actor=f"key:{principal.key_id}")

    def lines() -> Iterator[bytes]:
        count = 0
        for row in subjects.export(principal.project_id, user_id):
            count += 1
            yield orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS)
        yield orjson.dumps({"_end": True, "count": count}, option=orjson.OPT_APPEND_NEWLINE)

    return StreamingResponse(lines(), media_type=MEDIA_TYPE)
