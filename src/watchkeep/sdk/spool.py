"""The disk spool: payloads that could not be sent (or did not fit in memory) wait here.

One file per payload, written atomically (temporary file, then rename), named
``<sequence>-<pid>-<spans>.<kind>`` so a sorted listing is the replay order and the
span count is known without reading the file. The total size is capped: the oldest
files go first and the spans they held are counted as dropped. Several processes
may share the directory; a file is claimed by renaming it before it is sent.
Files are not fsync'ed: they survive a crash of the process, not of the machine.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from watchkeep.sdk.errors import ErrorLog

KINDS = ("spans", "score")
_CLAIM = ".claim"


@dataclass(frozen=True, slots=True)
class Entry:
    """A claimed spool file: send ``payload``, then ``complete`` or ``release`` it."""

    path: Path
    original: Path
    kind: str
    count: int
    payload: bytes


def _parse(name: str) -> tuple[int, str] | None:
    """(span count, kind) of a spool file name, or None for anything else."""
    stem, _, kind = name.rpartition(".")
    if kind not in KINDS:
        return None
    parts = stem.split("-")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[2]), kind


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Spool:
    """A size-capped, ordered, multi-process-safe directory of pending payloads."""

    def __init__(self, directory: Path, max_bytes: int, errors: ErrorLog) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._errors = errors
        self._lock = threading.Lock()
        self._last_seq = 0
        self._bytes: int | None = None  # lazily scanned running total
        self.dropped = 0  # spans lost to the size cap (oldest first)
        self.written = 0  # spans written

    def after_fork(self) -> None:
        self._lock = threading.Lock()
        self._bytes = None

    # --- writing ----------------------------------------------------------------------
    def write(self, kind: str, payload: bytes, count: int) -> bool:
        """Store one payload; False only if the disk refused it (then it is counted dropped)."""
        try:
            with self._lock:
                self.directory.mkdir(parents=True, exist_ok=True)
                seq = max(time.time_ns(), self._last_seq + 1)
                self._last_seq = seq
                pid = os.getpid()
                final = self.directory / f"{seq:020d}-{pid}-{count}.{kind}"
                tmp = self.directory / f".tmp-{seq}-{pid}"
                tmp.write_bytes(payload)
                os.replace(tmp, final)
                self.written += count
                self._bytes = (
                    self._total() + len(payload) if self._bytes is None else self._bytes + len(payload)
                )
                if self._bytes > self.max_bytes:
                    self._enforce_cap()
            return True
        except OSError as exc:
            self._errors.report("spool-write", exc, message="could not write to the spool")
            self.dropped += count
            return False

    def _total(self) -> int:
        total = 0
        for path in self._files():
            with contextlib.suppress(OSError):
                total += path.stat().st_size
        return total

    def _enforce_cap(self) -> None:
        """Delete the oldest files until the spool fits its cap again."""
        self._bytes = self._total()
        for path in self._files():
            if self._bytes <= self.max_bytes:
                break
            parsed = _parse(path.name)
            try:
                size = path.stat().st_size
                path.unlink()
            except OSError:
                continue
            self._bytes -= size
            self.dropped += parsed[0] if parsed else 0

    # --- reading ----------------------------------------------------------------------
    def _files(self) -> list[Path]:
        try:
            names = sorted(os.listdir(self.directory))
        except OSError:
            return []
        return [self.directory / n for n in names if _parse(n) is not None]

    def pending(self) -> int:
        """Number of files waiting (all processes sharing the directory)."""
        return len(self._files())

    def pending_spans(self) -> int:
        return sum(p[0] for f in self._files() if (p := _parse(f.name)) is not None)

    def claim_oldest(self) -> Entry | None:
        """Claim the oldest unclaimed file, or None when there is nothing to replay."""
        for path in self._files():
            parsed = _parse(path.name)
            if parsed is None:
                continue
            claimed = path.with_name(f"{path.name}.{os.getpid()}{_CLAIM}")
            try:
                os.rename(path, claimed)
                payload = claimed.read_bytes()
            except FileNotFoundError:
                continue  # another process took it
            except OSError as exc:
                self._errors.report("spool-read", exc, message="could not read the spool")
                return None
            return Entry(claimed, path, parsed[1], parsed[0], payload)
        return None

    def complete(self, entry: Entry) -> None:
        try:
            entry.path.unlink()
            with self._lock:
                if self._bytes is not None:
                    self._bytes = max(0, self._bytes - len(entry.payload))
        except OSError as exc:
            self._errors.report("spool-delete", exc, message="could not delete a replayed file")

    def release(self, entry: Entry) -> None:
        try:
            os.rename(entry.path, entry.original)
        except OSError as exc:
            self._errors.report("spool-release", exc, message="could not return a file")

    def recover_claims(self) -> None:
        """Return files claimed by processes that died before sending them."""
        try:
            names = os.listdir(self.directory)
        except OSError:
            return
        for name in names:
            if not name.endswith(_CLAIM):
                continue
            original, _, pid = name[: -len(_CLAIM)].rpartition(".")
            if pid.isdigit() and not _alive(int(pid)):
                with contextlib.suppress(OSError):
                    os.rename(self.directory / name, self.directory / original)
