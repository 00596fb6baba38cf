"""Datasets and their immutable versions: ``/api/v1/datasets``.

A version is uploaded as JSON or as a JSONL, CSV or Parquet file (by Content-Type), or
built from production traces (the trace list's filters) or feedback labels. Identical
content is deduplicated by its hash: the existing version comes back with ``created``
false. Every lookup is in the key's project, so another project's dataset is a 404.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from watchkeep.api.auth import require, services
from watchkeep.api.errors import ApiError
from watchkeep.api.eval_schemas import (
    NAME_PATTERN,
    ChangeOut,
    CreatedVersionOut,
    DatasetItemList,
    DatasetOut,
    DatasetPage,
    DiffOut,
    FromFeedbackIn,
    FromTracesIn,
    VersionIn,
    VersionList,
    VersionOut,
    dataset_out,
    item_out,
    version_out,
)
from watchkeep.api.openapi import errors
from watchkeep.api.routes.monitors import actor_of
from watchkeep.api.routes.traces import Filter
from watchkeep.api.schemas import to_unix_ns
from watchkeep.evals.dataset_repository import MAX_ITEMS_PER_VERSION, DatasetNotFound
from watchkeep.evals.dataset_sources import items_from_feedback, items_from_traces
from watchkeep.evals.datasets import (
    DatasetParseError,
    assign_splits,
    diff_items,
    export_items,
    parse_items,
    parse_ratios,
)
from watchkeep.evals.model import DatasetItem
from watchkeep.security.authz import Permission
from watchkeep.security.keys import Principal
from watchkeep.store.trace_queries import InvalidCursor

router = APIRouter(prefix="/api/v1", tags=["datasets"])
AUTH = errors(400, 401, 403)
NOT_FOUND = errors((404, "No such dataset or version in this project"))
Reader = Annotated[Principal, Depends(require(Permission.EVALS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.EVALS_WRITE))]
Name = Annotated[str, Path(pattern=NAME_PATTERN, description="The dataset's name.")]
VERSION_PATTERN = r"^(latest|[0-9]{1,7}|[0-9a-fA-F]{8,64})$"
VersionRef = Annotated[
    str,
    Path(
        pattern=VERSION_PATTERN,
        description="A version number, `latest`, or a content-hash prefix (8+ hex digits).",
    ),
]
MAX_ITEMS_PAGE = 1000
MAX_DIFF = 1000
FILE_TYPES = {
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "text/csv": "csv",
    "application/vnd.apache.parquet": "parquet",
}
EXPORT_TYPES = {
    "jsonl": "application/x-ndjson",
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
}
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": VersionIn.model_json_schema()},
            **{ctype: {"schema": {"type": "string", "format": "binary"}} for ctype in FILE_TYPES},
        },
    }
}


def _version_ref(ref: str) -> int | str:
    return int(ref) if ref.isdigit() and len(ref) < 8 else ref.lower()


def _resolve(request: Request, principal: Principal, name: str, ref: str) -> Any:
    try:
        return services(request).datasets.resolve(principal.project_id, name, _version_ref(ref))
    except DatasetNotFound as exc:
        raise ApiError(404, "not_found", str(exc) or f"no version {ref} of dataset {name}") from exc


def _versions(request: Request, principal: Principal, name: str) -> Any:
    try:
        return services(request).datasets.versions(principal.project_id, name)
    except DatasetNotFound as exc:
        raise ApiError(404, "not_found", f"no dataset {name} in this project") from exc


def _row_errors(exc: DatasetParseError) -> JSONResponse:
    """422 naming the malformed rows (``error.rows``: row number and message, at most 100)."""
    rows = [{"row": e.row, "message": e.message} for e in exc.errors[:100]]
    first = "; ".join(f"row {r['row']}: {r['message']}" for r in rows[:3])
    message = f"{len(exc.errors)} malformed row(s): {first}"
    return JSONResponse({"error": {"code": "invalid_dataset", "message": message, "rows": rows}}, 422)


def _with_split(items: Sequence[DatasetItem], split_by: str | None, seed: int) -> list[DatasetItem]:
    """Items split by ratios such as ``train=0.8,test=0.2`` (stable per key and seed), or as given."""
    if not split_by:
        return list(items)
    try:
        return assign_splits(items, parse_ratios(split_by), seed)
    except ValueError as exc:
        raise ApiError(422, "invalid_split", str(exc)) from exc


def _store(
    request: Request,
    principal: Principal,
    name: str,
    items: Sequence[DatasetItem],
    *,
    source: dict[str, Any],
    message: str | None,
    description: str | None,
    skipped: Sequence[Any] = (),
) -> Response:
    """Write a version (or find its twin), record it in the activity feed, answer 201 or 200."""
    if not items:
        raise ApiError(422, "empty_dataset", "a version needs at least one item")
    svc = services(request)
    actor = actor_of(principal)
    items = svc.pii.redact_items(principal.project_id, items)
    version, created = svc.datasets.create_version(
        principal.project_id,
        name,
        items,
        source=source,
        message=message,
        created_by=actor,
        description=description,
    )
    if created:
        svc.activity.record(
            principal.project_id,
            actor=actor,
            actor_user_id=None,
            verb="created",
            target_kind="dataset",
            target_id=f"{name}@{version.version}",
            summary=f"created version {version.version} of dataset {name} ({version.item_count} items)"
            + (f": {message}" if message else ""),
        )
    out = CreatedVersionOut(
        **version_out(version).model_dump(),
        created=created,
        skipped=[{"row": e.row, "message": e.message} for e in skipped][:100],
    )
    return Response(
        orjson.dumps(out.model_dump(mode="json")), 201 if created else 200, media_type="application/json"
    )


@router.get("/datasets", response_model=DatasetPage, responses=AUTH)
def list_datasets(
    request: Request,
    principal: Reader,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> DatasetPage:
    """The project's datasets by name, each with its latest version."""
    try:
        page = services(request).datasets.list_datasets(principal.project_id, limit=limit, cursor=cursor)
    except InvalidCursor as exc:
        raise ApiError(400, "invalid_cursor", str(exc)) from exc
    return DatasetPage(items=[dataset_out(d) for d in page.items], next_cursor=page.next_cursor)


