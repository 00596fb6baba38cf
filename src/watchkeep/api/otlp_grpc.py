"""OTLP/gRPC ingest: the TraceService and LogsService ``Export`` methods (port 4317).

Collectors and most OTel SDKs send OTLP over gRPC. This transport runs on the HTTP
server's event loop (``grpc.aio``) and serves the same use case as ``/v1/traces`` and
``/v1/logs``: the same keys (``authorization: Bearer wk_...`` metadata) and permission,
the same size cap (``max_body_bytes`` as the maximum message size, gzip accepted), and
an answer only after commit. Requests are handled as raw bytes, so the protobuf is
parsed once, by the shared decoder. Failures carry the status codes OTLP exporters
act on (they retry UNAVAILABLE and RESOURCE_EXHAUSTED, after the RetryInfo delay).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import grpc
from google.protobuf.any_pb2 import Any as AnyMessage
from google.protobuf.duration_pb2 import Duration
from google.rpc.error_details_pb2 import RetryInfo
from google.rpc.status_pb2 import Status

from watchkeep.api import otlp_ingest
from watchkeep.api.otlp_ingest import GrpcCode, OtlpFailure
from watchkeep.api.wiring import Services
from watchkeep.ingest.service import Encoding, Signal
from watchkeep.security.authz import Permission
from watchkeep.security.bearer import KeyRefused, principal_for

log = logging.getLogger(__name__)

TRACE_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
LOGS_SERVICE = "opentelemetry.proto.collector.logs.v1.LogsService"
_STATUS_CODES = {code.value[0]: code for code in grpc.StatusCode}
_STATUS_DETAILS = "grpc-status-details-bin"
GRACE_SECONDS = 5.0

Handler = Callable[[bytes, grpc.aio.ServicerContext[bytes, bytes]], Awaitable[bytes]]


async def _abort(context: grpc.aio.ServicerContext[bytes, bytes], failure: OtlpFailure) -> None:
    """End the call with ``failure``'s code; a RetryInfo detail tells exporters when to retry."""
    if failure.retry_after:
        delay = Duration()
        delay.FromMilliseconds(int(failure.retry_after * 1000))
        detail = AnyMessage()
        detail.Pack(RetryInfo(retry_delay=delay))
        status = Status(code=int(failure.code), message=failure.message, details=[detail])
        context.set_trailing_metadata(((_STATUS_DETAILS, status.SerializeToString()),))
    await context.abort(_STATUS_CODES[int(failure.code)], failure.message)


class OtlpGrpcServer:
    """A ``grpc.aio`` server with the OTLP trace and logs services over ``services``."""

    def __init__(self, services: Services, host: str, port: int) -> None:
        self._services = services
        self._address = f"{host}:{port}"
        limit = services.settings.max_body_bytes
        self._server = grpc.aio.server(
            options=(
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", 1024 * 1024),
                ("grpc.so_reuseport", 0),  # a second server on the same port must fail, not share
            )
        )
        handlers = {
            TRACE_SERVICE: self._handler(Signal.TRACES),
            LOGS_SERVICE: self._handler(Signal.LOGS),
        }
        for service, handler in handlers.items():
            method = grpc.unary_unary_rpc_method_handler(handler)  # raw bytes in and out
            self._server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(service, {"Export": method}),)
            )
        self.port = 0

    async def start(self) -> int:
        """Bind and serve; the bound port. Raises ``RuntimeError`` when the port is taken."""
        self.port = self._server.add_insecure_port(self._address)
        await self._server.start()
        log.info("OTLP/gRPC listening", extra={"address": self._address, "port": self.port})
        return self.port

    async def stop(self) -> None:
        """Stop taking calls; calls in flight get ``GRACE_SECONDS`` to finish."""
        await self._server.stop(GRACE_SECONDS)

    def _handler(self, signal: Signal) -> Handler:
        async def export(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
            return await self._export(signal, request, context)

        return export

    async def _export(
        self, signal: Signal, body: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        svc = self._services
        metrics = svc.ingest.metrics
        try:
            authorization = next(
                (str(v) for k, v in context.invocation_metadata() or () if k == "authorization"), None
            )
            try:
                principal = await principal_for(svc.keys, authorization)
            except KeyRefused as exc:
                raise OtlpFailure(401, exc.message) from None
            if not principal.can(Permission.TRACES_WRITE):
                raise OtlpFailure(403, f"this key's role lacks the '{Permission.TRACES_WRITE}' permission")
            result = await otlp_ingest.export(
                svc.ingest, principal.project_id, body, Encoding.PROTOBUF, signal
            )
        except OtlpFailure as exc:
            metrics.requests.labels("grpc", str(exc.status)).inc()
            await _abort(context, exc)
            raise  # unreachable: abort raises
        metrics.requests.labels("grpc", "200").inc()
        return otlp_ingest.encode_result(result, Encoding.PROTOBUF, signal)


@asynccontextmanager
async def serve_otlp_grpc(services: Services, *, enabled: bool) -> AsyncIterator[OtlpGrpcServer | None]:
    """OTLP/gRPC on the configured host and port while the block runs (when ``enabled``
    and a port is set); a port already taken fails the start, as it does for HTTP."""
    settings = services.settings
    if not enabled or not settings.otlp_grpc_port:
        yield None
        return
    server = OtlpGrpcServer(services, settings.host, settings.otlp_grpc_port)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


__all__ = ["GrpcCode", "OtlpGrpcServer", "serve_otlp_grpc"]
