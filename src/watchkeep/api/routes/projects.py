"""``/api/v1/projects``: the operator lists and creates projects and manages any project's keys.

Only the operator token (``WATCHKEEP_OPERATOR_TOKEN``, compared in constant time) opens
these routes; a project key, whatever its role, is refused (403), and with no operator
token configured they answer 403 to everyone (there is no loopback exception here:
minting keys is not something a neighbour on the host may do). Keys made here are not
bounded by the project's key quota: the operator is trusted.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.security import HTTPAuthorizationCredentials

from watchkeep.api.auth import services
from watchkeep.api.errors import ApiError
from watchkeep.api.openapi import errors
from watchkeep.api.routes.health import OPERATOR_ERRORS, operator_bearer
from watchkeep.api.routes.keys import Cursor, KeyPrefix, Limit, issue, page, revoke
from watchkeep.api.schemas import (
    KeyCreated,
    KeyIn,
    KeyPage,
    ProjectCreated,
    ProjectIn,
    ProjectOut,
    ProjectPage,
)
from watchkeep.api.wiring import Services
from watchkeep.store.projects import Project, ProjectExists

ProjectName = Annotated[str, Path(min_length=1, max_length=200, description="The project's name.")]
DISABLED = "the operator API is off: set WATCHKEEP_OPERATOR_TOKEN on the server"


def require_operator_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(operator_bearer)],
) -> None:
    """Admit the operator token only: 403 when none is configured or another is sent, 401 when none is sent."""
    token = services(request).settings.operator_token
    if token is None:
        raise ApiError(403, "forbidden", DISABLED)
    if credentials is None:
        raise ApiError(
            401, "unauthorized", "the operator token is required: send 'Authorization: Bearer <token>'"
        )
    if not hmac.compare_digest(credentials.credentials.encode(), token.encode()):
        raise ApiError(403, "forbidden", "not the operator token (project keys manage keys at /api/v1/keys)")


router = APIRouter(prefix="/api/v1", tags=["projects"], dependencies=[Depends(require_operator_token)])
_NOT_FOUND = errors((404, "No such project"))
_ERRORS = {**OPERATOR_ERRORS, **errors((400, "Malformed request (e.g. NUL bytes in the URL)"), 422)}


def _project(svc: Services, name: str) -> Project:
    project = svc.projects.find(name)
    if project is None:
        raise ApiError(404, "not_found", f"no project named {name!r}")
    return project


@router.get("/projects", response_model=ProjectPage, responses=_ERRORS)
def list_projects(request: Request, limit: Limit = 100, cursor: Cursor = None) -> ProjectPage:
    """Every project by id, with its key counts (all keys, and active ones)."""
    infos = services(request).projects.list_projects(limit + 1, after_id=int(cursor or 0))
    more = len(infos) > limit
    infos = infos[:limit]
    return ProjectPage(
        items=[ProjectOut.model_validate(i) for i in infos], next_cursor=str(infos[-1].id) if more else None
    )


@router.post(
    "/projects",
    status_code=201,
    response_model=ProjectCreated,
    responses={**_ERRORS, **errors((409, "A project of that name exists"))},
)
def create_project(request: Request, body: ProjectIn) -> ProjectCreated:
    """Create a project, and with ``first_key`` its first key (the secret is returned once)."""
    svc = services(request)
    try:
        project = svc.projects.create(body.name)
    except ProjectExists:
        raise ApiError(409, "conflict", f"a project named {body.name!r} exists") from None
    key = None if body.first_key is None else issue(svc, project, body.first_key, None)
    (info,) = svc.projects.list_projects(1, after_id=project.id - 1)
    return ProjectCreated(project=ProjectOut.model_validate(info), key=key)


@router.get("/projects/{name}/keys", response_model=KeyPage, responses={**_ERRORS, **_NOT_FOUND})
def list_project_keys(
    request: Request, name: ProjectName, limit: Limit = 100, cursor: Cursor = None
) -> KeyPage:
    """One project's keys, newest first (prefixes only)."""
    svc = services(request)
    return page(svc, _project(svc, name).id, limit, cursor)


@router.post(
    "/projects/{name}/keys",
    status_code=201,
    response_model=KeyCreated,
    responses={**_ERRORS, **_NOT_FOUND},
)
def create_project_key(request: Request, name: ProjectName, body: KeyIn) -> KeyCreated:
    """A key of any role for the project; its secret is in ``key``, shown this once."""
    svc = services(request)
    return issue(svc, _project(svc, name), body, None)


@router.delete(
    "/projects/{name}/keys/{prefix}",
    status_code=204,
    responses={**_ERRORS, **errors((404, "No such project, or no such key in it"))},
)
def revoke_project_key(request: Request, name: ProjectName, prefix: KeyPrefix) -> Response:
    """Revoke one of the project's keys; it stops working at once in this process."""
    svc = services(request)
    return revoke(svc, _project(svc, name).id, prefix)