@router.get("/datasets/{name}", response_model=DatasetOut, responses={**AUTH, **NOT_FOUND})
def get_dataset(request: Request, principal: Reader, name: Name) -> DatasetOut:
    """A dataset and its latest version."""
    try:
        found = services(request).datasets.get(principal.project_id, name)
    except DatasetNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    return dataset_out(found)


@router.delete("/datasets/{name}", status_code=204, response_class=Response, responses={**AUTH, **NOT_FOUND})
def delete_dataset(request: Request, principal: Writer, name: Name) -> Response:
    """Delete a dataset and every version (runs keep their results; their version link is cleared)."""
    svc = services(request)
    if not svc.datasets.delete(principal.project_id, name):
        raise ApiError(404, "not_found", f"no dataset {name} in this project")
    svc.audit.record(
        actor=actor_of(principal),
        action="dataset.delete",
        project_id=principal.project_id,
        target=f"dataset:{name}",
    )
    svc.activity.record(
        principal.project_id,
        actor=actor_of(principal),
        actor_user_id=None,
        verb="deleted",
        target_kind="dataset",
        target_id=name,
        summary=f"deleted dataset {name}",
    )
    return Response(status_code=204)


@router.get("/datasets/{name}/versions", response_model=VersionList, responses={**AUTH, **NOT_FOUND})
def list_versions(request: Request, principal: Reader, name: Name) -> VersionList:
    """Every version of a dataset, newest first."""
    return VersionList(items=[version_out(v) for v in _versions(request, principal, name)])


