"""The gateway benchmark's no-loss phase: every call served through a database outage has its trace.

``watchkeep gateway`` (the benchmark's workers) serves an open-loop load; in the middle,
the database is made unavailable for ``--outage-seconds`` (default 30, or
``WATCHKEEP_BENCH_OUTAGE_SECONDS``). PostgreSQL (the default, a throwaway cluster) is
stopped (``pg_ctl stop -m fast``: connections end, new ones are refused) and started
again; SQLite gets an exclusive lock held by another process's connection (the writer's
commits wait on it, up to its 30 s busy timeout, then fail). Afterwards the phase waits
for the spool to be replayed and counts the stored spans of the trace ids the calls
returned: "calls served N, traces stored N, lost 0".

Keys are cached for the outage's length (``WATCHKEEP_KEY_CACHE_SECONDS``): otherwise key
checks, which read the database, would refuse calls and leave fewer calls to trace.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import aiohttp
import yaml
from sqlalchemy import bindparam, text

from watchkeep.devtools.postgres import TempPostgres, free_port
from watchkeep.store.engine import make_engine

Started = Callable[..., AbstractContextManager[int]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--outage-seconds",
        type=float,
        default=float(os.environ.get("WATCHKEEP_BENCH_OUTAGE_SECONDS", "30")),
        help="No-loss phase: how long the database is unavailable (0 skips the phase).",
    )
    parser.add_argument("--outage-db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--outage-rate", type=float, default=200.0, help="No-loss phase: calls a second.")
    parser.add_argument(
        "--outage-margin", type=float, default=10.0, help="No-loss phase: load before and after the outage."
    )
    parser.add_argument("--no-loss-only", action="store_true", help="Run the no-loss phase alone.")


class _Database:
    """The phase's store and how to take it away."""

    def __init__(self, kind: str, home: Path) -> None:
        self.kind = kind
        self._pg: TempPostgres | None = None
        self._lock: sqlite3.Connection | None = None
        self._file = home / "watchkeep.db"
        self.url = f"sqlite:///{self._file}"

    def __enter__(self) -> _Database:
        if self.kind == "postgres":
            self._pg = TempPostgres().start()
            self.url = self._pg.url
        return self

    def __exit__(self, *exc: object) -> None:
        self.up()
        if self._pg is not None:
            self._pg.stop()

    def down(self) -> None:
        if self._pg is None:
            self._lock = sqlite3.connect(self._file, timeout=60)
            self._lock.execute("BEGIN EXCLUSIVE")
        else:
            self._pg.pause()

    def up(self) -> None:
        if self._lock is not None:
            self._lock.rollback()
            self._lock.close()
            self._lock = None
        elif self._pg is not None:
            self._pg.resume()


async def _load(url: str, key: str, model: str, rate: float, seconds: float, served: list[str]) -> int:
    """Open-loop calls at ``rate`` for ``seconds``; appends the trace ids of those served (200).

    aiohttp, not httpx: httpx's pool slows quadratically with thousands of pending requests,
    which made the load generator, not the gateway, the bottleneck.
    """
    failed = 0
    body = {"model": model, "messages": [{"role": "user", "content": "Say something short."}]}
    connector = aiohttp.TCPConnector(limit=256)
    timeout = aiohttp.ClientTimeout(total=60)
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(url, headers=headers, connector=connector, timeout=timeout) as client:

        async def one() -> None:
            nonlocal failed
            try:
                async with client.post("/v1/chat/completions", json=body) as response:
                    await response.read()
                    if response.status == 200:
                        served.append(response.headers["x-watchkeep-trace-id"])
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            failed += 1

        tasks = []
        start = time.monotonic()
        for n in range(int(rate * seconds)):
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return failed


