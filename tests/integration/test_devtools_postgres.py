"""``python -m watchkeep.devtools.postgres`` cleans up on SIGTERM, as it does on Ctrl-C:
a supervisor (or ``kill``) must not leave a running postmaster and its files behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.postgres


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _refuses(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


def _eventually(probe: Callable[[], bool], seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while not probe():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A temporary directory the ``postgres`` system user can enter (as root the cluster runs
    as that user), so the cluster's files land where the test can find them."""
    path = Path(tempfile.mkdtemp(prefix="wk-devtools-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_sigterm_stops_the_cluster_and_deletes_its_files(scratch: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "watchkeep.devtools.postgres"],
        env={**os.environ, "TMPDIR": str(scratch)},
        stdout=subprocess.PIPE,
        text=True,
    )
    postmaster = 0
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("postgresql+psycopg://watchkeep@127.0.0.1:"), url
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        [root] = scratch.glob("watchkeep-pg-*")
        postmaster = int((root / "data" / "postmaster.pid").read_text().split()[0])
        assert _alive(postmaster)
        assert not _refuses(port)

        proc.send_signal(signal.SIGTERM)

        assert proc.wait(120) == 0
        assert _eventually(lambda: not _alive(postmaster)), "the postmaster outlived SIGTERM"
        assert _refuses(port)
        assert not root.exists(), "the cluster's files were left behind"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        if postmaster and _alive(postmaster):
            with contextlib.suppress(ProcessLookupError):
                os.kill(postmaster, signal.SIGKILL)