@router.post(
    "/datasets/{name}/versions",
    status_code=201,
    response_model=CreatedVersionOut,
    openapi_extra=UPLOAD_BODY,
    responses={
        **AUTH,
        200: {
            "description": "Identical content exists: that version, `created` false",
            "model": CreatedVersionOut,
        },
        **errors(413, (415, "Unsupported Content-Type"), (422, "Malformed rows (listed in `details.rows`)")),
    },
)
async def create_version(
    request: Request,
    principal: Writer,
    name: Name,
    message: Annotated[str | None, Query(max_length=2000)] = None,
    description: Annotated[str | None, Query(max_length=2000)] = None,
    split_by: Annotated[
        str | None, Query(max_length=256, description="Ratios, e.g. train=0.8,test=0.2")
    ] = None,
    seed: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    skip_invalid: bool = False,
) -> Response:
    """A new version from JSON (``{"items": [...]}``) or a JSONL, CSV or Parquet file
    (the query parameters carry the message; a JSON body carries its own)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    if ctype == "application/json":
        try:
            body = VersionIn.model_validate_json(raw)
        except ValueError as exc:
            raise ApiError(422, "invalid_request", str(exc)[:2000]) from exc
        # stdlib json: it writes what the parser accepted (integers past 64 bits included),
        # so every row reaches the row checks and a bad one is reported with its number.
        data = "\n".join(json.dumps(item, ensure_ascii=False) for item in body.items).encode()
        fmt, message, description = "jsonl", body.message, body.description
        split_by, seed, skip_invalid = body.split_by, body.seed, body.skip_invalid
    elif ctype in FILE_TYPES:
        data, fmt = raw, FILE_TYPES[ctype]
    else:
        raise ApiError(415, "unsupported_media_type", f"send JSON or one of: {', '.join(FILE_TYPES)}")
    try:
        parsed = parse_items(data, fmt, max_items=MAX_ITEMS_PER_VERSION, skip_invalid=skip_invalid)
    except DatasetParseError as exc:
        return _row_errors(exc)
    return _store(
        request,
        principal,
        name,
        _with_split(parsed.items, split_by, seed),
        source={"kind": "upload", "format": fmt},
        message=message,
        description=description,
        skipped=parsed.skipped,
    )


@router.get("/datasets/{name}/versions/{version}", response_model=VersionOut, responses={**AUTH, **NOT_FOUND})
def get_version(request: Request, principal: Reader, name: Name, version: VersionRef) -> VersionOut:
    """A version by number, ``latest`` or content-hash prefix."""
    return version_out(_resolve(request, principal, name, version))


@router.get(
    "/datasets/{name}/versions/{version}/items",
    response_model=DatasetItemList,
    responses={**AUTH, **NOT_FOUND},
)
def list_items(
    request: Request,
    principal: Reader,
    name: Name,
    version: VersionRef,
    split: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ITEMS_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ITEMS_PER_VERSION)] = 0,
) -> DatasetItemList:
    """A window of a version's items in position order (optionally one split)."""
    v = _resolve(request, principal, name, version)
    items = services(request).datasets.items(
        principal.project_id, v.id, split=split, limit=limit, offset=offset
    )
    return DatasetItemList(items=[item_out(i) for i in items], offset=offset, limit=limit)


