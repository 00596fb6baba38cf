"""Annotation queues: ``/api/v1/annotation-queues``.

Keys create, fill, read and delete queues; labelling is for console users (the console
calls ``AnnotationRepository.label`` with the session's user), so there is no label route
for keys. Every lookup is scoped to the key's project: another project's queue is a 404.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Annotated, NoReturn

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from watchkeep.api.annotation_schemas import (
    AgreementOut,
    FillOut,
    FillRequest,
    ItemPage,
    QueueCreate,
    QueueList,
    QueueOut,
)
from watchkeep.api.auth import require, services
from watchkeep.api.errors import ApiError
from watchkeep.api.openapi import errors
from watchkeep.api.routes.traces import trace_filter
from watchkeep.api.schemas import to_unix_ns
from watchkeep.monitor.agreement import agreement
from watchkeep.security.authz import Permission
from watchkeep.security.keys import Principal
from watchkeep.store.annotation_repository import AnnotationError, FillResult, QueueSpec
from watchkeep.store.trace_queries import InvalidCursor, TraceFilter

router = APIRouter(prefix="/api/v1", tags=["annotations"])
Reader = Annotated[Principal, Depends(require(Permission.TRACES_READ))]
Writer = Annotated[Principal, Depends(require(Permission.ANNOTATIONS_WRITE))]
QueueId = Annotated[int, Path(ge=1, lt=2**63)]
AUTH = errors(401, (403, "Key lacks traces:read"))
WRITE_AUTH = errors(401, (403, "Key lacks annotations:write"))
NOT_FOUND = errors((404, "No such queue in this project"))


def _refuse(exc: AnnotationError) -> NoReturn:
    raise ApiError(exc.status, exc.code, exc.message) from exc


@router.get("/annotation-queues", response_model=QueueList, responses=AUTH)
def list_queues(request: Request, principal: Reader) -> QueueList:
    """The project's annotation queues, newest first, each with its progress."""
    queues = services(request).annotations.list_queues(principal.project_id)
    return QueueList.model_validate({"items": queues})


@router.post(
    "/annotation-queues",
    status_code=201,
    response_model=QueueOut,
    responses={**WRITE_AUTH, **errors(422, (409, "Name taken, or the project has its maximum of queues"))},
)
def create_queue(request: Request, principal: Writer, body: QueueCreate) -> QueueOut:
    """A new, empty queue; fill it with ``POST .../items``."""
    spec = QueueSpec(
        name=body.name,
        score_name=body.score_name,
        labels=tuple(body.labels),
        annotators_per_item=body.annotators_per_item,
        description=body.description,
    )
    try:
        queue = services(request).annotations.create_queue(
            principal.project_id, spec, created_by=f"key:{principal.key_id}"
        )
    except AnnotationError as exc:
        _refuse(exc)
    return QueueOut.model_validate(queue)


@router.get("/annotation-queues/{queue_id}", response_model=QueueOut, responses={**AUTH, **NOT_FOUND})
def get_queue(request: Request, principal: Reader, queue_id: QueueId) -> QueueOut:
    """One queue with its progress."""
    try:
        return QueueOut.model_validate(
            services(request).annotations.get_queue(principal.project_id, queue_id)
        )
    except AnnotationError as exc:
        _refuse(exc)


@router.delete("/annotation-queues/{queue_id}", status_code=204, responses={**WRITE_AUTH, **NOT_FOUND})
def delete_queue(request: Request, principal: Writer, queue_id: QueueId) -> Response:
    """Delete a queue with its items, labels and the ground-truth scores they made."""
    try:
        services(request).annotations.delete_queue(principal.project_id, queue_id)
    except AnnotationError as exc:
        _refuse(exc)
    return Response(status_code=204)


@router.post(
    "/annotation-queues/{queue_id}/items",
    response_model=FillOut,
    responses={
        **WRITE_AUTH,
        **NOT_FOUND,
        **errors(
            (409, "The queue would pass 100,000 items"),
            (422, "Neither or both of limit and sample; a sample without since/until or too wide"),
            (503, "`filter.q` given while search is off"),
        ),
    },
)
def fill_queue(request: Request, principal: Writer, queue_id: QueueId, body: FillRequest) -> FillOut:
    """Add traces: the first ``limit`` matching the filter (newest first), or a random
    ``sample`` of those started in [since, until), reproducible with its ``seed``.
    Traces already in the queue are skipped."""
    f = trace_filter(request, **body.filter.model_dump())
    repo = services(request).annotations
    result: FillResult
    try:
        if body.limit is not None:
            result = repo.fill_first(principal.project_id, queue_id, f, body.limit)
        else:
            assert body.sample is not None
            ranged = _within(f, to_unix_ns(body.since), to_unix_ns(body.until))
            result = repo.fill_sample(principal.project_id, queue_id, ranged, body.sample, body.seed)
    except AnnotationError as exc:
        _refuse(exc)
    return FillOut.model_validate(result, from_attributes=True)


def _within(f: TraceFilter, since: int | None, until: int | None) -> TraceFilter:
    """The filter narrowed to [since, until) (intersected with its own start range)."""
    start = (
        max(x for x in (f.start_from_ns, since) if x is not None) if since is not None else f.start_from_ns
    )
    end = min(x for x in (f.start_to_ns, until) if x is not None) if until is not None else f.start_to_ns
    return dataclasses.replace(f, start_from_ns=start, start_to_ns=end)


@router.get(
    "/annotation-queues/{queue_id}/items",
    response_model=ItemPage,
    responses={**AUTH, **NOT_FOUND, **errors((400, "Bad cursor"))},
)
def list_items(
    request: Request,
    principal: Reader,
    queue_id: QueueId,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[
        str | None, Query(max_length=512, description="next_cursor of the previous page")
    ] = None,
) -> ItemPage:
    """The queue's items by position, each with its labels, agreed label and status."""
    try:
        page = services(request).annotations.list_items(principal.project_id, queue_id, limit, cursor)
    except InvalidCursor as exc:
        raise ApiError(400, "invalid_cursor", str(exc)) from exc
    except AnnotationError as exc:
        _refuse(exc)
    return ItemPage.model_validate({"items": page.items, "next_cursor": page.next_cursor})


@router.get(
    "/annotation-queues/{queue_id}/agreement",
    response_model=AgreementOut,
    responses={**AUTH, **NOT_FOUND},
)
async def get_agreement(request: Request, principal: Reader, queue_id: QueueId) -> AgreementOut:
    """Inter-annotator agreement: percent agreement; Cohen's kappa for two annotators, mean
    pairwise Cohen's and Fleiss' kappa for more; each with n and a seeded 95% bootstrap
    interval over items; labels given per annotator."""
    repo = services(request).annotations
    try:
        queue, items, names = await run_in_threadpool(repo.labels_by_item, principal.project_id, queue_id)
    except AnnotationError as exc:
        _refuse(exc)
    report = await run_in_threadpool(agreement, items, queue["labels"])
    body = dataclasses.asdict(report)
    body["annotators"] = [
        {"user_id": user, "name": names.get(user, str(user)), "labels": count}
        for user, count in report.annotators.items()
    ]
    body["computed_at"] = datetime.now(UTC)
    return AgreementOut.model_validate(body)
