"""Per-user and per-session totals: ``/api/v1/users`` and ``/api/v1/sessions``.

No ``from __future__ import annotations``: the routes are built per dimension in
:func:`_add_routes`, and FastAPI must see its path parameter's annotation as an object.
"""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import AwareDatetime

from watchkeep.api.auth import require, services
from watchkeep.api.errors import ApiError
from watchkeep.api.openapi import errors
from watchkeep.api.schemas import UsagePage, to_unix_ns
from watchkeep.security.authz import Permission
from watchkeep.security.keys import Principal
from watchkeep.store.usage_queries import Dimension, SortKey, UsageFilter, UsageTotals

router = APIRouter(prefix="/api/v1", tags=["usage"])
ERRORS = errors((400, "Malformed query"), 401, (403, "Key lacks traces:read"))
Reader = Annotated[Principal, Depends(require(Permission.TRACES_READ))]
Text = Annotated[str | None, Query(max_length=256)]
MAX_OFFSET = 10_000


def usage_filter(
    start_from: Annotated[AwareDatetime | None, Query(description="Spans started from (inclusive).")] = None,
    start_to: Annotated[AwareDatetime | None, Query(description="Spans started before (exclusive).")] = None,
    environment: Text = None,
    release: Text = None,
) -> UsageFilter:
    """The spans counted."""
    return UsageFilter(to_unix_ns(start_from), to_unix_ns(start_to), environment, release)


Filter = Annotated[UsageFilter, Depends(usage_filter)]
Sort = Annotated[SortKey, Query(description="Total to sort by.")]
Order = Annotated[Literal["desc", "asc"], Query()]
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description=f"At most {MAX_OFFSET}.")]


def _page(
    request: Request,
    project_id: int,
    dim: Dimension,
    f: UsageFilter,
    sort: SortKey,
    order: str,
    limit: int,
    offset: int,
) -> UsagePage:
    items, more = services(request).usage.list(
        project_id, dim, f, sort=sort, descending=order == "desc", limit=limit, offset=offset
    )
    next_offset = offset + len(items) if more and offset + len(items) <= MAX_OFFSET else None
    return UsagePage.model_validate({"items": items, "next_offset": next_offset}, from_attributes=True)


def _one(request: Request, project_id: int, dim: Dimension, value: str, f: UsageFilter) -> UsageTotals:
    found = services(request).usage.get(project_id, dim, value, f)
    if found is None:
        raise ApiError(404, "not_found", f"no spans of {dim.removesuffix('_id')} {value!r} in range")
    return found


def _add_routes(dim: Dimension, plural: str) -> None:
    """``GET /{plural}`` and ``GET /{plural}/{dim}``: the same two routes for users and sessions."""
    noun = dim.removesuffix("_id")

    def list_totals(
        request: Request,
        principal: Reader,
        f: Filter,
        sort: Sort = "last_seen",
        order: Order = "desc",
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> UsagePage:
        return _page(request, principal.project_id, dim, f, sort, order, limit, offset)

    def get_totals(
        request: Request,
        principal: Reader,
        value: Annotated[str, Path(alias=dim, min_length=1, max_length=256)],
        f: Filter,
    ) -> UsageTotals:
        return _one(request, principal.project_id, dim, value, f)

    router.add_api_route(
        f"/{plural}",
        list_totals,
        response_model=UsagePage,
        responses=ERRORS,
        name=f"list_{plural}",
        description=f"{noun.capitalize()}s of the key's project with their totals.",
    )
    router.add_api_route(
        f"/{plural}/{{{dim}}}",
        get_totals,
        response_model=UsageTotals,
        responses={**ERRORS, **errors((404, "No spans"))},
        name=f"get_{noun}",
        description=f"One {noun}'s totals.",
    )


_add_routes("user_id", "users")
_add_routes("session_id", "sessions")
