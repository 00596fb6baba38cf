"""The gateway's trace spool: spans the store cannot take now wait on disk, then are replayed.

A file holds the spans of one project, written atomically (a private temporary file,
then a rename) and named ``<sequence>-<pid>-<spans>.spans`` so a sorted listing is the
replay order and each process writes files of its own. Any process sharing the folder
(``watchkeep gateway --workers N``) may replay any file, but only after claiming it by
renaming it to ``<name>.<pid>.claim``: a rename succeeds once, so no file is replayed
twice at the same time; a claim whose process died is returned to the queue. The folder
is per database (a digest of its URL) so spans never reach another store, 0700, and the
files 0600: spans hold prompts and answers.

The total size is capped: a file that would pass the cap is not written and its spans
are the only ones the gateway ever drops (counted, and logged once with a count). Files
are not fsync'ed: they survive a crash of the process, not of the machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import orjson

from watchkeep.config import Settings
from watchkeep.gateway.telemetry import GatewayMetrics
from watchkeep.ingest.decoded import DecodedEvent, DecodedSpan
from watchkeep.ingest.group_commit import QueueFull, WriterStopped
from watchkeep.logs import RepeatedErrorLog
from watchkeep.security.crypto import keyring_from_settings
from watchkeep.security.pii import PolicyUnavailable
from watchkeep.store.sealing import Sealer, is_sealed

log = logging.getLogger(__name__)
NOT_NOW = (QueueFull, WriterStopped, PolicyUnavailable)
"""What a submission raises when the store cannot take spans yet: spool them, try later."""
_SUFFIX = ".spans"
_CLAIM = ".claim"
_FORMAT = 1
_RESCAN_SECONDS = 2.0  # other workers add and replay files too: recount the folder this often


class SpoolFull(OSError):
    """Writing the file would pass the spool's size cap."""


@dataclass(frozen=True, slots=True)
class Claimed:
    """A spool file this process claimed: replay its spans, then ``complete`` or ``release`` it."""

    path: Path
    original: Path
    project_id: int
    spans: list[DecodedSpan]
    size: int


_SPOOL_AAD = b"watchkeep:gateway-spool"

# A span is stored as the list of its fields in DecodedSpan's order, its events last.
_FIELDS = tuple(f.name for f in fields(DecodedSpan) if f.name != "events")


def encode(project_id: int, spans: list[DecodedSpan]) -> bytes:
    """The file contents for ``spans`` of ``project_id`` (JSON, every field of the span)."""
    return orjson.dumps(
        {
            "v": _FORMAT,
            "project_id": project_id,
            "spans": [
                [
                    *(getattr(s, name) for name in _FIELDS),
                    [[e.time_unix_nano, e.name, e.attributes] for e in s.events],
                ]
                for s in spans
            ],
        }
    )


def decode(payload: bytes) -> tuple[int, list[DecodedSpan]]:
    """``(project_id, spans)`` of a spool file; ValueError if it is not one."""
    doc: Any = orjson.loads(payload)
    if not isinstance(doc, dict) or doc.get("v") != _FORMAT:
        raise ValueError("not a gateway trace spool file of this version")
    return int(doc["project_id"]), [_span(values) for values in doc["spans"]]


def _span(values: list[Any]) -> DecodedSpan:
    if len(values) != len(_FIELDS) + 1:
        raise ValueError(f"a spooled span has {len(values)} fields, not {len(_FIELDS) + 1}")
    *head, events = values
    return DecodedSpan(**dict(zip(_FIELDS, head, strict=True)), events=[DecodedEvent(*e) for e in events])


def _span_count(name: str) -> int | None:
    """Spans in a spool file, from its name; None for a name that is not a spool file's."""
    if not name.endswith(_SUFFIX):
        return None
    parts = name[: -len(_SUFFIX)].split("-")
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        return None
    return int(parts[2])


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


