"""Nothing is left behind by a crash: a server killed with SIGKILL takes its decode workers along.

Attack (or accident): the ingest decode workers are separate processes; when the server
was killed hard they stayed alive for ever, each holding its memory, and a supervisor
restarting the server piled up more of them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from tests.support.servers import free_port

WORKERS = 2


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"server exited early:\n{log.read_text()[-3000:]}"
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"server not ready in 60 s:\n{log.read_text()[-3000:]}")


def _workers(server: psutil.Process) -> list[psutil.Process]:
    """The server's descendants, once all decode workers have started (up to 30 s)."""
    deadline = time.monotonic() + 30
    children = server.children(recursive=True)
    while len(children) < WORKERS and time.monotonic() < deadline:
        time.sleep(0.1)
        children = server.children(recursive=True)
    assert len(children) >= WORKERS, children
    return children


def test_decode_workers_exit_when_the_server_is_killed(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "WATCHKEEP_HOME": str(tmp_path),
        "WATCHKEEP_INGEST_DECODE_WORKERS": str(WORKERS),
        "WATCHKEEP_LOG_LEVEL": "WARNING",
        "WATCHKEEP_WORKER_ENABLED": "false",
    }
    env.pop("WATCHKEEP_DATABASE_URL", None)
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "watchkeep.cli.main", "server", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    children: list[psutil.Process] = []
    try:
        _wait_ready(proc, f"http://127.0.0.1:{port}", log)
        children = _workers(psutil.Process(proc.pid))
        proc.send_signal(signal.SIGKILL)  # the server alone, as an OOM killer would
        proc.wait(30)
        _, alive = psutil.wait_procs(children, timeout=30)
        assert alive == [], f"left behind: {[(p.pid, p.cmdline()) for p in alive]}"
    finally:
        for child in children:  # never leave them to the next test
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


_ORPHAN = """
import os, sys, time
from watchkeep.ingest.decode_pool import exit_with_parent
sys.platform = "portable"  # no PR_SET_PDEATHSIG: only the watchdog thread is left
exit_with_parent(os.getppid())
print("ready", flush=True)
time.sleep(120)
"""
_PARENT = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]], stdout=subprocess.PIPE)
assert child.stdout is not None
assert child.stdout.readline() == b"ready\\n"  # it watches its parent now
print(child.pid, flush=True)
sys.stdin.read()
"""


def test_without_the_kernels_help_the_watchdog_still_ends_the_worker() -> None:
    """The portable fallback on its own: a process whose parent is SIGKILLed exits."""
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, _ORPHAN], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert parent.stdout is not None
    child = psutil.Process(int(parent.stdout.readline()))
    try:
        parent.send_signal(signal.SIGKILL)
        parent.wait(30)
        _, alive = psutil.wait_procs([child], timeout=30)
        assert alive == []
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
