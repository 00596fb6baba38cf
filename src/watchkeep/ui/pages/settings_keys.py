"""Project settings, Keys tab: the project's API keys for machines (``project:admin``).

It is the keys API's code path (``api.routes.keys``): the same listing with its keyset
cursor, the same quota on active keys, and revocation that evicts the key from this
process's key cache at once (other processes drop it within
``WATCHKEEP_KEY_CACHE_SECONDS``). A person may create only a key role whose permissions its
own role holds (``may_grant``). The secret is shown once, on the page answering its
creation.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field, field_validator

from watchkeep.api.errors import ApiError
from watchkeep.api.routes import keys as keys_api
from watchkeep.security.authz import Permission, Role, may_grant
from watchkeep.security.keys import parse_expiry
from watchkeep.store.projects import KeyQuotaExceeded, Project
from watchkeep.ui.forms import Form, posted
from watchkeep.ui.frame import Console, page, render
from watchkeep.ui.pages.settings_members import record_change

router = APIRouter(include_in_schema=False)
ADMIN = Depends(page(Permission.PROJECT_ADMIN))
PAGE_SIZE = 50


class KeyForm(BaseModel):
    """The new-key form."""

    name: str = Field(default="", max_length=200)
    role: Role
    expires: str = Field(default="", max_length=64)

    @field_validator("name", "expires")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @field_validator("expires")
    @classmethod
    def _expiry(cls, value: str) -> str:
        if value:
            parse_expiry(value)  # ValueError: its message is shown at the field
        return value


def key_roles(console: Console) -> list[str]:
    """The key roles this person may create."""
    return [r.value for r in Role if may_grant(console.project.role, r.value)]


def _render(
    console: Console,
    *,
    cursor: str | None = None,
    form: Form | None = None,
    secret: str = "",
    error: str = "",
    status: int = 200,
) -> HTMLResponse:
    listing = keys_api.page(console.services, console.project.project_id, PAGE_SIZE, cursor)
    next_url = console.url(f"settings/keys?cursor={listing.next_cursor}") if listing.next_cursor else ""
    return render(
        console,
        "settings/keys.html",
        status=status,
        keys=listing.items,
        next_url=next_url,
        roles=key_roles(console),
        form=form,
        secret=secret,
        error=error,
        notice="",
        tab="keys",
    )


@router.get("/p/{project}/settings/keys", response_class=HTMLResponse)
def keys(
    console: Annotated[Console, ADMIN],
    cursor: Annotated[str | None, Query(pattern=r"^[1-9][0-9]{0,17}$")] = None,
) -> HTMLResponse:
    """The project's keys, newest first, 50 a page."""
    return _render(console, cursor=cursor)


@router.post("/p/{project}/settings/keys", response_class=HTMLResponse)
def create_key(console: Annotated[Console, ADMIN], form: Annotated[Form, Depends(posted)]) -> HTMLResponse:
    """Create a key; its secret is shown on this answer only."""
    data = form.validate(KeyForm)
    if data is None:
        return _render(console, form=form, status=400)
    if not may_grant(console.project.role, data.role.value):
        form.fail("role", f"a {console.project.role} may not create a {data.role.value} key")
        return _render(console, form=form, status=403)
    svc = console.services
    project = Project(id=console.project.project_id, name=console.project.project_name)
    expires = parse_expiry(data.expires) if data.expires else None
    try:
        secret, info = svc.projects.issue_key(
            project, data.role.value, data.name or None, expires, max_active=svc.settings.quota_keys
        )
    except KeyQuotaExceeded as exc:
        return _render(console, form=form, error=exc.message, status=400)
    summary = f"created the {info.role} key {info.prefix}" + (f" ({info.name})" if info.name else "")
    record_change(console, "key created", "key", info.prefix, summary)
    return _render(console, secret=secret)


@router.post("/p/{project}/settings/keys/{prefix}/revoke", response_class=HTMLResponse)
def revoke_key(
    console: Annotated[Console, ADMIN], form: Annotated[Form, Depends(posted)], prefix: str
) -> Response:
    """Revoke one of the project's keys; it stops working at once."""
    try:
        keys_api.revoke(console.services, console.project.project_id, prefix[:64])
    except ApiError:
        return _render(console, error=f"The project has no unrevoked key {prefix[:64]}.", status=404)
    record_change(console, "key revoked", "key", prefix, f"revoked the key {prefix}")
    return RedirectResponse(console.url("settings/keys"), status_code=303)
