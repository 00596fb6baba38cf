"""OTLP/HTTP ingest: ``POST /v1/traces`` and ``POST /v1/logs`` (protobuf or JSON, gzip or not).

Answers per the OTLP/HTTP specification: 200 with an Export*ServiceResponse in the
request's encoding (``partial_success`` when some spans or records were invalid) only
after the rows are committed; errors carry a ``google.rpc.Status`` body in the request's
encoding. Logs feed span payloads only (see ``ingest.otlp_logs``).
"""

from __future__ import annotations

import zlib
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from google.rpc.status_pb2 import Status

from watchkeep.api import otlp_ingest
from watchkeep.api.auth import require, services
from watchkeep.api.otlp_ingest import OtlpFailure
from watchkeep.ingest.service import Encoding, Signal
from watchkeep.security.authz import Permission
from watchkeep.security.body_cap import BodyCap, content_length
from watchkeep.security.keys import Principal

router = APIRouter(tags=["ingest"])
Writer = Annotated[Principal, Depends(require(Permission.TRACES_WRITE))]

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


def status_response(exc: OtlpFailure, encoding: Encoding) -> Response:
    """The error body for ``exc`` in ``encoding``."""
    code = int(exc.code)
    headers = {"Retry-After": str(max(1, round(exc.retry_after)))} if exc.retry_after else None
    if encoding is Encoding.PROTOBUF:
        body = Status(code=code, message=exc.message).SerializeToString()
        return Response(body, status_code=exc.status, media_type=PROTOBUF, headers=headers)
    payload = orjson.dumps({"code": code, "message": exc.message})
    return Response(payload, status_code=exc.status, media_type=JSON, headers=headers)


def encoding_of(content_type: str | None) -> Encoding | None:
    """The OTLP encoding named by a Content-Type header, or None when unsupported."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == PROTOBUF:
        return Encoding.PROTOBUF
    if media == JSON:
        return Encoding.JSON
    return None


def _too_large(limit: int) -> OtlpFailure:
    return OtlpFailure(413, f"request body exceeds the {limit}-byte limit")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, decompressed, refusing more than ``limit`` bytes either way."""
    cap = BodyCap(limit, _too_large)
    body = await cap.read(request.receive, content_length(request.scope["headers"]))
    coding = request.headers.get("content-encoding", "identity").strip().lower()
    if coding in ("", "identity"):
        return body
    if coding != "gzip":
        raise OtlpFailure(415, f"unsupported Content-Encoding {coding!r}; use gzip or none")
    inflater = zlib.decompressobj(wbits=31)
    try:
        plain = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise OtlpFailure(400, f"malformed gzip body: {exc}") from exc
    if len(plain) > limit or inflater.unconsumed_tail:
        raise OtlpFailure(413, f"decompressed body exceeds the {limit}-byte limit")
    if not inflater.eof:
        raise OtlpFailure(400, "malformed gzip body: truncated")
    return plain


_STATUS_CONTENT = {PROTOBUF: {}, JSON: {"schema": {"type": "object"}}}
_OTLP_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "Committed. An Export*ServiceResponse; partialSuccess counts rejected items.",
        "content": _STATUS_CONTENT,
    },
    400: {"description": "Malformed body (google.rpc.Status)", "content": _STATUS_CONTENT},
    401: {"description": "Missing or invalid API key", "content": {JSON: {"schema": {"type": "object"}}}},
    403: {"description": "Key lacks traces:write", "content": {JSON: {"schema": {"type": "object"}}}},
    413: {"description": "Body over the size limit (google.rpc.Status)", "content": _STATUS_CONTENT},
    415: {"description": "Unsupported Content-Type or Content-Encoding", "content": _STATUS_CONTENT},
    503: {
        "description": "Queue full or storage unavailable; retry after Retry-After seconds",
        "content": _STATUS_CONTENT,
    },
}


def _request_body(description: str) -> dict[str, object]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
                JSON: {"schema": {"type": "object", "description": description}},
            },
        }
    }


async def _export(request: Request, principal: Principal, signal: Signal) -> Response:
    """Store one OTLP export of ``signal``; 200 only once its rows are committed."""
    svc = services(request)
    encoding = encoding_of(request.headers.get("content-type"))
    metrics = svc.ingest.metrics
    try:
        if encoding is None:
            raise OtlpFailure(415, "unsupported Content-Type; use application/x-protobuf or application/json")
        body = await read_body(request, svc.settings.max_body_bytes)
        result = await otlp_ingest.export(svc.ingest, principal.project_id, body, encoding, signal)
    except OtlpFailure as exc:
        metrics.requests.labels((encoding or Encoding.JSON).value, str(exc.status)).inc()
        return status_response(exc, encoding or Encoding.JSON)
    metrics.requests.labels(encoding.value, "200").inc()
    media = PROTOBUF if encoding is Encoding.PROTOBUF else JSON
    return Response(otlp_ingest.encode_result(result, encoding, signal), media_type=media)


def _add_export_route(signal: Signal, name: str, summary: str, message: str, description: str) -> None:
    """``POST /v1/{signal}``: the same handler for each OTLP/HTTP signal."""

    async def export(request: Request, principal: Writer) -> Response:
        return await _export(request, principal, signal)

    router.add_api_route(
        f"/v1/{signal.value}",
        export,
        methods=["POST"],
        name=name,
        summary=summary,
        description=description,
        responses=_OTLP_RESPONSES,
        openapi_extra=_request_body(f"OTLP/JSON {message}"),
    )


_add_export_route(
    Signal.TRACES,
    "export_traces",
    "OTLP/HTTP trace export",
    "ExportTraceServiceRequest",
    "Store the spans of an OTLP export; 200 only once they are committed.",
)
_add_export_route(
    Signal.LOGS,
    "export_logs",
    "OTLP/HTTP logs export (GenAI events become span payloads)",
    "ExportLogsServiceRequest",
    "Store the messages of GenAI event records as their spans' payloads; other records\n"
    "are counted and dropped. 200 only once the payloads are committed.",
)
