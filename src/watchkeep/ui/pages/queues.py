"""Annotation queues: the list, a new queue filled by a filter or a seeded sample, one queue.

Validation is the API's (``QueueCreate``, ``FillRequest``) and the work is the API's
service (``AnnotationRepository``), so a queue made here is the queue ``POST
/api/v1/annotation-queues`` plus ``.../items`` would make. The queue page's agreement is
``monitor.agreement`` over ``labels_by_item``, as ``GET .../agreement`` computes it.
Labelling lives in ``queues_annotate``.
"""

from __future__ import annotations

import dataclasses
import re
import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError

from watchkeep.api.annotation_schemas import FillRequest, QueueCreate
from watchkeep.api.routes.traces import trace_filter
from watchkeep.api.schemas import to_unix_ns
from watchkeep.monitor.agreement import agreement
from watchkeep.security.authz import Permission
from watchkeep.store.annotation_repository import AnnotationError, QueueSpec
from watchkeep.store.trace_queries import InvalidCursor
from watchkeep.ui.filters import RANGES
from watchkeep.ui.forms import Form, posted
from watchkeep.ui.frame import Console, ConsoleRefusal, NavItem, page, render
from watchkeep.ui.templating import query

router = APIRouter(include_in_schema=False)
NAV = NavItem("Queues", "queues", Permission.TRACES_READ, shortcut="q")
Reader = Annotated[Console, Depends(page(Permission.TRACES_READ))]
Writer = Annotated[Console, Depends(page(Permission.ANNOTATIONS_WRITE))]
ITEMS_PAGE = 50
MAX_QUEUE_ID = 2**63 - 1
MAX_CURSOR_CHARS = 512
FILL_WAYS = ("filter", "sample")
NS = 1_000_000_000
# Fields of the new-queue form that the API's fill schema reports under other names.
FILL_FIELDS = {"limit": "size", "sample": "size", "seed": "seed", "filter": "q", "form": "size"}


def queue_of(console: Console, queue_id: int) -> dict[str, Any]:
    """The project's queue ``queue_id`` with the user's progress, else a 404."""
    if 0 < queue_id <= MAX_QUEUE_ID:
        try:
            return console.services.annotations.get_queue(
                console.project.project_id, queue_id, console.session.user.id
            )
        except AnnotationError:
            pass
    raise ConsoleRefusal(404, "There is no such annotation queue in this project.")


def record(console: Console, verb: str, queue: dict[str, Any], summary: str) -> None:
    """An activity entry for a change to ``queue`` (creation, fill, deletion; labels are not
    recorded one by one: they would drown the feed)."""
    console.services.activity.record(
        console.project.project_id,
        actor=console.actor,
        actor_user_id=console.session.user.id,
        verb=verb,
        target_kind="annotation_queue",
        target_id=str(queue["id"]),
        summary=summary,
    )


@router.get("/p/{project}/queues", response_class=HTMLResponse)
def queue_list(console: Reader) -> HTMLResponse:
    """The project's queues, newest first, with their progress and what is left for the user."""
    queues = console.services.annotations.list_queues(console.project.project_id, console.session.user.id)
    return render(console, "queues/list.html", queues=queues)


# --- a new queue ------------------------------------------------------------------------


def split_labels(text: str) -> list[str]:
    """Labels one per line, or comma-separated on one line; blanks dropped."""
    parts = re.split(r"[\r\n]+", text) if "\n" in text else text.split(",")
    return [p.strip() for p in parts if p.strip()]


