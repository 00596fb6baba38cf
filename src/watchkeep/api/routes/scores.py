"""Scores and feedback: ``POST /api/v1/scores`` and ``GET /api/v1/scores``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AwareDatetime

from watchkeep.api.auth import require, services
from watchkeep.api.errors import ApiError
from watchkeep.api.openapi import errors
from watchkeep.api.schemas import (
    HEX32,
    ScoreDataType,
    ScoreIn,
    ScoreOut,
    ScorePage,
    ScoreSource,
    to_unix_ns,
)
from watchkeep.security.authz import Permission
from watchkeep.security.keys import Principal
from watchkeep.store.score_repository import IdempotencyConflict, NewScore, ScoreFilter
from watchkeep.store.trace_queries import InvalidCursor

router = APIRouter(prefix="/api/v1", tags=["scores"])
AUTH_ERRORS = errors(401, 403)


@router.post(
    "/scores",
    status_code=201,
    response_model=ScoreOut,
    responses={
        **AUTH_ERRORS,
        200: {"model": ScoreOut, "description": "Already stored under this idempotency key"},
        **errors((409, "Idempotency key used for a different score"), (422, "Invalid score")),
    },
)
def create_score(
    request: Request,
    response: Response,
    body: ScoreIn,
    principal: Annotated[Principal, Depends(require(Permission.SCORES_WRITE))],
) -> ScoreOut:
    """Attach a score (evaluation, human label or end-user feedback) to a trace or span.

    With an ``idempotency_key``, a repeat is stored once: the answer is then 200 with
    the score as first stored.
    """
    value = body.value
    numeric: float | None
    text: str | None = None
    if isinstance(value, bool):
        numeric = 1.0 if value else 0.0
    elif isinstance(value, str):
        numeric, text = None, value
    else:
        numeric = float(value)
    svc = services(request)
    score = NewScore(
        trace_id=body.trace_id.lower(),
        span_id=body.span_id.lower() if body.span_id else None,
        name=body.name,
        data_type=(body.data_type or ScoreDataType.NUMERIC).value,
        value=numeric,
        string_value=text,
        label=body.label,
        source=body.source.value,
        comment=svc.pii.text(principal.project_id, body.comment),  # PII redacted before it is stored
        metadata=body.metadata,
        idempotency_key=body.idempotency_key,
    )
    try:
        stored, created = svc.scores.add(principal.project_id, score)
    except IdempotencyConflict as exc:
        raise ApiError(409, "conflict", exc.message) from exc
    if not created:
        response.status_code = 200
        return ScoreOut.model_validate(stored)
    svc.monitoring.telemetry.observe_score(principal.project_id, body.name, text, body.label)
    return ScoreOut.model_validate(stored)


@router.get("/scores", response_model=ScorePage, responses={**AUTH_ERRORS, **errors(400)})
def list_scores(
    request: Request,
    principal: Annotated[Principal, Depends(require(Permission.SCORES_READ))],
    name: Annotated[str | None, Query(max_length=256)] = None,
    trace_id: Annotated[str | None, Query(pattern=HEX32)] = None,
    source: ScoreSource | None = None,
    created_from: AwareDatetime | None = None,
    created_to: AwareDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> ScorePage:
    """Scores of the key's project, newest first."""
    f = ScoreFilter(
        name=name,
        trace_id=trace_id.lower() if trace_id else None,
        source=source.value if source else None,
        created_from_ns=to_unix_ns(created_from),
        created_to_ns=to_unix_ns(created_to),
    )
    try:
        page = services(request).scores.list(principal.project_id, f, limit, cursor)
    except InvalidCursor as exc:
        raise ApiError(400, "invalid_cursor", str(exc)) from exc
    return ScorePage.model_validate({"items": page.items, "next_cursor": page.next_cursor})
