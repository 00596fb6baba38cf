"""What both OTLP transports (HTTP routes and the gRPC services) share.

One place maps the ingest use case's outcomes to an OTLP failure (an HTTP status and a
gRPC status code, with a retry delay where retrying helps) and encodes the success
response of each signal, so ``/v1/traces``, ``/v1/logs`` and port 4317 answer alike.
"""

from __future__ import annotations

from enum import IntEnum

from watchkeep.ingest.decode_pool import DecodeWorkerFailed
from watchkeep.ingest.decoded import OtlpDecodeError
from watchkeep.ingest.group_commit import QueueFull, StorageUnavailable, WriterStopped
from watchkeep.ingest.otlp_response import encode_response
from watchkeep.ingest.service import Encoding, ExportResult, IngestService, Signal
from watchkeep.security.pii import PolicyUnavailable


class GrpcCode(IntEnum):
    """The gRPC status codes OTLP answers with (google.rpc.Code)."""

    OK = 0
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    INTERNAL = 13
    UNAVAILABLE = 14
    UNAUTHENTICATED = 16


_CODE_OF_STATUS = {
    400: GrpcCode.INVALID_ARGUMENT,
    401: GrpcCode.UNAUTHENTICATED,
    403: GrpcCode.PERMISSION_DENIED,
    413: GrpcCode.RESOURCE_EXHAUSTED,
    415: GrpcCode.INVALID_ARGUMENT,
    500: GrpcCode.INTERNAL,
    503: GrpcCode.UNAVAILABLE,
}


class OtlpFailure(Exception):
    """An OTLP request failure: its HTTP status, gRPC code, message and retry delay."""

    def __init__(
        self, status: int, message: str, retry_after: float | None = None, code: GrpcCode | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after
        self.code = code if code is not None else _CODE_OF_STATUS.get(status, GrpcCode.UNKNOWN)


async def export(
    ingest: IngestService, project_id: int, body: bytes, encoding: Encoding, signal: Signal
) -> ExportResult:
    """Run the ingest use case; every refusal comes out as an ``OtlpFailure``."""
    try:
        return await ingest.export(project_id, body, encoding, signal)
    except OtlpDecodeError as exc:
        raise OtlpFailure(400, str(exc)) from exc
    except QueueFull as exc:
        # Exporters retry RESOURCE_EXHAUSTED (with its retry delay) as they retry a 503.
        raise OtlpFailure(
            503, "ingest queue is full; retry later", exc.retry_after, GrpcCode.RESOURCE_EXHAUSTED
        ) from exc
    except DecodeWorkerFailed as exc:
        raise OtlpFailure(503, str(exc), 1.0) from exc
    except (StorageUnavailable, PolicyUnavailable) as exc:  # the store is away
        raise OtlpFailure(503, "storage unavailable; retry later", 5.0) from exc
    except WriterStopped as exc:
        raise OtlpFailure(503, "server is shutting down; retry later", 1.0) from exc


def encode_result(result: ExportResult, encoding: Encoding, signal: Signal) -> bytes:
    """The Export*ServiceResponse for ``result`` (partial success when some were refused)."""
    return encode_response(signal, encoding, result.rejected, result.message)
