"""Users and sessions with their totals: the usage API's query, one page of groups.

Totals are the API's (``UsageQueries.list``): the same rule for spans that inherit their
trace's user or session, the same sort keys and the same bounded offset paging (grouped
totals have no stable keyset; the offset is capped as in the API). Each row links to the
trace list filtered by that user or session, in the same time range.
"""

from __future__ import annotations

from typing import Annotated, get_args

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse

from watchkeep.api.routes.usage import MAX_OFFSET
from watchkeep.security.authz import Permission
from watchkeep.store.usage_queries import Dimension, SortKey, UsageFilter
from watchkeep.ui.filters import FilterField, read_filters
from watchkeep.ui.frame import Console, NavItem, page, render
from watchkeep.ui.templating import query

router = APIRouter(include_in_schema=False)
NAV = NavItem("Users", "users", Permission.TRACES_READ, shortcut="u")
PAGE_SIZE = 50
SORTS: tuple[str, ...] = get_args(SortKey)
FIELDS: tuple[FilterField, ...] = (
    FilterField("environment", "Environment"),
    FilterField("release", "Release"),
    FilterField("sort", "Sort by", kind="select", options=SORTS),
)
Reader = Annotated[Console, Depends(page(Permission.TRACES_READ))]


def totals_page(console: Console, dim: Dimension, title: str, offset: int) -> HTMLResponse:
    """One page of users or sessions with their totals (``sessions.py`` shows the other);
    a hand-edited ``offset`` is clamped to the API's bounds."""
    offset = max(0, min(offset, MAX_OFFSET))
    bar = read_filters(console.request, FIELDS)
    v = bar.values
    f = UsageFilter(bar.since_ns, bar.until_ns, v.get("environment"), v.get("release"))
    sort: SortKey = v["sort"] if v.get("sort") in SORTS else "last_seen"  # type: ignore[assignment]
    items, more = console.services.usage.list(
        console.project.project_id, dim, f, sort=sort, limit=PAGE_SIZE, offset=offset
    )
    following = offset + len(items)
    next_url = query(bar.params(), offset=following) if more and following <= MAX_OFFSET else None
    trace_params = {k: v[k] for k in ("environment", "release") if k in v} | {
        k: value for k, value in bar.params().items() if k in ("range", "since", "until")
    }
    return render(
        console,
        "usage/list.html",
        fragment="results",
        title=title,
        param="user" if dim == "user_id" else "session",
        bar=bar,
        items=items,
        trace_params=trace_params,
        next_url=next_url,
    )


@router.get("/p/{project}/users", response_class=HTMLResponse)
def users(console: Reader, offset: int = 0) -> HTMLResponse:
    """Users in the time range with their calls, tokens, cost and errors."""
    return totals_page(console, "user_id", "Users", offset)
