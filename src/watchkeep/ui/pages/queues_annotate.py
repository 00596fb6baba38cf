"""The annotator's view of a queue: one trace's conversation and the queue's label buttons.

``annotate`` opens the next item waiting for the user (``next_item``), an item by its
position (``?at=``: next/previous with ``j``/``k``) or the next waiting one after a
position (``?after=``: skip with ``s``). A label is posted by htmx, which swaps the panel
for the next item's, or by a plain form post answered with a 303 to the next item. Viewers
see the item read-only; the post itself needs ``annotations:write`` (403 otherwise).
Labels are not recorded in the activity feed one by one (they would drown it).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from watchkeep.security.authz import Permission
from watchkeep.store.annotation_repository import AnnotationError, QueueNotFound
from watchkeep.store.trace_queries import encode_cursor
from watchkeep.ui import trace_view
from watchkeep.ui.forms import Form, posted
from watchkeep.ui.frame import Console, ConsoleRefusal, is_htmx, page, render
from watchkeep.ui.pages.queues import queue_of

router = APIRouter(include_in_schema=False)
Reader = Annotated[Console, Depends(page(Permission.TRACES_READ))]
Writer = Annotated[Console, Depends(page(Permission.ANNOTATIONS_WRITE))]
MAX_POSITION = 2**62
MAX_ITEM_ID = 2**63 - 1
SHORTCUT_LABELS = 9  # labels 1..9 have a key


def item_at(console: Console, queue_id: int, position: int) -> dict[str, Any] | None:
    """The queue's item at ``position`` or, when there is none, the first after it."""
    if not 0 <= position <= MAX_POSITION:
        return None
    page_ = console.services.annotations.list_items(
        console.project.project_id, queue_id, 1, encode_cursor(position - 1, MAX_ITEM_ID)
    )
    return page_.items[0] if page_.items else None


def next_for_user(console: Console, queue_id: int, after: int | None = None) -> dict[str, Any] | None:
    """The next item waiting for the user after ``after``, wrapping to the first waiting one."""
    repo, pid, uid = console.services.annotations, console.project.project_id, console.session.user.id
    found = repo.next_item(pid, queue_id, uid, after) if after is not None else None
    return found or repo.next_item(pid, queue_id, uid)


def _conversation(console: Console, item: dict[str, Any]) -> tuple[bool, list[trace_view.Message]]:
    """Whether the item's trace is still stored, and its conversation (the item's span, else
    the trace's first span with messages)."""
    found = console.services.traces.get_trace(console.project.project_id, item["trace_id"])
    if found is None:
        return False, []
    spans = found["spans"]
    wanted = item.get("span_id") or trace_view.default_span(spans)
    span = next((s for s in spans if s["span_id"] == wanted), spans[0] if spans else None)
    if span is None:
        return True, []
    return True, trace_view.conversation(span.get("input"), span.get("output"))


def panel(
    console: Console,
    queue: dict[str, Any],
    item: dict[str, Any] | None,
    *,
    status: int = 200,
    error: str = "",
    comment: str = "",
) -> HTMLResponse:
    """The annotation page (or, for htmx, only its panel) showing ``item`` of ``queue`` (with
    the user's progress)."""
    stored, messages = _conversation(console, item) if item is not None else (False, [])
    mine = None
    if item is not None:
        mine = next((x for x in item["labels"] if x["user_id"] == console.session.user.id), None)
    progress = queue["progress"]
    headers = {}
    if item is not None and is_htmx(console.request):
        headers["HX-Push-Url"] = console.url(f"queues/{queue['id']}/annotate?at={item['position']}")
    return render(
        console,
        "queues/annotate.html",
        status=status,
        fragment="panel",
        headers=headers,
        queue=queue,
        item=item,
        stored=stored,
        messages=messages,
        mine=mine,
        done=progress["items"] - (progress["remaining_for_me"] or 0),
        shortcuts=SHORTCUT_LABELS,
        error=error,
        comment=comment if comment else (mine["comment"] or "" if mine else ""),
    )


@router.get("/p/{project}/queues/{queue_id}/annotate", response_class=HTMLResponse)
def annotate(console: Reader, queue_id: int, at: int | None = None, after: int | None = None) -> HTMLResponse:
    """The next item waiting for the user, the item at position ``at``, or the next waiting
    one after position ``after`` (a skip)."""
    queue = queue_of(console, queue_id)
    if at is not None:
        item = item_at(console, queue_id, at)
    else:
        item = next_for_user(
            console, queue_id, after if after is not None and 0 <= after <= MAX_POSITION else None
        )
    return panel(console, queue, item)


@router.post("/p/{project}/queues/{queue_id}/items/{item_id}/label", response_class=HTMLResponse)
def label(console: Writer, queue_id: int, item_id: int, form: Annotated[Form, Depends(posted)]) -> Response:
    """Store the user's label of the item (replacing an earlier one), then show the next item."""
    queue_of(console, queue_id)
    if not 0 < item_id <= MAX_ITEM_ID:
        raise ConsoleRefusal(404, "There is no such item in this queue.")
    comment = form.data.get("comment", "").strip() or None
    try:
        done = console.services.annotations.label(
            console.project.project_id,
            queue_id,
            item_id,
            console.session.user.id,
            form.data.get("label", ""),
            comment,
        )
    except QueueNotFound:
        raise ConsoleRefusal(404, "There is no such item in this queue.") from None
    except AnnotationError as exc:
        status = 400 if exc.status == 422 else exc.status
        current = _shown(console, queue_id, item_id, form.data.get("position", ""))
        queue = queue_of(console, queue_id)
        return panel(console, queue, current, status=status, error=exc.message, comment=comment or "")
    if is_htmx(console.request):
        following = next_for_user(console, queue_id, done["position"])
        return panel(console, queue_of(console, queue_id), following)
    return RedirectResponse(
        console.url(f"queues/{queue_id}/annotate?after={done['position']}"), status_code=303
    )


def _shown(console: Console, queue_id: int, item_id: int, position: str) -> dict[str, Any] | None:
    """The item that was labelled (found by the form's ``position``), to show it again with
    the error; the next waiting item when the position does not lead to it."""
    if position.isdigit() and len(position) < 20:
        found = item_at(console, queue_id, int(position))
        if found is not None and found["id"] == item_id:
            return found
    return next_for_user(console, queue_id)
