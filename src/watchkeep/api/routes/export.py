"""``GET /api/v1/export``: every matching span as one NDJSON stream.

The span list pages through ``/api/v1/spans`` a request at a time; a bulk export of a
million spans wants one request: rows are read in keyset batches (flat memory on the
server), encoded with orjson straight from the row tuples, and followed by a trailer line
``{"_end": true, "count": N}`` so a reader can tell a complete stream from a cut one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from watchkeep.api.auth import services
from watchkeep.api.routes.monitors import actor_of
from watchkeep.api.routes.traces import ERRORS, Filter, Reader
from watchkeep.api.schemas import STATUS_NAMES, ns_to_datetime

router = APIRouter(prefix="/api/v1", tags=["traces"])
MEDIA_TYPE = "application/x-ndjson"
STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "One span a line (the fields of a `/api/v1/spans` item), newest first, "
        'then a trailer line `{"_end": true, "count": N}`; a stream without it was cut short.',
        "content": {MEDIA_TYPE: {"schema": {"type": "string"}}},
    }
}


def ndjson_lines(batches: Iterable[tuple[list[str], Sequence[Any]]]) -> Iterator[bytes]:
    """Each batch as NDJSON bytes, then the trailer with the span count."""
    count = 0
    for names, rows in batches:
        status_at, start_at = names.index("status_code"), names.index("start_time_unix_nano")
        out = bytearray()
        for row in rows:
            item = dict(zip(names, row, strict=True))
            item["status"] = STATUS_NAMES.get(row[status_at], "unset")
            item["start_time"] = ns_to_datetime(row[start_at])
            out += orjson.dumps(item, option=orjson.OPT_UTC_Z | orjson.OPT_APPEND_NEWLINE)
        count += len(rows)
        yield bytes(out)
    yield orjson.dumps({"_end": True, "count": count}, option=orjson.OPT_APPEND_NEWLINE)


@router.get("/export", response_class=StreamingResponse, responses={**ERRORS, **STREAM_DOC})
def export_spans(request: Request, principal: Reader, f: Filter) -> StreamingResponse:
    """Every span of the key's project matching the filters (those of `/api/v1/spans`), newest
    first, streamed as NDJSON; the stream stops when the client goes away."""
    svc = services(request)
    svc.audit.record(
        actor=actor_of(principal), action="spans.export", project_id=principal.project_id, target="spans"
    )
    batches = svc.traces.export_spans(principal.project_id, f)
    return StreamingResponse(ndjson_lines(batches), media_type=MEDIA_TYPE)
