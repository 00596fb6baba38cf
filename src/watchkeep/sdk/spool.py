"""The disk spool: payloads that could not be sent (or did not fit in memory) wait here.

One file per payload, written atomically (temporary file, then rename), named
``<sequence>-<pid>-<spans>.<kind>`` so a sorted listing is the replay order and the
span count is known without reading the file. The total size is capped: the oldest
files go first and the spans they held are counted as dropped. Several processes
may share the directory; a file is claimed by renaming it before it is sent.
Files are not fsync'ed: they survive a crash of the process, not of the machine.

Each destination (endpoint and key) has a directory of its own under the shared spool
folder, named by a digest of both (``Config.spool_dir``): an application with another
key or endpoint never sees, let alone replays, what this one spooled. The folders are
0700 and the files 0600 whatever the umask, since spooled spans hold prompts and answers.
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


def _write_private(path: Path, payload: bytes) -> None:
    """Write a new file readable by its owner alone (0600, whatever the umask)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


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

    def __init__(
        self, directory: Path, max_bytes: int, errors: ErrorLog, *, root: Path | None = None
    ) -> None:
        """``root``: the shared folder above ``directory`` (other destinations' spools);
        made private too, and checked once for files of an older SDK."""
        self.directory = directory
        self.max_bytes = max_bytes
        self._errors = errors
        self._root = root
        self._private = False
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
                self._prepare()
                seq = max(time.time_ns(), self._last_seq + 1)
                self._last_seq = seq
                pid = os.getpid()
                final = self.directory / f"{seq:020d}-{pid}-{count}.{kind}"
                tmp = self.directory / f".tmp-{seq}-{pid}"
                _write_private(tmp, payload)
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

    def _prepare(self) -> None:
        """Create the folders (0700); the first time, also make existing ones private."""
        folders = [self.directory] if self._root is None else [self._root, self.directory]
        if self._root is not None:
            self._root.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        for folder in folders:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self._private:
            return
        for folder in folders:
            os.chmod(folder, 0o700)  # mkdir's mode is cut by the umask; an old SDK left 0755
        self._private = True
        if self._root is not None and (stale := len(self._files(self._root))):
            self._errors.report(
                "spool-legacy",
                message=f"{stale} spool files of an older watchkeep in {self._root} do not say where "
                "they were going and are not sent; delete them once you no longer need them",
            )

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
    def _files(self, directory: Path | None = None) -> list[Path]:
        folder = self.directory if directory is None else directory
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            return []
        return [folder / n for n in names if _parse(n) is not None]

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