class TraceSpool:
    """A size-capped, ordered folder of spans waiting for the store, shared by processes."""

    def __init__(
        self,
        directory: Path,
        max_bytes: int,
        *,
        errors: RepeatedErrorLog | None = None,
        sealer: Sealer | None = None,
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._sealer = sealer  # with an encryption key, spooled prompts are sealed on disk too
        self._errors = errors or RepeatedErrorLog(log)
        self._lock = threading.Lock()
        self._sequence = 0
        self._bytes = 0
        self._counted_at = float("-inf")
        self._ready = False
        self._failing = False

    @classmethod
    def for_settings(cls, settings: Settings) -> TraceSpool:
        """The spool of ``settings``' database under ``GATEWAY_SPOOL_DIR`` (default: in the home)."""
        root = settings.gateway_spool_dir or settings.home / "gateway-spool"
        digest = hashlib.sha256(settings.resolved_database_url().encode()).hexdigest()[:16]
        return cls(root / digest, settings.gateway_spool_max_bytes, sealer=keyring_from_settings(settings))

    def _seal(self, payload: bytes) -> bytes:
        if self._sealer is None:
            return payload
        return self._sealer.seal(payload.decode("utf-8"), _SPOOL_AAD).encode("ascii")

    def _open(self, payload: bytes) -> bytes:
        text = payload.decode("utf-8")
        if not is_sealed(text):
            return payload  # written without a key
        if self._sealer is None:
            raise ValueError("the spool file is encrypted and no encryption key is configured")
        return self._sealer.open(text, _SPOOL_AAD).encode("utf-8")

    @property
    def bytes(self) -> int:
        """Bytes of spool files in the folder (all processes), as last counted."""
        return self._bytes

    # --- writing ----------------------------------------------------------------------
    def write(self, project_id: int, spans: list[DecodedSpan]) -> bool:
        """Keep ``spans`` for replay; False if the spool is full or the disk refused them."""
        try:
            payload = self._seal(encode(project_id, spans))
            with self._lock:
                self._prepare()
                if time.monotonic() - self._counted_at > _RESCAN_SECONDS or (
                    self._bytes + len(payload) > self.max_bytes
                ):
                    self._recount()
                if self._bytes + len(payload) > self.max_bytes:
                    raise SpoolFull(
                        f"the gateway trace spool {self.directory} is full ({self.max_bytes} bytes)"
                    )
                self._sequence = max(time.time_ns(), self._sequence + 1)
                pid = os.getpid()
                name = f"{self._sequence:020d}-{pid}-{len(spans)}{_SUFFIX}"
                temporary = self.directory / f".tmp-{self._sequence}-{pid}"
                try:
                    _write_private(temporary, payload)
                    os.replace(temporary, self.directory / name)
                except OSError:
                    with contextlib.suppress(OSError):
                        temporary.unlink()  # a half-written file (disk full) would count against the cap
                    raise
                self._bytes += len(payload)
        except (OSError, TypeError) as exc:  # TypeError: orjson met a value it cannot write
            self._failing = True
            self._errors.failed(exc, "dropped %d gateway spans: the trace spool refused them", len(spans))
            return False
        if self._failing:
            self._failing = False
            self._errors.recovered()
        return True

    def _prepare(self) -> None:
        """Create the folder (0700 whatever the umask) the first time."""
        if self._ready:
            return
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        self._ready = True

    def recount(self) -> None:
        """Count the folder's bytes again (other processes write and replay files too)."""
        with self._lock:
            self._recount()

    def _recount(self) -> None:
        total = 0
        for path, _ in self._files():
            with contextlib.suppress(OSError):
                total += path.stat().st_size
        self._bytes = total
        self._counted_at = time.monotonic()

    # --- reading ----------------------------------------------------------------------
    def _files(self) -> list[tuple[Path, int]]:
        """Unclaimed spool files, oldest first, with their span counts."""
        try:
            names = sorted(os.listdir(self.directory))
        except OSError:
            return []
        return [(self.directory / n, count) for n in names if (count := _span_count(n)) is not None]

    def pending_spans(self) -> int:
        """Spans waiting in unclaimed files (every process's)."""
        return sum(count for _, count in self._files())

    def claim(self, max_spans: int) -> tuple[list[Claimed], int]:
        """Claim the oldest files, up to ``max_spans`` spans (at least one file).

        Returns the claims and the spans of files that could not be read (set aside as
        ``.bad``, counted as dropped by the caller)."""
        claimed: list[Claimed] = []
        spans = unreadable = 0
        for path, count in self._files():
            if claimed and spans + count > max_spans:
                break
            mine = path.with_name(f"{path.name}.{os.getpid()}{_CLAIM}")
            try:
                os.rename(path, mine)
            except OSError:
                continue  # another process claimed it first
            try:
                payload = mine.read_bytes()
                project_id, decoded = decode(self._open(payload))
            except (OSError, ValueError, TypeError, KeyError, IndexError) as exc:
                log.error("gateway trace spool file %s cannot be replayed (%s); kept as .bad", path, exc)
                with contextlib.suppress(OSError):
                    os.rename(mine, path.with_name(path.name + ".bad"))
                unreadable += count
                continue
            claimed.append(Claimed(mine, path, project_id, decoded, len(payload)))
            spans += count
        return claimed, unreadable

    def complete(self, entry: Claimed) -> None:
        """The spans of ``entry`` are stored: delete its file."""
        try:
            entry.path.unlink()
        except OSError as exc:
            log.warning("could not delete replayed spool file %s: %s", entry.path, exc)
            return
        with self._lock:
            self._bytes = max(0, self._bytes - entry.size)

    def set_aside(self, entry: Claimed) -> None:
        """The spans of ``entry`` can never be stored: keep the file as ``.bad`` for a look."""
        with contextlib.suppress(OSError):
            os.rename(entry.path, entry.original.with_name(entry.original.name + ".bad"))

    def release(self, entry: Claimed) -> None:
        """Replay failed: return the file to the queue, in its place."""
        try:
            os.rename(entry.path, entry.original)
        except OSError as exc:
            log.warning("could not return spool file %s: %s", entry.path, exc)

    def recover_claims(self) -> int:
        """Return the files claimed by processes that have died; how many."""
        try:
            names = os.listdir(self.directory)
        except OSError:
            return 0
        returned = 0
        for name in names:
            if not name.endswith(_CLAIM):
                continue
            original, _, pid = name[: -len(_CLAIM)].rpartition(".")
            if pid.isdigit() and int(pid) != os.getpid() and not _process_exists(int(pid)):
                with contextlib.suppress(OSError):
                    os.rename(self.directory / name, self.directory / original)
                    returned += 1
        return returned


Submit = Callable[[int, list[DecodedSpan]], "Future[Any]"]


class SpoolReplayer:
    """A thread that replays the spool into the store, oldest files first.

    It waits while the writer reports the store failing, backs off (doubling, capped)
    after a replay the writer refused or could not commit, and otherwise sleeps until the
    sink spools something or ``scan_seconds`` pass (files left by a previous process or a
    worker that died are found by that scan, and at start-up). A file is deleted only
    after its commit; if this process dies first, the claim is returned and the spans
    are replayed again, which stores them once: span rows are inserted only if new.
    """

    def __init__(
        self,
        spool: TraceSpool,
        submit: Submit,
        writer_ok: Callable[[], bool],
        metrics: GatewayMetrics,
        *,
        batch_spans: int = 5_000,
        backoff_s: tuple[float, float] = (0.25, 5.0),
        poll_seconds: float = 0.5,
        scan_seconds: float = 5.0,
    ) -> None:
        self._spool = spool
        self._submit = submit
        self._writer_ok = writer_ok
        self._metrics = metrics
        self._batch = batch_spans
        self._backoff_min, self._backoff_max = backoff_s
        self._delay = 0.0
        self._poll = poll_seconds
        self._scan = scan_seconds
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watchkeep-gateway-replay", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Something was spooled: look at the spool soon."""
        self._wake.set()

    def stop(self, timeout: float) -> None:
        """Stop after the replay in progress (its files stay claimed if it outlasts ``timeout``)."""
        self._stopped.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        returned = self._spool.recover_claims()
        if returned:
            log.info("returned %d gateway spool files claimed by processes that died", returned)
        delay = 0.0
        while not self._stopped.wait(delay):
            try:
                delay = self._step()
            except Exception:  # the thread must outlive any one surprise
                log.exception("gateway trace replay failed")
                delay = self._failed()

    def _step(self) -> float:
        """One replay; the seconds to wait before the next."""
        if not self._writer_ok():
            return self._poll  # the writer probes the store; replay once it takes writes
        entries, unreadable = self._spool.claim(self._batch)
        if unreadable:
            self._metrics.traces_dropped.inc(unreadable)
        if not entries:
            self._delay = 0.0
            self._spool.recount()
            self._wake.wait(self._scan)
            self._wake.clear()
            self._spool.recover_claims()  # a worker that died with files claimed
            return 0.0
        if self._replay(entries):
            self._delay = 0.0
            return 0.0  # more may be waiting
        return self._failed()

    def _failed(self) -> float:
        self._delay = min(self._backoff_max, max(self._backoff_min, self._delay * 2))
        return self._delay

    def _replay(self, entries: list[Claimed]) -> bool:
        """Submit the files' spans in order and wait for their commits.

        Whether it made progress: some stored and no commit failed (a writer whose queue
        was full after taking some files is busy, not failing: go on at once)."""
        submitted: list[tuple[Claimed, Future[Any]]] = []
        refused = False
        for entry in entries:
            if refused:
                self._spool.release(entry)
                continue
            try:
                submitted.append((entry, self._submit(entry.project_id, entry.spans)))
            except NOT_NOW:
                refused = True
                self._spool.release(entry)
            except Exception:
                log.exception("spooled gateway spans cannot be stored; file kept as .bad")
                self._spool.set_aside(entry)
                self._metrics.traces_dropped.inc(len(entry.spans))
        failed = False
        for entry, future in submitted:
            if future.exception() is None:  # waits for the commit
                self._spool.complete(entry)
                self._metrics.traces_replayed.inc(len(entry.spans))
            else:
                failed = True
                self._spool.release(entry)
        return bool(submitted) and not failed


def _write_private(path: Path, payload: bytes) -> None:
    """Create ``path`` readable by its owner alone (0600 whatever the umask) holding ``payload``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb", closefd=False) as out:
            out.write(payload)
    finally:
        os.close(fd)
