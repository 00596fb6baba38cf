"""Decoding and normalising exports in worker processes, off the server's GIL.

Turning protobuf or JSON into rows is pure Python (~36 µs an LLM span) and would otherwise
share one GIL with the HTTP loop and the group-committing writer. Large exports go to
a small pool of spawned processes and come back as row tuples (cheap to pickle); small
ones, where a process hop would cost more than it saves, are decoded in-process. A worker
also seals the payloads it made (encryption at rest, when a key is configured), so the
serial writer thread only binds them.

A worker must not outlive its server: killed with SIGKILL, the server cannot stop it,
so each worker watches its parent itself. On Linux the kernel sends it SIGKILL when the
parent dies (``PR_SET_PDEATHSIG``); everywhere, a watchdog thread exits the worker once
its parent process is no longer the one that started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from watchkeep.gc_tuning import DEFAULT_YOUNG_THRESHOLD, tune_for_throughput
from watchkeep.ingest.normalise import SpanNormaliser
from watchkeep.ingest.otlp_json import decode_json
from watchkeep.ingest.otlp_logs import decode_logs_json, decode_logs_protobuf, payload_rows
from watchkeep.ingest.otlp_proto import decode_protobuf
from watchkeep.ingest.pricing import PriceTable
from watchkeep.ingest.service_types import Encoding, Signal
from watchkeep.security.pii import PortablePolicy
from watchkeep.store.rows import WriteBatch
from watchkeep.store.sealing import Sealer, seal_payload_rows

log = logging.getLogger(__name__)
INLINE_BELOW_BYTES = 64 * 1024


class DecodeWorkerFailed(RuntimeError):
    """A decode worker process died; the request can be retried."""


@dataclass(slots=True)
class PreparedExport:
    """Rows ready for the writer, and the spans (or log records) accepted and refused."""

    batch: WriteBatch
    accepted: int
    rejected: int
    reasons: list[str]
    redacted: bool = False  # payloads already PII-redacted (in a worker)


@lru_cache(maxsize=4)
def normaliser_for(prices_file: str | None) -> SpanNormaliser:
    """One normaliser (and price table) per process and price file."""
    return SpanNormaliser(PriceTable.load(Path(prices_file) if prices_file else None))


def prepare(
    project_id: int,
    body: bytes,
    encoding: Encoding,
    now_ns: int,
    prices_file: str | None,
    signal: Signal = Signal.TRACES,
    redaction: PortablePolicy | None = None,
    sealer: Sealer | None = None,
) -> PreparedExport:
    """Decode and normalise one export (its payloads redacted under ``redaction``, then
    sealed by ``sealer``, when given); raises ``OtlpDecodeError`` on malformed input."""
    protobuf = encoding is Encoding.PROTOBUF
    if signal is Signal.LOGS:
        logs = decode_logs_protobuf(body) if protobuf else decode_logs_json(body)
        rows = payload_rows(project_id, logs, now_ns)
        prepared = PreparedExport(rows, logs.received - logs.rejected, logs.rejected, logs.reasons)
    else:
        decoded = decode_protobuf(body) if protobuf else decode_json(body)
        batch = normaliser_for(prices_file).normalise(project_id, decoded, now_ns)
        prepared = PreparedExport(batch, len(batch.spans), decoded.rejected, decoded.rejection_reasons)
    if redaction is not None:
        prepared.batch.payloads = redaction.redact_payloads(prepared.batch.payloads)
        prepared.batch.spans = redaction.redact_spans(prepared.batch.spans)
        prepared.redacted = True
    if sealer is not None:
        prepared.batch.payloads = seal_payload_rows(sealer, prepared.batch.payloads)
        prepared.batch.sealed = True
    return prepared


def _warm(prices_file: str | None) -> None:
    normaliser_for(prices_file)


PARENT_POLL_SECONDS = 1.0
_PR_SET_PDEATHSIG = 1


def exit_with_parent(parent_pid: int) -> None:
    """End this process soon after ``parent_pid`` (its parent) dies, however it dies."""
    # The kernel signals when the *thread* that started the worker ends: pools are made on
    # the server's main (event loop) thread, which lives as long as the server.
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # it died before the line above took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="watchkeep-parent-watch", daemon=True).start()


def _init_worker(prices_file: str | None, parent_pid: int, young_threshold: int) -> None:
    exit_with_parent(parent_pid)
    _warm(prices_file)
    tune_for_throughput(young_threshold)


def default_workers(cores: int | None = None) -> int:
    """One worker per core, at most four; none on a single core (decoded inline).

    Not one per *spare* core: the server process is bound by its GIL (HTTP loop and
    writer thread share it) and waits on the database, so it leaves a core partly idle;
    on 2 cores two workers measured 15.1k spans/s against one worker's 12.6k (issue 17).
    """
    cores = cores or os.cpu_count() or 1
    return 0 if cores < 2 else min(4, cores)


class DecodePool:
    """Runs ``prepare`` inline or in a process pool, by body size."""

    def __init__(
        self,
        workers: int,
        prices_file: Path | None,
        sealer: Sealer | None = None,
        young_threshold: int = DEFAULT_YOUNG_THRESHOLD,
    ) -> None:
        self._workers = workers
        self._young_threshold = young_threshold
        # Pickled to the worker with each export (a Keyring pickles as its keys).
        self._sealer = sealer
        self._prices_file = str(prices_file) if prices_file else None
        self._pool: ProcessPoolExecutor | None = None
        normaliser_for(self._prices_file)  # fail fast on a bad price file
        if workers > 0:
            self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self._prices_file, os.getpid(), self._young_threshold),
        )
        for _ in range(self._workers):
            pool.submit(_warm, self._prices_file)  # start the processes now, not on a request
        return pool

    def offloads(self, body: bytes) -> bool:
        """Whether ``prepare`` would send ``body`` to a worker process."""
        return self._pool is not None and len(body) >= INLINE_BELOW_BYTES

    async def prepare(
        self,
        project_id: int,
        body: bytes,
        encoding: Encoding,
        now_ns: int,
        signal: Signal = Signal.TRACES,
        redaction: PortablePolicy | None = None,
        *,
        seal: bool = False,
    ) -> PreparedExport:
        """Decode and normalise ``body``, in a worker when it is large; a worker also
        applies ``redaction`` (``redacted`` says so; inline, the caller redacts off the loop)
        and, when ``seal`` says the payloads need no more redaction, seals them
        (``batch.sealed``; otherwise the writer seals)."""
        pool = self._pool
        if pool is None or not self.offloads(body):
            return prepare(project_id, body, encoding, now_ns, self._prices_file, signal)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                pool,
                prepare,
                project_id,
                body,
                encoding,
                now_ns,
                self._prices_file,
                signal,
                redaction,
                self._sealer if seal else None,
            )
        except BrokenProcessPool as exc:
            log.error("a decode worker died; starting a new pool")
            if self._pool is pool:
                self._pool = self._new_pool()
                pool.shutdown(wait=False, cancel_futures=True)
            raise DecodeWorkerFailed("decode worker failed; retry") from exc

    def close(self) -> None:
        """Stop the worker processes."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
