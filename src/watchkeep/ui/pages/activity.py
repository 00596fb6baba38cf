"""The project's activity feed and the user's mentions.

The feed is ``ActivityRepository.list`` (what ``GET /api/v1/activity`` answers): newest
first, paged by row id ("Older" carries ``before``), narrowed to one verb or one actor. The
mentions tab is the user's own feed (``CommentRepository.mentions_for``) across every
project the user can open now, unread ones marked, with "mark all read".
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from watchkeep.security.authz import Permission
from watchkeep.store.activity_repository import ActivityEntry
from watchkeep.ui.forms import Form, posted
from watchkeep.ui.frame import Console, NavItem, page, render
from watchkeep.ui.templating import query

router = APIRouter(include_in_schema=False)
NAV = NavItem("Activity", "activity", Permission.TRACES_READ, shortcut="a")
Reader = Annotated[Console, Depends(page(Permission.TRACES_READ))]
PAGE_SIZE = 50
MAX_ROW_ID = 2**63 - 1
MAX_FILTER_CHARS = 200
VERBS = (
    "commented",
    "created",
    "edited",
    "deleted",
    "enabled",
    "disabled",
    "silenced",
    "unsilenced",
    "invited",
    "revoked",
)
# Where an entry's target opens in the console (kinds without a page have no link).
TARGET_PAGES = {
    "trace": "traces/{}",
    "annotation_queue": "queues/{}",
    "monitor": "monitors/{}",
    "route": "routes/{}/edit",
}


def target_url(console: Console, entry: ActivityEntry) -> str:
    """The console page of an entry's target, or "" when there is none."""
    pattern = TARGET_PAGES.get(entry.target_kind)
    return console.url(pattern.format(quote(entry.target_id, safe=""))) if pattern else ""


def _before(value: str | None) -> int | None:
    if value is None or not value.isdigit() or len(value) > 19:
        return None
    number = int(value)
    return number if 0 < number <= MAX_ROW_ID else None


@router.get("/p/{project}/activity", response_class=HTMLResponse)
def activity(request: Request, console: Reader) -> HTMLResponse:
    """What people and keys did in the project, newest first, optionally one verb or actor."""
    params = request.query_params
    verb = (params.get("verb") or "").strip()[:32]
    actor = (params.get("actor") or "").strip()[:MAX_FILTER_CHARS]
    found = console.services.activity.list(
        console.project.project_id,
        PAGE_SIZE,
        _before(params.get("before")),
        verbs=[verb] if verb else (),
        actor=actor or None,
    )
    state: dict[str, object] = {"verb": verb, "actor": actor}
    next_url = (
        console.url("activity") + query(state, before=found.next_before_id) if found.next_before_id else ""
    )
    return render(
        console,
        "activity/feed.html",
        entries=[(entry, target_url(console, entry)) for entry in found.items],
        next_url=next_url,
        verb=verb,
        actor=actor,
        verbs=VERBS,
        unread=console.services.comments.unread_count(console.session.user.id),
        tab="feed",
    )


@router.get("/p/{project}/activity/mentions", response_class=HTMLResponse)
def mentions(request: Request, console: Reader) -> HTMLResponse:
    """The user's mentions in every project the user can open, newest first."""
    uid = console.session.user.id
    items = console.services.comments.mentions_for(
        uid, PAGE_SIZE + 1, _before(request.query_params.get("before"))
    )
    more = len(items) > PAGE_SIZE
    items = items[:PAGE_SIZE]
    next_url = console.url("activity/mentions") + query({}, before=items[-1].id) if more else ""
    return render(
        console,
        "activity/mentions.html",
        mentions=items,
        next_url=next_url,
        unread=console.services.comments.unread_count(uid),
        tab="mentions",
    )


@router.post("/p/{project}/activity/mentions/read", response_class=HTMLResponse)
def mark_read(console: Reader, form: Annotated[Form, Depends(posted)]) -> Response:
    """Mark all the user's mentions read (the user's own; a viewer may too)."""
    console.services.comments.mark_read(console.session.user.id)
    return RedirectResponse(console.url("activity/mentions"), status_code=303)
