"""Trace and span queries: ``/api/v1/traces``, ``/api/v1/traces/{id}``, ``/api/v1/spans``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import AwareDatetime, StringConstraints

from watchkeep.api.auth import require, services
from watchkeep.api.errors import ApiError
from watchkeep.api.openapi import errors
from watchkeep.api.schemas import HEX32, SpanPage, TraceDetail, TracePage, to_unix_ns
from watchkeep.security.authz import Permission
from watchkeep.security.keys import Principal
from watchkeep.store.trace_queries import InvalidCursor, TraceFilter
from watchkeep.store.trace_tree import build_tree

router = APIRouter(prefix="/api/v1", tags=["traces"])
READ_ERRORS = errors((400, "Bad cursor or filter"), 401, (403, "Key lacks traces:read"))
ERRORS = {**READ_ERRORS, **errors((503, "`q` given while search is off (WATCHKEEP_SEARCH_INDEX=0)"))}
SEARCH_OFF = (
    "full-text search is off on this server (WATCHKEEP_SEARCH_INDEX=0): nothing is indexed; "
    "drop q or ask the operator to turn it on"
)
Reader = Annotated[Principal, Depends(require(Permission.TRACES_READ))]
Text = Annotated[str | None, Query(max_length=256)]
MAX_TAGS = 10
MAX_METADATA = 10
Item = Annotated[str, StringConstraints(min_length=1, max_length=256)]
MetadataItem = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-]{1,128}:", max_length=400)]


def trace_filter(
    request: Request,
    start_from: Annotated[
        AwareDatetime | None, Query(description="Earliest start (inclusive), ISO 8601.")
    ] = None,
    start_to: Annotated[
        AwareDatetime | None, Query(description="Latest start (exclusive), ISO 8601.")
    ] = None,
    model: Text = None,
    provider: Text = None,
    operation: Text = None,
    user_id: Text = None,
    session_id: Text = None,
    environment: Text = None,
    release: Text = None,
    status: Annotated[Literal["ok", "error"] | None, Query()] = None,
    name: Annotated[str | None, Query(max_length=256, description="Substring of the name.")] = None,
    trace_id: Annotated[str | None, Query(pattern=HEX32)] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=256,
            description="Words of the prompt or response text, all required (plain words, no "
            "query syntax). The index trails ingest by a few seconds.",
        ),
    ] = None,
    tag: Annotated[
        list[Item] | None, Query(max_length=MAX_TAGS, description="Repeatable: a tag the trace must have.")
    ] = None,
    metadata: Annotated[
        list[MetadataItem] | None,
        Query(
            max_length=MAX_METADATA,
            description="Repeatable `key:value`: SDK metadata `key` must equal `value` (as text).",
        ),
    ] = None,
) -> TraceFilter:
    """The filter shared by the trace and span lists."""
    if q is not None and not services(request).settings.search_index:
        raise ApiError(503, "search_off", SEARCH_OFF)
    return TraceFilter(
        start_from_ns=to_unix_ns(start_from),
        start_to_ns=to_unix_ns(start_to),
        model=model,
        provider=provider,
        operation=operation,
        user_id=user_id,
        session_id=session_id,
        environment=environment,
        release=release,
        status=status,
        name=name,
        trace_id=trace_id.lower() if trace_id else None,
        q=q,
        tags=tuple(dict.fromkeys(tag or ())),
        metadata=tuple(dict.fromkeys(tuple(m.split(":", 1)) for m in metadata or ())),  # type: ignore[misc]
    )


Filter = Annotated[TraceFilter, Depends(trace_filter)]
Cursor = Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")]


@router.get("/traces", response_model=TracePage, responses=ERRORS)
def list_traces(
    request: Request,
    principal: Reader,
    f: Filter,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Cursor = None,
) -> TracePage:
    """Traces of the key's project, newest first."""
    try:
        page = services(request).traces.list_traces(principal.project_id, f, limit, cursor)
    except InvalidCursor as exc:
        raise ApiError(400, "invalid_cursor", str(exc)) from exc
    return TracePage.model_validate(
        {"items": page.items, "next_cursor": page.next_cursor}, from_attributes=True
    )


@router.get(
    "/traces/{trace_id}",
    response_model=TraceDetail,
    responses={**READ_ERRORS, **errors((404, "No such trace"))},
)
def get_trace(
    request: Request,
    principal: Reader,
    trace_id: Annotated[str, Path(pattern=HEX32)],
) -> TraceDetail:
    """One trace as a span tree, with message payloads and scores."""
    found = services(request).traces.get_trace(principal.project_id, trace_id.lower())
    if found is None:
        raise ApiError(404, "not_found", f"no trace {trace_id} in this project")
    return TraceDetail.model_validate(
        {
            "trace_id": found["trace_id"],
            "span_count": len(found["spans"]),
            "roots": build_tree(found["spans"]),
            "scores": found["scores"],
        }
    )


@router.get("/spans", response_model=SpanPage, responses=ERRORS)
def list_spans(
    request: Request,
    principal: Reader,
    f: Filter,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Cursor = None,
) -> SpanPage:
    """Spans of the key's project, newest first."""
    try:
        page = services(request).traces.list_spans(principal.project_id, f, limit, cursor)
    except InvalidCursor as exc:
        raise ApiError(400, "invalid_cursor", str(exc)) from exc
    return SpanPage.model_validate({"items": page.items, "next_cursor": page.next_cursor})