def _check(form: Form, model: type[BaseModel], data: dict[str, Any], rename: dict[str, str]) -> Any:
    """``model`` from ``data``, or None with each error put on its form field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "form"
            message = str(error["msg"]).removeprefix("Value error, ")
            form.fail(rename.get(name, name), message)
        return None


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / NS, tz=UTC).isoformat()


def _fill_request(form: Form, now_ns: int) -> FillRequest | None:
    """The API's fill request from the form: the first N of the filter, or a seeded sample
    of N from the time range."""
    d = form.data
    way = d.get("fill", "filter")
    if way not in FILL_WAYS:
        form.fail("fill", "choose a filter or a random sample")
        return None
    chosen = d.get("range", "24h")
    if chosen not in RANGES:
        form.fail("range", f"one of {', '.join(RANGES)}")
        return None
    since, until = now_ns - RANGES[chosen] * NS, now_ns
    flt: dict[str, Any] = {
        k: d[k].strip() for k in ("model", "release", "environment", "q") if d.get(k, "").strip()
    }
    if d.get("errors_only"):
        flt["status"] = "error"
    body: dict[str, Any] = {"filter": flt}
    size, seed = d.get("size", "50").strip(), d.get("seed", "0").strip() or "0"
    if way == "filter":
        body.update(limit=size)
        flt.update(start_from=_iso(since), start_to=_iso(until))
    else:
        body.update(sample=size, seed=seed, since=_iso(since), until=_iso(until))
    fill: FillRequest | None = _check(form, FillRequest, body, FILL_FIELDS)
    return fill


def _queue_create(form: Form) -> QueueCreate | None:
    d = form.data
    body: dict[str, Any] = {
        "name": d.get("name", ""),
        "description": d.get("description", "").strip() or None,
        "score_name": d.get("score_name", ""),
        "labels": split_labels(d.get("labels", "")),
        "annotators_per_item": d.get("annotators_per_item", "1").strip() or "1",
    }
    created: QueueCreate | None = _check(form, QueueCreate, body, {"form": "labels"})
    return created


def _new_page(console: Console, form: Form | None, status: int = 200) -> HTMLResponse:
    return render(
        console,
        "queues/new.html",
        status=status,
        form=form,
        ranges=tuple(RANGES),
        search_on=console.services.settings.search_index,
    )


@router.get("/p/{project}/queues/new", response_class=HTMLResponse)
def new_queue(console: Writer) -> HTMLResponse:
    """The form of a new queue and how to fill it."""
    return _new_page(console, None)


@router.post("/p/{project}/queues/new", response_class=HTMLResponse)
def create_queue(request: Request, console: Writer, form: Annotated[Form, Depends(posted)]) -> Response:
    """Create and fill a queue; every error is shown at its field with a 400 and nothing is
    stored (a fill the service refuses removes the queue it was filling)."""
    body = _queue_create(form)
    fill = _fill_request(form, time.time_ns())
    if fill is not None and fill.filter.q and not console.services.settings.search_index:
        form.fail("q", "search is off on this server (WATCHKEEP_SEARCH_INDEX=0)")
    if body is None or fill is None or form.errors:
        return _new_page(console, form, status=400)
    repo, pid = console.services.annotations, console.project.project_id
    spec = QueueSpec(
        name=body.name,
        score_name=body.score_name,
        labels=tuple(body.labels),
        annotators_per_item=body.annotators_per_item,
        description=body.description,
    )
    try:
        queue = repo.create_queue(pid, spec, created_by=console.actor)
    except AnnotationError as exc:
        form.fail("name", exc.message)
        return _new_page(console, form, status=400)
    f = trace_filter(request, **fill.filter.model_dump())
    try:
        if fill.limit is not None:
            result = repo.fill_first(pid, queue["id"], f, fill.limit)
            how = f"the newest matching the filter, up to {fill.limit}"
        else:
            assert fill.sample is not None
            f = dataclasses.replace(
                f, start_from_ns=to_unix_ns(fill.since), start_to_ns=to_unix_ns(fill.until)
            )
            result = repo.fill_sample(pid, queue["id"], f, fill.sample, fill.seed)
            how = f"a random sample of {fill.sample}, seed {fill.seed}"
    except AnnotationError as exc:
        repo.delete_queue(pid, queue["id"])
        form.fail("size", exc.message)
        return _new_page(console, form, status=400)
    record(
        console,
        "created",
        queue,
        f"created annotation queue {queue['name']} with {result.added} traces ({how})",
    )
    return RedirectResponse(console.url(f"queues/{queue['id']}"), status_code=303)


# --- one queue --------------------------------------------------------------------------


def agreement_of(console: Console, queue_id: int) -> dict[str, Any]:
    """The queue's agreement report with annotator names: what ``GET .../agreement`` answers."""
    queue, items, names = console.services.annotations.labels_by_item(console.project.project_id, queue_id)
    report = agreement(items, queue["labels"])
    return {
        "report": report,
        "annotators": [
            {"user_id": user, "name": names.get(user, str(user)), "labels": count}
            for user, count in report.annotators.items()
        ],
    }


def _detail(console: Console, queue_id: int, cursor: str | None, with_agreement: bool) -> HTMLResponse:
    queue = queue_of(console, queue_id)
    if cursor is not None and len(cursor) > MAX_CURSOR_CHARS:
        raise ConsoleRefusal(400, "That page link is not valid; start from the first page.")
    try:
        items = console.services.annotations.list_items(
            console.project.project_id, queue_id, ITEMS_PAGE, cursor
        )
    except (InvalidCursor, AnnotationError):
        raise ConsoleRefusal(400, "That page link is not valid; start from the first page.") from None
    here = console.url(f"queues/{queue_id}")
    return render(
        console,
        "queues/detail.html",
        fragment="agreement" if with_agreement else None,
        queue=queue,
        items=items.items,
        next_url=here + query({}, cursor=items.next_cursor) if items.next_cursor else "",
        agreement=agreement_of(console, queue_id) if with_agreement else None,
        first_page=cursor is None,
    )


@router.get("/p/{project}/queues/{queue_id}", response_class=HTMLResponse)
def queue_detail(console: Reader, queue_id: int, cursor: str | None = None) -> HTMLResponse:
    """Progress and the items (by position, keyset-paged) of one queue; the agreement panel
    loads after the page (htmx), since its bootstrap grows with the queue's labels."""
    return _detail(console, queue_id, cursor, with_agreement=False)


@router.get("/p/{project}/queues/{queue_id}/agreement", response_class=HTMLResponse)
def queue_agreement(console: Reader, queue_id: int) -> HTMLResponse:
    """The agreement panel (for htmx), or the queue page with it (without JavaScript)."""
    return _detail(console, queue_id, None, with_agreement=True)


@router.post("/p/{project}/queues/{queue_id}/delete", response_class=HTMLResponse)
def delete_queue(console: Writer, queue_id: int, form: Annotated[Form, Depends(posted)]) -> Response:
    """Delete the queue with its items, labels and the ground-truth scores they made."""
    queue = queue_of(console, queue_id)
    console.services.annotations.delete_queue(console.project.project_id, queue_id)
    record(
        console,
        "deleted",
        queue,
        f"deleted annotation queue {queue['name']} ({queue['progress']['items']} items)",
    )
    return RedirectResponse(console.url("queues"), status_code=303)
