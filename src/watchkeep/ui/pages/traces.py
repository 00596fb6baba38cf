"""The trace list and one trace: waterfall, conversation, scores and comments.

The list is the trace API's query (``TraceQueries.list_traces``: the same filters, the
same keyset cursor), so it stays a handful of indexed queries at millions of spans; the
comment counts of a page are one grouped query. A trace page loads the trace once (the
API's ``get_trace``) and its comments once; clicking a span reloads only its details.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from watchkeep.security.authz import Permission
from watchkeep.store.comment_repository import MAX_PAGE, Author, CommentError, TargetNotFound
from watchkeep.store.trace_queries import InvalidCursor, TraceFilter
from watchkeep.ui import trace_view
from watchkeep.ui.filters import FilterBar, FilterField, read_filters
from watchkeep.ui.forms import Form, posted
from watchkeep.ui.frame import Console, ConsoleRefusal, NavItem, page, render
from watchkeep.ui.templating import query

router = APIRouter(include_in_schema=False)
NAV = NavItem("Traces", "traces", Permission.TRACES_READ, shortcut="t")
PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_CURSOR_CHARS = 512
TRACE_ID = re.compile(r"[0-9a-fA-F]{32}")
SPAN_ID = re.compile(r"[0-9a-fA-F]{16}")

FIELDS: tuple[FilterField, ...] = (
    FilterField("q", "Search", kind="search", placeholder="words of prompts and responses"),
    FilterField("name", "Name"),
    FilterField("model", "Model"),
    FilterField("status", "Status", kind="select", options=("ok", "error")),
    FilterField("user", "User"),
    FilterField("session", "Session"),
    FilterField("environment", "Environment"),
    FilterField("release", "Release"),
    FilterField("tag", "Tag"),
)
Reader = Annotated[Console, Depends(page(Permission.TRACES_READ))]
Writer = Annotated[Console, Depends(page(Permission.COMMENTS_WRITE))]


def trace_filter(bar: FilterBar) -> TraceFilter:
    """The API's trace filter from the bar's values (URL names are the short ones)."""
    v = bar.values
    return TraceFilter(
        start_from_ns=bar.since_ns,
        start_to_ns=bar.until_ns,
        model=v.get("model"),
        user_id=v.get("user"),
        session_id=v.get("session"),
        environment=v.get("environment"),
        release=v.get("release"),
        status=v.get("status"),
        name=v.get("name"),
        q=v.get("q"),
        tags=(v["tag"],) if "tag" in v else (),
    )


@router.get("/p/{project}/traces", response_class=HTMLResponse)
def trace_list(console: Reader, cursor: str | None = None, limit: int = PAGE_SIZE) -> HTMLResponse:
    """Traces of the project, newest first, filtered and searched by the bar (a hand-edited
    ``limit`` is clamped, a bad ``cursor`` is a 400 page)."""
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    bar = read_filters(console.request, FIELDS)
    notice = None
    items: list[Any] = []
    next_url = None
    pid = console.project.project_id
    if "q" in bar.values and not console.services.settings.search_index:
        notice = "Full-text search is off on this server (WATCHKEEP_SEARCH_INDEX=0); drop the search words."
    else:
        try:
            if cursor is not None and len(cursor) > MAX_CURSOR_CHARS:
                raise InvalidCursor("cursor too long")
            found = console.services.traces.list_traces(pid, trace_filter(bar), limit, cursor)
        except InvalidCursor:
            raise ConsoleRefusal(
                400, "That page link is not valid; start again from the first page."
            ) from None
        items = found.items
        if found.next_cursor is not None:
            next_url = query(
                bar.params(), limit=limit if limit != PAGE_SIZE else None, cursor=found.next_cursor
            )
    counts = console.services.comments.counts(pid, "trace", [t.trace_id for t in items])
    return render(
        console,
        "traces/list.html",
        fragment="results",
        bar=bar,
        traces=items,
        comment_counts=counts,
        next_url=next_url,
        notice=notice,
        first_page=cursor is None,
    )


def _load(console: Console, trace_id: str) -> dict[str, Any]:
    if not TRACE_ID.fullmatch(trace_id):
        raise ConsoleRefusal(404, "There is no such trace in this project.")
    found = console.services.traces.get_trace(console.project.project_id, trace_id.lower())
    if found is None:
        raise ConsoleRefusal(404, "There is no such trace in this project.")
    return found


def _trace_page(
    console: Console, found: dict[str, Any], span: str | None, form: Form | None = None, status: int = 200
) -> HTMLResponse:
    spans = found["spans"]
    wf = trace_view.waterfall(spans)  # nests spans (adds "children") before anything reads them
    by_id = {s["span_id"]: s for s in spans}
    chosen = span.lower() if span and SPAN_ID.fullmatch(span) else trace_view.default_span(spans)
    selected = by_id.get(chosen or "") or (spans[0] if spans else None)
    root = wf.rows[0].span if wf.rows else None
    comments = console.services.comments.list(
        console.project.project_id, "trace", found["trace_id"], limit=MAX_PAGE
    )
    return render(
        console,
        "traces/detail.html",
        status=status,
        fragment="span_detail",
        trace_id=found["trace_id"],
        root=root,
        waterfall=wf,
        totals=trace_view.totals(spans),
        selected=selected,
        messages=trace_view.conversation(selected["input"], selected["output"]) if selected else [],
        scores=found["scores"],
        comments=[(c, trace_view.mention_segments(c.body)) for c in comments.items],
        more_comments=comments.next_cursor is not None,
        form=form,
        pretty=trace_view.pretty,
    )


@router.get("/p/{project}/traces/{trace_id}", response_class=HTMLResponse)
def trace_detail(console: Reader, trace_id: str, span: str | None = None) -> HTMLResponse:
    """One trace: the waterfall, the chosen span's details and conversation, scores, comments."""
    return _trace_page(console, _load(console, trace_id), span)


@router.post("/p/{project}/traces/{trace_id}/comments", response_class=HTMLResponse)
def add_comment(console: Writer, trace_id: str, form: Annotated[Form, Depends(posted)]) -> Response:
    """Comment on the trace (its mentions notify the people named)."""
    found = _load(console, trace_id)
    author = Author(name=console.actor, user_id=console.session.user.id)
    try:
        project_id = console.project.project_id
        written = form.data.get("body", "")
        body = console.services.pii.text(project_id, written) or ""  # stored as the API stores it
        console.services.comments.add(
            project_id, author, "trace", found["trace_id"], body, mentions_from=written
        )
    except TargetNotFound:
        raise ConsoleRefusal(404, "There is no such trace in this project.") from None
    except CommentError as exc:
        form.fail("body", exc.message[:1].upper() + exc.message[1:] + ".")
        return _trace_page(console, found, None, form, status=400)
    return RedirectResponse(console.url(f"traces/{found['trace_id']}#comments"), status_code=303)
