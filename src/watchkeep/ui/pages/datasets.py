"""Datasets: the list, a dataset's versions, a version's items, a diff of two versions, and
a dataset built from the trace list's current filter.

Everything goes through ``DatasetRepository`` (the API's service), so a version built here
is the version ``POST /api/v1/datasets/{name}/versions`` would store: same content hash,
same deduplication. Versions are immutable; the only change a page makes is a new version
or deleting a whole dataset.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from watchkeep.evals.dataset_repository import DatasetNotFound, DatasetVersionInfo
from watchkeep.evals.dataset_sources import items_from_traces
from watchkeep.evals.datasets import diff_items
from watchkeep.security.authz import Permission
from watchkeep.store.trace_queries import InvalidCursor
from watchkeep.ui import eval_view
from watchkeep.ui.filters import read_filters
from watchkeep.ui.forms import Form, posted
from watchkeep.ui.frame import Console, ConsoleRefusal, NavItem, page, render
from watchkeep.ui.pages.traces import FIELDS as TRACE_FIELDS
from watchkeep.ui.pages.traces import trace_filter
from watchkeep.ui.templating import query

router = APIRouter(include_in_schema=False)
NAV = NavItem("Datasets", "datasets", Permission.EVALS_READ, shortcut="d")
Reader = Annotated[Console, Depends(page(Permission.EVALS_READ))]
Writer = Annotated[Console, Depends(page(Permission.EVALS_WRITE))]
PAGE_SIZE = 50
MAX_CURSOR_CHARS = 512
MAX_NAME_CHARS = 128
MAX_OFFSET = 1_000_000
MAX_DIFF_ITEMS = 50_000  # items per side that the page will load to diff; the CLI has no cap
DIFF_LIMIT = 500  # changed/added/removed items shown
MAX_BUILD = 5_000
NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
VERSION_REF = re.compile(r"latest|[0-9]{1,9}|[0-9a-fA-F]{8,64}")


class BuildDataset(BaseModel):
    """The "Build a dataset" form on the trace list."""

    dataset: str = Field(pattern=NAME, description="letters, digits, '.', '_', '-'; at most 128")
    message: str = Field(default="", max_length=500)
    limit: int = Field(default=100, ge=1, le=MAX_BUILD)
    with_expected: bool = False


def _not_found(what: str = "dataset") -> ConsoleRefusal:
    return ConsoleRefusal(404, f"There is no such {what} in this project.")


def _version(console: Console, name: str, ref: str) -> DatasetVersionInfo:
    """A version of ``name`` by number, ``latest`` or hash prefix, else a 404 page."""
    if len(name) > MAX_NAME_CHARS or not VERSION_REF.fullmatch(ref):
        raise _not_found("dataset version")
    try:
        return console.services.datasets.resolve(
            console.project.project_id, name, int(ref) if ref.isdigit() else ref
        )
    except (DatasetNotFound, ValueError):
        raise _not_found("dataset version") from None


@router.get("/p/{project}/datasets", response_class=HTMLResponse)
def dataset_list(console: Reader, cursor: str | None = None) -> HTMLResponse:
    """The project's datasets by name with their latest version, keyset-paged."""
    if cursor is not None and len(cursor) > MAX_CURSOR_CHARS:
        raise ConsoleRefusal(400, "That page link is not valid; start again from the first page.")
    try:
        found = console.services.datasets.list_datasets(
            console.project.project_id, limit=PAGE_SIZE, cursor=cursor
        )
    except (InvalidCursor, ValueError):
        raise ConsoleRefusal(400, "That page link is not valid; start again from the first page.") from None
    next_url = query({}, cursor=found.next_cursor) if found.next_cursor else None
    return render(console, "datasets/list.html", datasets=found.items, next_url=next_url, view=eval_view)


@router.get("/p/{project}/datasets/{name}", response_class=HTMLResponse)
def dataset_detail(console: Reader, name: str) -> HTMLResponse:
    """Every version of a dataset, newest first."""
    if len(name) > MAX_NAME_CHARS:
        raise _not_found()
    try:
        versions = console.services.datasets.versions(console.project.project_id, name)
    except DatasetNotFound:
        raise _not_found() from None
    return render(console, "datasets/detail.html", name=name, versions=versions, view=eval_view)


