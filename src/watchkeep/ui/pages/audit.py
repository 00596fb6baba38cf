"""The project's audit log for admins: who changed keys, members, routes, aliases and data.

It reads ``AuditLog.entries`` (what ``GET /api/v1/audit`` answers): the project's own
entries only, oldest first, paged by seq ("Next" carries ``after``), narrowed to one
action. Server-wide entries (logins, project deletions) are for ``watchkeep audit list``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from watchkeep.security.authz import Permission
from watchkeep.ui.frame import Console, NavItem, page, render
from watchkeep.ui.templating import query

router = APIRouter(include_in_schema=False)
NAV = NavItem("Audit log", "audit", Permission.AUDIT_READ)
Admin = Annotated[Console, Depends(page(Permission.AUDIT_READ))]
PAGE_SIZE = 50
MAX_SEQ = 2**63 - 1


def _after(value: str | None) -> int | None:
    if value is None or not value.isdigit() or len(value) > 19:
        return None
    number = int(value)
    return number if 0 < number <= MAX_SEQ else None


@router.get("/p/{project}/audit", response_class=HTMLResponse)
def audit(request: Request, console: Admin) -> HTMLResponse:
    """The project's audit entries, oldest first, optionally of one action."""
    params = request.query_params
    action = (params.get("action") or "").strip()[:64]
    entries = console.services.audit.entries(
        project_id=console.project.project_id,
        action=action or None,
        after_seq=_after(params.get("after")),
        limit=PAGE_SIZE,
    )
    more = len(entries) == PAGE_SIZE
    next_url = console.url("audit") + query({"action": action}, after=entries[-1].seq) if more else ""
    return render(console, "audit/log.html", entries=entries, action=action, next_url=next_url)
