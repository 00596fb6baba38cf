"""``watchkeep gateway --port P --workers 2`` on its own: the real command in a subprocess,
routed to a loopback mock upstream, beside a server on the same database."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import psutil
import pytest
import yaml
from fastapi.testclient import TestClient
from tests.support.servers import LiveServer, free_port

from watchkeep.app import create_app
from watchkeep.config import Settings

WORKERS = 2
GAUGE = re.compile(r'^watchkeep_resource_(cpu_percent|memory_rss_bytes)\{process="gateway"\} (\S+)$', re.M)


def _config(path: Path, upstream: str) -> Path:
    deployment = {
        "name": "up",
        "backend": "openai_compatible",
        "base_url": f"{upstream}/slow-300/v1",  # calls overlap: both workers get some
        "api_key_env": "WK_TEST_UPSTREAM_KEY",
        "model": "upstream-model",
    }
    path.write_text(yaml.safe_dump({"routes": [{"name": "m", "deployments": [deployment]}]}), "utf-8")
    return path


@pytest.fixture
def gateway(live_server: LiveServer, upstream: str, tmp_path: Path) -> Iterator[tuple[str, psutil.Process]]:
    """The command's base URL and its (parent) process; stopped with SIGTERM by the test."""
    port = free_port()
    env = {
        **os.environ,
        "WATCHKEEP_DATABASE_URL": live_server.database_url,
        "WATCHKEEP_HOME": str(tmp_path / "gw-home"),
        "WATCHKEEP_HOST": "127.0.0.1",
        "WATCHKEEP_UPGRADE_ON_START": "false",
        "WK_TEST_UPSTREAM_KEY": "sk-upstream",
    }
    env.pop("WATCHKEEP_OPERATOR_TOKEN", None)
    args = ["-m", "watchkeep.cli.main", "gateway", "--port", str(port), "--workers", str(WORKERS)]
    config = _config(tmp_path / "routes.yaml", upstream)
    proc = subprocess.Popen([sys.executable, *args, "--config", str(config)], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _ready(url):
            assert proc.poll() is None, f"watchkeep gateway exited with {proc.returncode}"
            assert time.monotonic() < deadline, "watchkeep gateway did not become ready"
            time.sleep(0.1)
        yield url, psutil.Process(proc.pid)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _serving_pids(parent: psutil.Process, port: int) -> set[int]:
    """Workers holding an accepted connection on ``port`` right now."""
    pids = set()
    for child in parent.children():
        if "resource_tracker" in " ".join(child.cmdline()):
            continue
        conns = child.net_connections(kind="tcp")
        if any(c.laddr and c.laddr.port == port and c.status == "ESTABLISHED" for c in conns):
            pids.add(child.pid)
    return pids


@pytest.mark.slow  # three Python processes start: 40 s and more on a busy 2-core machine
def test_two_workers_serve_trace_export_resources_and_stop_cleanly(
    gateway: tuple[str, psutil.Process], live_server: LiveServer
) -> None:
    url, parent = gateway
    port = int(url.rsplit(":", 1)[1])
    workers = [c for c in parent.children() if "resource_tracker" not in " ".join(c.cmdline())]
    assert len(workers) == WORKERS

    trace_ids: list[str] = []
    seen: set[int] = set()

    def call(_: int) -> str:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=live_server.api_key, max_retries=0)
        with client:
            raw = client.chat.completions.with_raw_response.create(
                model="m", messages=[{"role": "user", "content": "hi"}]
            )
        assert raw.parse().choices[0].message.content == "The quick brown fox jumps over the lazy dog."
        return str(raw.headers["x-watchkeep-trace-id"])

    # Each client has its own connection; while a batch is in flight (the upstream waits
    # 300 ms), keep looking at which workers hold accepted connections. Kernel accept order is not
    # ours to choose, so batches repeat until both workers have served (or 10 batches).
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(10):
            batch = [pool.submit(call, i) for i in range(8)]
            while not all(f.done() for f in batch):
                seen |= _serving_pids(parent, port)
                time.sleep(0.01)
            trace_ids += [f.result() for f in batch]
            if seen == {w.pid for w in workers}:
                break
    assert seen == {w.pid for w in workers}

    # Resource gauges: every scrape (whichever worker answers) reports its own process.
    for _ in range(4):
        text = httpx.get(f"{url}/metrics", timeout=10).text
        gauges = dict(GAUGE.findall(text))
        assert set(gauges) == {"cpu_percent", "memory_rss_bytes"}, text[:2000]
        assert float(gauges["memory_rss_bytes"]) > 10_000_000
        assert float(gauges["cpu_percent"]) >= 0

    parent.send_signal(signal.SIGTERM)
    assert parent.wait(30) == 0
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)

    # Every call served has its trace in the database (read through the server).
    with live_server.client as http:
        for trace_id in trace_ids:
            deadline = time.monotonic() + 20
            while not (items := http.get("/api/v1/spans", params={"trace_id": trace_id}).json()["items"]):
                assert time.monotonic() < deadline, f"no trace stored for {trace_id}"
                time.sleep(0.1)
            (span,) = [s for s in items if s["name"].startswith("chat")]
            assert (span["request_model"], span["response_model"]) == ("m", "upstream-model")


def test_the_gateway_only_app_exports_its_own_resource_gauges(sqlite_url: str, tmp_path: Path) -> None:
    """In-process and fast: no monitor loop runs, yet ``/metrics`` has this process's gauges."""
    settings = Settings(
        home=tmp_path,
        database_url=sqlite_url,
        worker_enabled=False,
        process_role="gateway",
        log_format="text",
    )
    with TestClient(create_app(settings, gateway_only=True), client=("127.0.0.1", 50000)) as client:
        text = client.get("/metrics").text
    gauges = dict(GAUGE.findall(text))
    assert set(gauges) == {"cpu_percent", "memory_rss_bytes"}
    assert float(gauges["memory_rss_bytes"]) > 10_000_000
