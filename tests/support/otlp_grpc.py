"""A live server that also serves OTLP/gRPC, and a raw gRPC caller to read status codes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import grpc

from tests.support.keys import new_key
from tests.support.servers import LiveServer, free_port, serve
from watchkeep.app import create_app
from watchkeep.config import Settings

TRACES_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@dataclass
class GrpcLiveServer:
    """HTTP and OTLP/gRPC on loopback, one app, one member key of a fresh project."""

    http: LiveServer
    grpc_port: int

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def call(self, method: str, body: bytes, key: str | None, *, gzip: bool = False) -> bytes:
        """One raw unary call; raises ``grpc.RpcError`` with the server's status."""
        metadata = (("authorization", f"Bearer {key}"),) if key is not None else ()
        with grpc.insecure_channel(self.target) as channel:
            stub = channel.unary_unary(method)  # bytes in, bytes out
            return bytes(
                stub(
                    body,
                    metadata=metadata,
                    timeout=30,
                    compression=grpc.Compression.Gzip if gzip else None,
                )
            )


@contextmanager
def grpc_live_server(settings: Settings, database_url: str) -> Iterator[GrpcLiveServer]:
    """A started ``create_app(..., otlp_grpc=True)`` on free HTTP and gRPC ports."""
    grpc_port = free_port()
    app = create_app(settings.model_copy(update={"otlp_grpc_port": grpc_port}), otlp_grpc=True)
    port = free_port()
    server, thread = serve(app, port)
    try:
        yield GrpcLiveServer(
            LiveServer(f"http://127.0.0.1:{port}", new_key(database_url), database_url, app), grpc_port
        )
    finally:
        server.should_exit = True
        thread.join(30)
