"""Canaries: the project's canary analyses and one canary's live comparison (what
``registry.canary.decide`` makes of its state now, metric by metric), refreshed by htmx
while it runs, and a "Stop" button that ends it leaving the aliases as they are."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from watchkeep.registry.canary_repository import Canary, CanaryError
from watchkeep.security.authz import Permission
from watchkeep.ui import release_view
from watchkeep.ui.forms import Form, posted
from watchkeep.ui.frame import Console, ConsoleRefusal, NavItem, page, render

router = APIRouter(include_in_schema=False)
NAV = NavItem("Canaries", "canaries", Permission.REGISTRY_READ)
Reader = Annotated[Console, Depends(page(Permission.REGISTRY_READ))]
Writer = Annotated[Console, Depends(page(Permission.REGISTRY_WRITE))]
CanaryId = Annotated[int, Path(ge=1, le=2**63 - 1)]
LIST_LIMIT = 100
REFRESH_SECONDS = 5


def _canary(console: Console, canary_id: int) -> Canary:
    found = console.services.canaries.get(console.project.project_id, canary_id)
    if found is None:
        raise ConsoleRefusal(404, "There is no such canary in this project.")
    return found


def _detail(
    console: Console, canary: Canary, *, status: int = 200, problem: str | None = None
) -> HTMLResponse:
    decision, rows = release_view.live_comparison(canary)
    return render(
        console,
        "canaries/detail.html",
        status=status,
        fragment="live",
        canary=canary,
        decision=decision,
        rows=rows,
        problem=problem,
        refresh_seconds=REFRESH_SECONDS,
        view=release_view,
    )


@router.get("/p/{project}/canaries", response_class=HTMLResponse)
def canary_list(console: Reader) -> HTMLResponse:
    """The project's canaries, newest first."""
    canaries = console.services.canaries.list(console.project.project_id, limit=LIST_LIMIT)
    return render(console, "canaries/list.html", canaries=canaries, view=release_view)


@router.get("/p/{project}/canaries/{canary_id}", response_class=HTMLResponse)
def canary_detail(console: Reader, canary_id: CanaryId) -> HTMLResponse:
    """The live comparison; an htmx poll gets only the comparison block."""
    return _detail(console, _canary(console, canary_id))


@router.post("/p/{project}/canaries/{canary_id}/stop", response_class=HTMLResponse)
def canary_stop(console: Writer, canary_id: CanaryId, form: Annotated[Form, Depends(posted)]) -> Response:
    """End a running canary by hand; the aliases stay where they are."""
    canary = _canary(console, canary_id)
    reason = form.data.get("reason", "").strip()[:500] or None
    try:
        stopped = console.services.canaries.stop(
            console.project.project_id, canary.id, actor=console.actor, reason=reason
        )
    except CanaryError as exc:
        return _detail(console, canary, status=409, problem=str(exc))
    why = f": {reason}" if reason else ""
    console.services.activity.record(
        console.project.project_id,
        actor=console.actor,
        actor_user_id=console.session.user.id,
        verb="stopped",
        target_kind="canary",
        target_id=str(stopped.id),
        summary=f"stopped the canary of {stopped.name} on route {stopped.route}{why}",
    )
    return RedirectResponse(console.url(f"canaries/{stopped.id}"), status_code=303)
