"""Small value types shared by the ingest service and its decode workers."""

from __future__ import annotations

from enum import StrEnum


class Encoding(StrEnum):
    """The two OTLP/HTTP encodings."""

    PROTOBUF = "protobuf"
    JSON = "json"


class Signal(StrEnum):
    """The OTLP signals watchkeep ingests."""

    TRACES = "traces"
    LOGS = "logs"
