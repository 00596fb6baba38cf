"""``/api/v1/keys``: a project's admins create, list and revoke its keys (``project:admin``).

Every call acts on the calling key's own project: another project's key is answered as
one nobody has (404). A key never creates a key whose role holds a permission it lacks
(``authz.may_grant``); an admin holds every permission of its project, so it may create
another admin key (key rotation needs it, and it grants nothing the admin lacks). A key
may revoke itself. The secret is returned once, at creation; listings show prefixes.
Revocation is immediate in this process (its key cache is evicted) and reaches other
processes within ``WATCHKEEP_KEY_CACHE_SECONDS``; an expiry is checked on every request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from watchkeep.api.auth import require, services
from watchkeep.api.errors import ApiError
from watchkeep.api.openapi import errors
from watchkeep.api.routes.monitors import actor_of
from watchkeep.api.schemas import KEY_PREFIX_PATTERN, KeyCreated, KeyIn, KeyOut, KeyPage, to_unix_ns
from watchkeep.api.wiring import Services
from watchkeep.security.authz import Permission, may_grant
from watchkeep.security.keys import Principal, check_expiry
from watchkeep.store.clock import now_ns
from watchkeep.store.projects import KeyInfo, KeyQuotaExceeded, Project

router = APIRouter(prefix="/api/v1", tags=["keys"])
KeyPrefix = Annotated[
    str, Path(pattern=KEY_PREFIX_PATTERN, description="The key's prefix: 'wk_' and 12 more.")
]
Limit = Annotated[int, Query(ge=1, le=1000, description="At most this many items.")]
Cursor = Annotated[str | None, Query(pattern=r"^[1-9][0-9]{0,17}$", description="A previous next_cursor.")]
# Every route may answer these: a NUL in the URL (the middleware), no key, a role without
# project:admin, a parameter or body that does not validate.
_ERRORS = errors((400, "Malformed request (e.g. NUL bytes in the URL)"), 401, 403, 422)
ADMIN = Depends(require(Permission.PROJECT_ADMIN))


def expiry_of(body: KeyIn) -> int | None:
    """The key's expiry in Unix nanoseconds (None: it never expires); 422 when unusable."""
    if body.expires_in is not None:
        at: int | None = now_ns() + body.expires_in * 1_000_000_000
    else:
        at = to_unix_ns(body.expires_at)
    if at is None:
        return None
    try:
        return check_expiry(at)
    except ValueError as exc:
        raise ApiError(422, "invalid_expiry", str(exc)) from None


def key_out(info: KeyInfo, now: int) -> KeyOut:
    """A stored key as the API lists it."""
    return KeyOut(
        prefix=info.prefix,
        project=info.project,
        role=info.role,
        name=info.name,
        state=info.state(now),
        created_at_unix_nano=info.created_at_unix_nano,
        expires_at_unix_nano=info.expires_at_unix_nano,
        revoked_at_unix_nano=info.revoked_at_unix_nano,
    )


def issue(svc: Services, project: Project, body: KeyIn, max_active: int | None) -> KeyCreated:
    """Create ``body``'s key in ``project``; the answer carries the secret."""
    expires = expiry_of(body)
    try:
        secret, info = svc.projects.issue_key(
            project, body.role.value, body.name, expires, max_active=max_active
        )
    except KeyQuotaExceeded as exc:
        raise ApiError(422, "quota_exceeded", exc.message) from None
    return KeyCreated(**key_out(info, now_ns()).model_dump(exclude={"created_at", "expires_at"}), key=secret)


def page(svc: Services, project_id: int, limit: int, cursor: str | None) -> KeyPage:
    """One page of ``project_id``'s keys, newest first."""
    infos = svc.projects.list_keys(
        project_id=project_id, limit=limit + 1, before_id=None if cursor is None else int(cursor)
    )
    now = now_ns()
    more = len(infos) > limit
    infos = infos[:limit]
    return KeyPage(items=[key_out(i, now) for i in infos], next_cursor=str(infos[-1].id) if more else None)


def revoke(svc: Services, project_id: int, prefix: str) -> Response:
    """Revoke ``prefix`` within ``project_id`` and drop it from this process's key cache."""
    if not svc.projects.revoke_key(prefix, project_id=project_id):
        raise ApiError(404, "not_found", f"the project has no unrevoked key {prefix!r}")
    svc.keys.evict(prefix)
    return Response(status_code=204)


@router.post(
    "/keys",
    status_code=201,
    response_model=KeyCreated,
    responses={**_ERRORS, **errors((422, "Invalid body, a bad expiry, or the key quota"))},
)
def create_key(request: Request, body: KeyIn, principal: Annotated[Principal, ADMIN]) -> KeyCreated:
    """Create a key of the caller's project; its secret is in ``key``, shown this once.

    The role may not hold a permission the calling key lacks (403). A project holds at
    most ``WATCHKEEP_QUOTA_KEYS`` active keys."""
    if not may_grant(principal.role, body.role.value):
        raise ApiError(403, "forbidden", f"a {principal.role} key may not create a {body.role.value} key")
    svc = services(request)
    project = Project(id=principal.project_id, name=principal.project_name)
    created = issue(svc, project, body, svc.settings.quota_keys)
    svc.audit.record(
        actor=actor_of(principal),
        action="key.create",
        project_id=project.id,
        target=f"key:{created.prefix}",
        after={"role": created.role, "name": created.name, "expires_at": created.expires_at_unix_nano},
    )
    return created


@router.get("/keys", response_model=KeyPage, responses=_ERRORS)
def list_keys(
    request: Request, principal: Annotated[Principal, ADMIN], limit: Limit = 100, cursor: Cursor = None
) -> KeyPage:
    """The project's keys, newest first: prefixes, roles, names, creation, expiry and state."""
    return page(services(request), principal.project_id, limit, cursor)


@router.delete("/keys/{prefix}", status_code=204, responses={**_ERRORS, **errors((404, "No such key"))})
def revoke_key(request: Request, prefix: KeyPrefix, principal: Annotated[Principal, ADMIN]) -> Response:
    """Revoke one of the project's keys (the calling key included); it stops working at once."""
    answer = revoke(services(request), principal.project_id, prefix)
    services(request).audit.record(
        actor=actor_of(principal),
        action="key.revoke",
        project_id=principal.project_id,
        target=f"key:{prefix}",
    )
    return answer