def _stored(url: str, trace_ids: list[str]) -> int:
    """How many of ``trace_ids`` have a stored span."""
    engine = make_engine(url)
    query = text("SELECT count(DISTINCT trace_id) FROM spans WHERE trace_id IN :ids").bindparams(
        bindparam("ids", expanding=True)
    )
    try:
        with engine.connect() as conn:
            return sum(
                int(conn.execute(query, {"ids": trace_ids[at : at + 1000]}).scalar_one())
                for at in range(0, len(trace_ids), 1000)
            )
    finally:
        engine.dispose()


def _spooled_files(home: Path) -> int:
    return sum(1 for p in (home / "gateway-spool").rglob("*") if p.is_file())


@contextlib.contextmanager
def _gateway(
    db: _Database, home: Path, upstream: str, args: argparse.Namespace, started: Started
) -> Iterator[tuple[str, str]]:
    """A ``watchkeep gateway`` on ``db``; yields (base URL, key)."""
    config = home / "routes.yaml"
    deployment = {"name": "mock", "backend": "openai_compatible", "base_url": f"{upstream}/v1"}
    config.write_text(yaml.safe_dump({"routes": [{"name": "m0", "deployments": [deployment]}]}))
    env = {
        **os.environ,
        "WATCHKEEP_HOME": str(home),
        "WATCHKEEP_DATABASE_URL": db.url,
        "WATCHKEEP_LOG_LEVEL": "WARNING",
        "WATCHKEEP_KEY_CACHE_SECONDS": str(args.outage_seconds + 3 * args.outage_margin + 60),
    }
    exe = [sys.executable, "-m", "watchkeep.cli.main"]
    subprocess.run([*exe, "db", "upgrade"], env=env, check=True, capture_output=True)
    key = subprocess.run(
        [*exe, "keys", "create", "--project", "bench"], env=env, check=True, capture_output=True, text=True
    ).stdout.split()[-1]
    port = free_port()
    cmd = [*exe, "gateway", "--port", str(port), "--workers", str(args.workers), "--config", str(config)]
    with started(cmd, f"http://127.0.0.1:{port}/readyz", env):
        yield f"http://127.0.0.1:{port}", key


def no_loss(args: argparse.Namespace, started: Started) -> str:
    """Run the phase; the line to print."""
    if args.outage_seconds <= 0:
        return "no-loss phase skipped (--outage-seconds 0)"
    home = Path(tempfile.mkdtemp(prefix="wk-gw-outage-"))
    up = free_port()
    upstream = f"http://127.0.0.1:{up}"
    mock = [sys.executable, "-m", "watchkeep.devtools.mock_upstream", "--port", str(up)]
    served: list[str] = []
    with (
        started(mock, f"{upstream}/_stats"),
        _Database(args.outage_db, home) as db,
        _gateway(db, home, upstream, args, started) as (url, key),
    ):
        seconds = args.outage_seconds + 2 * args.outage_margin

        async def run() -> int:
            load = asyncio.create_task(_load(url, key, "m0", args.outage_rate, seconds, served))
            await asyncio.sleep(args.outage_margin)
            await asyncio.to_thread(db.down)
            await asyncio.sleep(args.outage_seconds)
            await asyncio.to_thread(db.up)
            return await load

        failed = asyncio.run(run())
        load_end = time.monotonic()
        deadline = load_end + 300
        stored = _stored(db.url, served)
        while (stored < len(served) or _spooled_files(home)) and time.monotonic() < deadline:
            time.sleep(1)
            stored = _stored(db.url, served)
        caught_up = time.monotonic() - load_end
    lost = len(served) - stored
    return (
        f"no-loss ({args.outage_seconds:g} s {args.outage_db} outage in {seconds:g} s of load at "
        f"{args.outage_rate:g}/s, {args.workers} worker(s)): calls served {len(served)}, "
        f"traces stored {stored}, lost {lost} (calls refused {failed}; all stored {caught_up:.1f} s "
        "after the load); "
        f"target 0 lost: {'met' if lost == 0 else 'MISSED'}"
    )
