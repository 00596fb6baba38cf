"""OTLP/HTTP trace ingest: ``POST /v1/traces`` (protobuf or JSON, gzip or not).

Answers per the OTLP/HTTP specification: 200 with an ExportTraceServiceResponse in the
request's encoding (``partial_success`` when some spans were invalid) only after the
spans are committed; errors carry a ``google.rpc.Status`` body in the request's encoding.
"""

from __future__ import annotations

import zlib
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from google.rpc.status_pb2 import Status

from watchkeep.api.auth import require, services
from watchkeep.ingest import otlp_json, otlp_proto
from watchkeep.ingest.decode_pool import DecodeWorkerFailed
from watchkeep.ingest.decoded import OtlpDecodeError
from watchkeep.ingest.group_commit import QueueFull, StorageUnavailable, WriterStopped
from watchkeep.ingest.service import Encoding
from watchkeep.security.authz import Permission
from watchkeep.security.body_cap import BodyCap, content_length
from watchkeep.security.keys import Principal

router = APIRouter(tags=["ingest"])

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# gRPC status codes used in google.rpc.Status bodies.
_GRPC_CODES = {400: 3, 401: 16, 403: 7, 413: 8, 415: 3, 503: 14, 500: 13}


class OtlpHttpError(Exception):
    """An OTLP request failure, rendered as a google.rpc.Status in the right encoding."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


def status_response(exc: OtlpHttpError, encoding: Encoding) -> Response:
    """The error body for ``exc`` in ``encoding``."""
    code = _GRPC_CODES.get(exc.status, 2)
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


def _too_large(limit: int) -> OtlpHttpError:
    return OtlpHttpError(413, f"request body exceeds the {limit}-byte limit")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, decompressed, refusing more than ``limit`` bytes either way."""
    cap = BodyCap(limit, _too_large)
    body = await cap.read(request.receive, content_length(request.scope["headers"]))
    coding = request.headers.get("content-encoding", "identity").strip().lower()
    if coding in ("", "identity"):
        return body
    if coding != "gzip":
        raise OtlpHttpError(415, f"unsupported Content-Encoding {coding!r}; use gzip or none")
    inflater = zlib.decompressobj(wbits=31)
    try:
        plain = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise OtlpHttpError(400, f"malformed gzip body: {exc}") from exc
    if len(plain) > limit or inflater.unconsumed_tail:
        raise OtlpHttpError(413, f"decompressed body exceeds the {limit}-byte limit")
    if not inflater.eof:
        raise OtlpHttpError(400, "malformed gzip body: truncated")
    return plain


_STATUS_CONTENT = {PROTOBUF: {}, JSON: {"schema": {"type": "object"}}}
_OTLP_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "Committed. An ExportTraceServiceResponse; partialSuccess counts rejected spans.",
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


@router.post(
    "/v1/traces",
    summary="OTLP/HTTP trace export",
    responses=_OTLP_RESPONSES,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
                JSON: {
                    "schema": {
                        "type": "object",
                        "description": "OTLP/JSON ExportTraceServiceRequest",
                    }
                },
            },
        }
    },
)
async def export_traces(
    request: Request,
    principal: Annotated[Principal, Depends(require(Permission.TRACES_WRITE))],
) -> Response:
    """Store the spans of an OTLP export; 200 only once they are committed."""
    svc = services(request)
    encoding = encoding_of(request.headers.get("content-type"))
    metrics = svc.ingest.metrics
    try:
        if encoding is None:
            raise OtlpHttpError(
                415, "unsupported Content-Type; use application/x-protobuf or application/json"
            )
        body = await read_body(request, svc.settings.max_body_bytes)
        try:
            result = await svc.ingest.export(principal.project_id, body, encoding)
        except OtlpDecodeError as exc:
            raise OtlpHttpError(400, str(exc)) from exc
        except QueueFull as exc:
            raise OtlpHttpError(503, "ingest queue is full; retry later", exc.retry_after) from exc
        except DecodeWorkerFailed as exc:
            raise OtlpHttpError(503, str(exc), 1.0) from exc
        except StorageUnavailable as exc:
            raise OtlpHttpError(503, "storage unavailable; retry later", 5.0) from exc
        except WriterStopped as exc:
            raise OtlpHttpError(503, "server is shutting down; retry later", 1.0) from exc
    except OtlpHttpError as exc:
        metrics.requests.labels((encoding or Encoding.JSON).value, str(exc.status)).inc()
        return status_response(exc, encoding or Encoding.JSON)
    metrics.requests.labels(encoding.value, "200").inc()
    if encoding is Encoding.PROTOBUF:
        return Response(otlp_proto.encode_response(result.rejected, result.message), media_type=PROTOBUF)
    return Response(otlp_json.encode_response(result.rejected, result.message), media_type=JSON)
