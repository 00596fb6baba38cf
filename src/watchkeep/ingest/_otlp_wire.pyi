"""Types of the compiled OTLP wire decoder (_otlp_wire.pyx, ADR 0031)."""

from watchkeep.ingest.decoded import DecodedExport

def decode_traces(body: bytes) -> DecodedExport | None: ...