@router.get(
    "/datasets/{name}/versions/{version}/export",
    response_class=Response,
    responses={
        **AUTH,
        **NOT_FOUND,
        200: {"description": "The version as a file", "content": {t: {} for t in EXPORT_TYPES.values()}},
    },
)
def export_version(
    request: Request,
    principal: Reader,
    name: Name,
    version: VersionRef,
    format: Annotated[Literal["jsonl", "csv", "parquet"], Query()] = "jsonl",
    split: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """The version's items as a JSONL, CSV or Parquet attachment (re-importable as is)."""
    v = _resolve(request, principal, name, version)
    items = services(request).datasets.items(principal.project_id, v.id, split=split)
    filename = f"{name}-v{v.version}.{format}"
    return Response(
        export_items(items, format),
        media_type=EXPORT_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/datasets/{name}/diff", response_model=DiffOut, responses={**AUTH, **NOT_FOUND})
def diff_versions(
    request: Request,
    principal: Reader,
    name: Name,
    from_: Annotated[str, Query(alias="from", pattern=VERSION_PATTERN)],
    to: Annotated[str, Query(pattern=VERSION_PATTERN)] = "latest",
    limit: Annotated[int, Query(ge=1, le=MAX_DIFF)] = 200,
) -> DiffOut:
    """Items added, removed and changed from one version to another, paired by key
    (each list at most ``limit`` long; ``truncated`` says when more differed)."""
    old_v = _resolve(request, principal, name, from_)
    new_v = _resolve(request, principal, name, to)
    repo = services(request).datasets
    diff = diff_items(
        repo.items(principal.project_id, old_v.id), repo.items(principal.project_id, new_v.id), limit=limit
    )
    return DiffOut(
        from_version=old_v.version,
        to_version=new_v.version,
        added=[item_out(i) for i in diff.added],
        removed=[item_out(i) for i in diff.removed],
        changed=[
            ChangeOut(key=c.key, fields=list(c.fields), old=item_out(c.old), new=item_out(c.new))
            for c in diff.changed
        ],
        unchanged=diff.unchanged,
        truncated=diff.truncated,
    )


@router.post(
    "/datasets/{dataset}/from-traces",
    status_code=201,
    response_model=CreatedVersionOut,
    responses={
        **errors(400, 401, (403, "Key lacks evals:write or traces:read")),
        200: {
            "description": "Identical content exists: that version, `created` false",
            "model": CreatedVersionOut,
        },
        **errors((422, "No trace matched, or a bad body")),
    },
)
def from_traces(
    request: Request, principal: Writer, dataset: Name, f: Filter, body: FromTracesIn
) -> Response:
    """A version from the traces the query's filters select (the ``/traces`` filters),
    newest first; each item keeps its trace id. (The path names the dataset ``dataset``:
    ``name`` is the traces' name filter here.)"""
    if not principal.can(Permission.TRACES_READ):
        raise ApiError(403, "forbidden", "building a dataset from traces needs traces:read")
    items = items_from_traces(
        services(request).traces, principal.project_id, f, limit=body.limit, with_expected=body.with_expected
    )
    if not items:
        raise ApiError(422, "empty_dataset", "no trace matched the filter")
    filt = {k: v for k, v in dataclasses.asdict(f).items() if v not in (None, ())}
    return _store(
        request,
        principal,
        dataset,
        items,
        source={"kind": "traces", "filter": filt, "limit": body.limit, "with_expected": body.with_expected},
        message=body.message,
        description=body.description,
    )


@router.post(
    "/datasets/{name}/from-feedback",
    status_code=201,
    response_model=CreatedVersionOut,
    responses={
        **AUTH,
        200: {
            "description": "Identical content exists: that version, `created` false",
            "model": CreatedVersionOut,
        },
        **errors((422, "No labelled trace, or a bad body")),
    },
)
def from_feedback(request: Request, principal: Writer, name: Name, body: FromFeedbackIn) -> Response:
    """A version from traces labelled with score ``score_name`` (the label is the expected answer)."""
    svc = services(request)
    items = items_from_feedback(
        svc.engine,
        principal.project_id,
        score_name=body.score_name,
        limit=body.limit,
        since_ns=to_unix_ns(body.since),
        sealer=svc.sealer,
    )
    if not items:
        raise ApiError(422, "empty_dataset", f"no trace has feedback {body.score_name!r}")
    return _store(
        request,
        principal,
        name,
        items,
        source={"kind": "feedback", "score_name": body.score_name, "limit": body.limit},
        message=body.message,
        description=body.description,
    )
