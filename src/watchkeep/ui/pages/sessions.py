"""Sessions with their totals (the page is ``usage.totals_page``, shared with users)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from watchkeep.security.authz import Permission
from watchkeep.ui.frame import NavItem
from watchkeep.ui.pages.usage import Reader, totals_page

router = APIRouter(include_in_schema=False)
NAV = NavItem("Sessions", "sessions", Permission.TRACES_READ, shortcut="e")


@router.get("/p/{project}/sessions", response_class=HTMLResponse)
def sessions(console: Reader, offset: int = 0) -> HTMLResponse:
    """Sessions in the time range with their calls, tokens, cost and errors."""
    return totals_page(console, "session_id", "Sessions", offset)
