"""A real Alertmanager (the Debian ``prometheus-alertmanager`` binary) on loopback.

Clustering is off (``--cluster.listen-address=``), state lives in a temporary directory,
and its one receiver is a webhook (a test's loopback ``Receiver``) with ``send_resolved``,
so a test sees both what Alertmanager holds (``/api/v2/alerts``) and what it forwarded.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.gateway import wait_until
from tests.support.servers import free_port, stop_process

BINARY = "prometheus-alertmanager"


@dataclass(frozen=True)
class Alertmanager:
    """A running Alertmanager: its base URL and a view of its v2 API."""

    url: str

    def alerts(self, **filters: str) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts`` (``active``, ``silenced``, ``inhibited``, ``unprocessed``)."""
        response = httpx.get(f"{self.url}/api/v2/alerts", params=filters, timeout=10)
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()
        return found


def binary() -> str | None:
    """The Alertmanager executable, or None (scripts/install-system-deps.sh installs it)."""
    return shutil.which(BINARY) or (f"/usr/bin/{BINARY}" if Path(f"/usr/bin/{BINARY}").exists() else None)


def config(webhook_url: str) -> dict[str, Any]:
    """Route everything at once to ``webhook_url``, resolutions included."""
    return {
        "route": {
            "receiver": "test",
            "group_by": ["alertname", "project_id"],
            "group_wait": "0s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [{"name": "test", "webhook_configs": [{"url": webhook_url, "send_resolved": True}]}],
    }


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def running_alertmanager(webhook_url: str, workdir: Path) -> Iterator[Alertmanager]:
    """Alertmanager forwarding to ``webhook_url``, ready when entered, stopped on exit."""
    exe = binary()
    if exe is None:
        raise RuntimeError(f"{BINARY} is not installed (run scripts/install-system-deps.sh)")
    workdir.mkdir(parents=True, exist_ok=True)
    config_file = workdir / "alertmanager.yml"
    config_file.write_text(yaml.safe_dump(config(webhook_url)))
    port = free_port()
    log = (workdir / "alertmanager.log").open("wb")
    proc = subprocess.Popen(
        [
            exe,
            f"--config.file={config_file}",
            f"--storage.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_until(lambda: proc.poll() is None and _ready(url), timeout=30):
            raise RuntimeError(
                f"Alertmanager did not become ready: {(workdir / 'alertmanager.log').read_text()}"
            )
        yield Alertmanager(url)
    finally:
        stop_process(proc)
        log.close()
