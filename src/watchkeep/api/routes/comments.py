"""Comments on a project's traces (later runs and versions), with ``@mentions``.

A key writes as itself (its name, else ``key <prefix>``); only the author edits, and the
author or a project admin deletes. Everything is looked up in the key's project, so another
project's trace or comment is a 404 whether or not it exists.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from watchkeep.api.auth import require, services
from watchkeep.api.comment_schemas import CommentEdit, CommentIn, CommentOut, CommentPage
from watchkeep.api.errors import ApiError
from watchkeep.api.openapi import errors
from watchkeep.api.schemas import MAX_ROW_ID
from watchkeep.security.authz import Permission
from watchkeep.security.keys import Principal
from watchkeep.store.comment_repository import (
    MAX_PAGE,
    CommentError,
    CommentNotFound,
    InvalidComment,
    NotAllowed,
    TargetNotFound,
)
from watchkeep.store.trace_queries import InvalidCursor

router = APIRouter(prefix="/api/v1", tags=["comments"])
AUTH_ERRORS = errors(401, 403)
CommentId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
_STATUS = {InvalidComment: 422, TargetNotFound: 404, CommentNotFound: 404, NotAllowed: 403}


def _api_error(exc: CommentError) -> ApiError:
    """The REST answer for a refusal of the repository."""
    return ApiError(_STATUS.get(type(exc), 422), exc.code, exc.message)


@router.get(
    "/comments",
    response_model=CommentPage,
    responses={
        **AUTH_ERRORS,
        **errors(400, (404, "No such target in this project"), (422, "Unknown kind or malformed id")),
    },
)
def list_comments(
    request: Request,
    principal: Annotated[Principal, Depends(require(Permission.TRACES_READ))],
    target_kind: Annotated[str, Query(min_length=1, max_length=16)],
    target_id: Annotated[str, Query(min_length=1, max_length=128)],
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> CommentPage:
    """A target's comments, oldest first (deleted ones are left out)."""
    try:
        page = services(request).comments.list(principal.project_id, target_kind, target_id, limit, cursor)
    except InvalidCursor as exc:
        raise ApiError(400, "invalid_cursor", str(exc)) from exc
    except CommentError as exc:
        raise _api_error(exc) from exc
    return CommentPage.model_validate({"items": page.items, "next_cursor": page.next_cursor})


@router.post(
    "/comments",
    status_code=201,
    response_model=CommentOut,
    responses={
        **AUTH_ERRORS,
        **errors((404, "No such target in this project"), (422, "Invalid kind, id or body")),
    },
)
def create_comment(
    request: Request,
    body: CommentIn,
    principal: Annotated[Principal, Depends(require(Permission.COMMENTS_WRITE))],
) -> CommentOut:
    """Comment on a target of the key's project. ``@handle`` (an e-mail's local part, or the
    whole address) mentions a user who can open the project; other handles stay plain text."""
    svc = services(request)
    repo = svc.comments
    author = repo.key_author(principal.project_id, principal.key_id)
    text = svc.pii.text(principal.project_id, body.body) or ""  # stored as the project's policy says
    try:
        comment = repo.add(
            principal.project_id, author, body.target_kind, body.target_id, text, mentions_from=body.body
        )
    except CommentError as exc:
        raise _api_error(exc) from exc
    return CommentOut.model_validate(comment)


@router.patch(
    "/comments/{comment_id}",
    response_model=CommentOut,
    responses={
        **errors(401, (403, "Key lacks the permission, or is not the comment's author")),
        **errors((404, "No such comment in this project"), (422, "Invalid body")),
    },
)
def edit_comment(
    request: Request,
    comment_id: CommentId,
    body: CommentEdit,
    principal: Annotated[Principal, Depends(require(Permission.COMMENTS_WRITE))],
) -> CommentOut:
    """Replace a comment's body (its author only); mentions are resolved again."""
    svc = services(request)
    repo = svc.comments
    author = repo.key_author(principal.project_id, principal.key_id)
    text = svc.pii.text(principal.project_id, body.body) or ""
    try:
        comment = repo.edit(principal.project_id, comment_id, author, text, mentions_from=body.body)
    except CommentError as exc:
        raise _api_error(exc) from exc
    return CommentOut.model_validate(comment)


@router.delete(
    "/comments/{comment_id}",
    status_code=204,
    response_class=Response,
    responses={
        **errors(401, (403, "Key lacks the permission, or is neither the author nor a project admin")),
        **errors((404, "No such comment in this project")),
    },
)
def delete_comment(
    request: Request,
    comment_id: CommentId,
    principal: Annotated[Principal, Depends(require(Permission.COMMENTS_WRITE))],
) -> Response:
    """Delete a comment (its author, or a project admin); its body is never served again."""
    repo = services(request).comments
    author = repo.key_author(principal.project_id, principal.key_id)
    try:
        repo.delete(
            principal.project_id, comment_id, author, moderator=principal.can(Permission.PROJECT_ADMIN)
        )
    except CommentError as exc:
        raise _api_error(exc) from exc
    return Response(status_code=204)