@router.get("/p/{project}/datasets/{name}/versions/{ref}", response_class=HTMLResponse)
def version_items(
    console: Reader,
    name: str,
    ref: str,
    split: Annotated[str | None, Query(max_length=100)] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> HTMLResponse:
    """A version's items in position order, 50 a page, optionally one split."""
    version = _version(console, name, ref)
    split = split or None
    rows = console.services.datasets.items(
        console.project.project_id, version.id, split=split, limit=PAGE_SIZE + 1, offset=offset
    )
    params: dict[str, object] = {"split": split}
    next_url = query(params, offset=offset + PAGE_SIZE) if len(rows) > PAGE_SIZE else None
    return render(
        console,
        "datasets/version.html",
        version=version,
        items=rows[:PAGE_SIZE],
        split=split,
        offset=offset,
        next_url=next_url,
        view=eval_view,
    )


def _diff_refs(console: Console, name: str, old: str | None, new: str | None) -> tuple[str, str]:
    """The two versions to compare; by default the newest and the one before it."""
    if old and new:
        return old, new
    try:
        versions = console.services.datasets.versions(console.project.project_id, name)
    except DatasetNotFound:
        raise _not_found() from None
    latest = str(versions[0].version)
    previous = str(versions[1].version) if len(versions) > 1 else latest
    return old or previous, new or latest


@router.get("/p/{project}/datasets/{name}/diff", response_class=HTMLResponse)
def version_diff(
    console: Reader,
    name: str,
    old: Annotated[str | None, Query(alias="from", max_length=64)] = None,
    new: Annotated[str | None, Query(alias="to", max_length=64)] = None,
) -> HTMLResponse:
    """Items added, removed and changed between two versions (changed fields highlighted)."""
    if len(name) > MAX_NAME_CHARS:
        raise _not_found()
    old_ref, new_ref = _diff_refs(console, name, old, new)
    a, b = _version(console, name, old_ref), _version(console, name, new_ref)
    if max(a.item_count, b.item_count) > MAX_DIFF_ITEMS:
        raise ConsoleRefusal(
            400,
            f"These versions hold more than {MAX_DIFF_ITEMS:,} items; diff them with "
            "`watchkeep dataset diff` instead.",
        )
    pid = console.project.project_id
    diff = diff_items(
        console.services.datasets.items(pid, a.id),
        console.services.datasets.items(pid, b.id),
        limit=DIFF_LIMIT,
    )
    return render(
        console,
        "datasets/diff.html",
        name=name,
        old=a,
        new=b,
        diff=diff,
        versions=console.services.datasets.versions(pid, name),
        view=eval_view,
    )


@router.post("/p/{project}/datasets/{name}/delete")
def dataset_delete(console: Writer, name: str, form: Annotated[Form, Depends(posted)]) -> Response:
    """Delete a dataset and every version (runs keep their results)."""
    del form  # the CSRF check is the point
    if len(name) > MAX_NAME_CHARS or not console.services.datasets.delete(console.project.project_id, name):
        raise _not_found()
    return RedirectResponse(console.url("datasets"), status_code=303)


# --- building a dataset from the trace list's filter ----------------------------------------


def _build_form(console: Console, form: Form, status: int) -> HTMLResponse:
    bar = read_filters(console.request, TRACE_FIELDS)
    return render(console, "datasets/build.html", form=form, bar=bar, status=status)


@router.post("/p/{project}/traces/dataset", response_class=HTMLResponse)
def build_from_traces(console: Writer, form: Annotated[Form, Depends(posted)]) -> Response:
    """A new dataset version from the traces the list's filter matches (the filter is the
    form action's query string: the list's URL state), newest first, up to ``limit``."""
    probe = Form(
        {
            "dataset": form.data.get("dataset", "").strip(),
            "message": form.data.get("message", "").strip(),
            "limit": form.data.get("limit", "100").strip() or "100",
            "with_expected": "true" if form.data.get("with_expected") in ("on", "true", "1") else "false",
        }
    )
    spec = probe.validate(BuildDataset)
    if spec is None:
        form.errors.update(probe.errors)
        return _build_form(console, form, 400)
    bar = read_filters(console.request, TRACE_FIELDS)
    if "q" in bar.values and not console.services.settings.search_index:
        form.fail("dataset", "full-text search is off on this server; drop the search words")
        return _build_form(console, form, 400)
    pid = console.project.project_id
    items = items_from_traces(
        console.services.traces, pid, trace_filter(bar), limit=spec.limit, with_expected=spec.with_expected
    )
    if not items:
        form.fail("dataset", "no traces match this filter in this time range")
        return _build_form(console, form, 400)
    source = {
        "kind": "traces",
        "filter": bar.params(),
        "limit": spec.limit,
        "with_expected": spec.with_expected,
    }
    try:
        version, created = console.services.datasets.create_version(
            pid, spec.dataset, items, source=source, message=spec.message or None, created_by=console.actor
        )
    except ValueError as exc:
        form.fail("dataset", str(exc))
        return _build_form(console, form, 400)
    if created:
        console.services.activity.record(
            pid,
            actor=console.actor,
            actor_user_id=console.session.user.id,
            verb="created",
            target_kind="dataset",
            target_id=f"{version.dataset_name}@{version.version}",
            summary=f"built version {version.version} of dataset {version.dataset_name} "
            f"from {version.item_count} traces",
        )
    return RedirectResponse(
        console.url(f"datasets/{version.dataset_name}/versions/{version.version}"), status_code=303
    )
