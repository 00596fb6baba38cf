"""A throwaway PostgreSQL cluster on loopback, from the system's PostgreSQL binaries.

Used by the test suite and the benchmarks (``python -m watchkeep.devtools.postgres``
prints a URL and keeps one running until Ctrl-C or SIGTERM). PostgreSQL refuses to run as root, so as root the
cluster is created and run as the ``postgres`` system user (Debian's package makes it).
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
import time
from pathlib import Path
from types import FrameType, TracebackType

import psycopg


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries were found on this machine."""


def find_bin_dir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl`` (newest Debian version first)."""
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


def free_port() -> int:
    """An unused TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TempPostgres:
    """Start with ``with TempPostgres() as pg: pg.url``; everything is deleted on exit."""

    def __init__(self, *, fsync: bool = True) -> None:
        self.bin_dir = find_bin_dir()
        self.port = free_port()
        self.fsync = fsync
        self.root = Path(tempfile.mkdtemp(prefix="watchkeep-pg-"))
        self.data = self.root / "data"
        self._as_root = os.geteuid() == 0

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
            f"-c fsync={'on' if self.fsync else 'off'} -c shared_buffers=256MB"
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
        try:
            return self.start()
        except BaseException:  # interrupted or failed half-way: leave nothing behind
            self.stop()
            raise

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.stop()


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
