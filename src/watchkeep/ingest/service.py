"""The ingest use case: decode an OTLP body, normalise it and wait for its commit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from watchkeep.ingest.decode_pool import DecodePool
from watchkeep.ingest.group_commit import GroupCommitWriter
from watchkeep.ingest.service_types import Encoding, Signal
from watchkeep.ingest.telemetry import IngestMetrics
from watchkeep.security.pii import PiiService
from watchkeep.store.clock import now_ns

__all__ = ["Encoding", "ExportResult", "IngestService", "Signal"]


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What to tell the exporter: how many spans (or log records) were refused, and why."""

    accepted: int
    rejected: int
    message: str


class IngestService:
    """Decodes, normalises and durably stores OTLP trace exports."""

    def __init__(
        self,
        writer: GroupCommitWriter,
        decoder: DecodePool,
        metrics: IngestMetrics,
        observer: Callable[[Sequence[tuple[Any, ...]]], None] | None = None,
        pii: PiiService | None = None,
    ) -> None:
        self._writer = writer
        self._decoder = decoder
        self._metrics = metrics
        # Told about each committed batch of span rows (e.g. Prometheus GenAI telemetry).
        self._observer = observer
        self._pii = pii  # PII redaction of payloads before they are written

    @property
    def metrics(self) -> IngestMetrics:
        """The ingest instruments."""
        return self._metrics

    def _redact(
        self, payloads: list[tuple[Any, ...]], spans: list[tuple[Any, ...]]
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        assert self._pii is not None
        return self._pii.redact_payloads(payloads), self._pii.redact_spans(spans)

    async def export(
        self, project_id: int, body: bytes, encoding: Encoding, signal: Signal = Signal.TRACES
    ) -> ExportResult:
        """Store every valid span (or GenAI log payload) of ``body``; returns once committed.

        Raises ``OtlpDecodeError`` (nothing stored), ``QueueFull`` (nothing stored, retry).
        """
        # Each export is one project's: its policy travels to the decode worker, which
        # redacts there; what was decoded inline is redacted in a thread, off the loop.
        redaction = None
        if self._pii is not None and self._decoder.offloads(body):  # a cache miss reads the database
            redaction = await asyncio.to_thread(self._pii.portable, project_id)
        # A worker may seal the payloads only once nothing is left to redact here (Presidio
        # redacts in this process, after the worker): sealed text cannot be redacted.
        final = self._pii is None or redaction is not None
        prepared = await self._decoder.prepare(
            project_id, body, encoding, now_ns(), signal, redaction, seal=final
        )
        if prepared.rejected and signal is Signal.TRACES:
            self._metrics.spans.labels("rejected").inc(prepared.rejected)
        if self._pii is not None and not prepared.redacted:
            prepared.batch.payloads, prepared.batch.spans = await asyncio.to_thread(
                self._redact, prepared.batch.payloads, prepared.batch.spans
            )
        if prepared.batch.spans or prepared.batch.payloads:
            new_rows = await asyncio.wrap_future(self._writer.submit(prepared.batch))
            if self._observer is not None and new_rows:
                self._observer(new_rows)  # a replayed span is counted once
        return ExportResult(
            accepted=prepared.accepted,
            rejected=prepared.rejected,
            message="; ".join(prepared.reasons),
        )

    def close(self) -> None:
        """Stop the decode workers."""
        self._decoder.close()
