"""The throwaway PostgreSQL cluster of tests and benchmarks leaves nothing behind when its
program is stopped with SIGTERM (a killed 10M-span benchmark once left 29 GB in /tmp)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

PROGRAM = """
import time
from watchkeep.devtools.postgres import TempPostgres
with TempPostgres(fsync=False) as pg:
    print(pg.root, pg.pid(), flush=True)
    time.sleep(120)
"""


def _alive(pid: int) -> bool:
    """Whether the process runs (a zombie waiting for a parent that never reaps it does not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


@pytest.mark.postgres
def test_sigterm_stops_the_cluster_and_deletes_its_files() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", PROGRAM], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        root, pid = proc.stdout.readline().split()
        assert Path(root, "data").is_dir()
        assert _alive(int(pid))
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    finally:
        proc.kill()
    assert not Path(root).exists()
    assert not _alive(int(pid))
