"""Releases on the real stack: alias propagation across gateway processes, and the live canary loop.

1. Propagation. Two ``watchkeep server`` processes share one database (SQLite; PostgreSQL too
   with ``--postgres URL`` or when a local one can be started), routes synced on the 1 s
   default. Route ``chat`` serves ``bot@production`` (mock versions answering "v1"/"v2").
   The alias is moved back and forth through process A's REST API; after each move both
   processes are polled with chat calls every ~5 ms. Figure: seconds from the PUT's response
   to the first answer of the new version, per process; "other" counts answers that were
   neither version (must be 0).
2. Canary loop. One server with the canary worker (check every 1 s) and the mock upstream as
   v1 (production) and v2 (canary), a live canary of 10 % on error_rate (min 200, max 5,000
   samples). 30 % of v2's calls are made to fail, then steady traffic (``--clients``
   concurrent callers) runs until the canary's status is rolled_back. Figures: requests sent
   from injection until that status is seen, seconds from injection to the auto_rollback
   event, and the share of calls v2 still serves once the route reloaded (must be 0). One
   null run (no regression) reports the requests until promotion.

    python benchmarks/release_loop.py [--moves 20] [--runs 3] [--clients 32] [--postgres URL]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml
from sqlalchemy import text

from gateway import started
from watchkeep.devtools.postgres import PostgresUnavailable, TempPostgres, free_port
from watchkeep.monitor.stats import clopper_pearson
from watchkeep.store.engine import make_engine

CLI = [sys.executable, "-m", "watchkeep.cli.main"]
CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
TARGET_S = 2.0  # issue 15: an alias move reaches every gateway process within 2 s


def _env(home: Path, database_url: str, config: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "WATCHKEEP_HOME": str(home),
        "WATCHKEEP_DATABASE_URL": database_url,
        "WATCHKEEP_GATEWAY_CONFIG": str(config),
        "WATCHKEEP_INGEST_DECODE_WORKERS": "0",
        "WATCHKEEP_OTLP_GRPC_PORT": "0",  # two servers: no shared default gRPC port
        "WATCHKEEP_LOG_LEVEL": "WARNING",
        **extra,
    }


def _admin_key(env: dict[str, str], project: str) -> str:
    """Migrate the database and create an admin key of ``project`` through the CLI."""
    subprocess.run([*CLI, "db", "upgrade"], env=env, check=True, capture_output=True)
    created = subprocess.run(
        [*CLI, "keys", "create", "--project", project, "--role", "admin"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return created.stdout.split()[-1]


@contextlib.contextmanager
def _server(env: dict[str, str]) -> Iterator[str]:
    """A ``watchkeep server`` process; a failed start is retried on a fresh port (another
    process on this machine may take the free port first)."""
    for attempt in range(3):
        url = f"http://127.0.0.1:{free_port()}"
        stack = contextlib.ExitStack()
        try:
            stack.enter_context(
                started([*CLI, "server", "--port", url.rsplit(":", 1)[1]], f"{url}/readyz", env)
            )
            break
        except RuntimeError:
            if attempt == 2:
                raise
    with stack:
        yield url


def _client(url: str, key: str, timeout: float = 30) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=timeout)


def _ok(response: httpx.Response) -> Any:
    if response.status_code >= 300:
        raise RuntimeError(f"{response.request.method} {response.request.url}: {response.text[:300]}")
    return response.json() if response.content else None


def _ask(client: httpx.Client) -> str:
    """The route's answer, or a description of the failure."""
    try:
        response = client.post("/v1/chat/completions", json=CHAT)
    except httpx.HTTPError as exc:
        return f"failed: {type(exc).__name__}"
    if response.status_code != 200:
        return f"HTTP {response.status_code}"
    return str(response.json()["choices"][0]["message"]["content"])


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


# --- 1. alias propagation ---------------------------------------------------------------------


@dataclass
class Propagation:
    database: str
    seconds: dict[str, list[float]] = field(default_factory=dict)
    other: int = 0
    missed: int = 0  # moves a process never served within the poll deadline


def _first_answer(url: str, key: str, want: str, since: float, out: list[float], other: list[int]) -> None:
    """Poll ``url`` every ~5 ms until it answers ``want``; seconds since ``since`` into ``out``."""
    with _client(url, key, 10) as client:
        deadline = since + 20
        while time.monotonic() < deadline:
            reply = _ask(client)
            if reply == want:
                out.append(time.monotonic() - since)
                return
            if reply not in ("v1", "v2"):
                other[0] += 1
            time.sleep(0.005)


def propagation(database: str, database_url: str, moves: int, root: Path) -> Propagation:
    root.mkdir(parents=True, exist_ok=True)
    config = root / "gateway.yaml"
    plain = {"routes": [{"name": "plain", "deployments": [{"name": "m", "backend": "mock"}]}]}
    config.write_text(yaml.safe_dump(plain), "utf-8")
    env_a, env_b = (
        _env(root / name, database_url, config, WATCHKEEP_WORKER_ENABLED="false") for name in "ab"
    )
    key = _admin_key(env_a, f"bench-{uuid.uuid4().hex[:8]}")
    result = Propagation(database, {"A": [], "B": []})
    with _server(env_a) as a, _server(env_b) as b, _client(a, key) as api:
        for n in (1, 2):
            body = {"backend": "mock", "params": {"mock": {"reply": f"v{n}"}}}
            _ok(api.post("/api/v1/models/bot/versions", json=body))
        _ok(api.put("/api/v1/models/bot/aliases/production", json={"version": 1}))
        route = {"deployments": [{"name": "main", "backend": "registry", "model": "bot@production"}]}
        _ok(api.put("/api/v1/routes/chat", json=route))
        for url in (a, b):  # both serve the route before the first move
            seen: list[float] = []
            _first_answer(url, key, "v1", time.monotonic(), seen, [0])
            if not seen:
                raise RuntimeError(f"{url} never served the route")
        other = [0]
        jitter = random.Random(0)
        for k in range(moves):
            time.sleep(jitter.uniform(0, 1))  # moves land at random phases of the 1 s sync
            version = 2 if k % 2 == 0 else 1
            _ok(api.put("/api/v1/models/bot/aliases/production", json={"version": version}))
            since = time.monotonic()
            threads = [
                threading.Thread(
                    target=_first_answer, args=(url, key, f"v{version}", since, result.seconds[name], other)
                )
                for name, url in (("A", a), ("B", b))
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        result.other = other[0]
    result.missed = sum(moves - len(v) for v in result.seconds.values())
    return result


# --- 2. the live canary loop --------------------------------------------------------------------


@dataclass
class CanaryRun:
    regression: bool
    status: str
    requests: int  # sent from injection until the final status was seen
    seconds_to_event: float | None  # injection to the auto_rollback / promote event
    after_total: int = 0
    after_v2: int = 0


class _Traffic:
    """``clients`` threads calling route ``chat`` back to back, counting calls sent and done."""

    def __init__(self, url: str, key: str, clients: int) -> None:
        self.url, self.key, self.clients = url, key, clients
        self.sent = 0
        self.done = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def _loop(self) -> None:
        with _client(self.url, self.key) as c:
            while not self._stop.is_set():
                with self._lock:
                    self.sent += 1
                _ask(c)
                with self._lock:
                    self.done += 1

    def __enter__(self) -> _Traffic:
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(self.clients)]
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)


def _event_at(api: httpx.Client, name: str, alias: str, kind: str) -> float | None:
    items = _ok(api.get(f"/api/v1/models/{name}/aliases/{alias}/history"))["items"]
    ats = [datetime.fromisoformat(e["at"]).timestamp() for e in items if e["kind"] == kind]
    return ats[-1] if ats else None


@dataclass(frozen=True)
class _Stack:
    """The canary server, its database, an admin key (and API client), the mock upstream."""

    url: str
    database_url: str
    key: str
    api: httpx.Client
    upstream: str
    clients: int


def _served(database_url: str, name: str, since_ns: int, calls: int) -> dict[str, int]:
    """Stored gateway spans of route ``chat`` per version of ``name`` since ``since_ns``, once
    ``calls`` of them are stored or their count held still for 2 s (spans are written in the
    background, and under load some may come later still)."""
    query = text(
        "SELECT model_version, count(*) FROM spans WHERE request_model = 'chat' AND name LIKE 'chat%' "
        "AND model_version LIKE :name AND start_time_unix_nano >= :since GROUP BY model_version"
    )
    engine = make_engine(database_url)
    try:
        last, still = -1, time.monotonic()
        while True:
            with engine.connect() as conn:
                rows = conn.execute(query, {"name": f"{name}@%", "since": since_ns}).all()
            found = {str(r[0]): int(r[1]) for r in rows}
            total = sum(found.values())
            if total != last:
                last, still = total, time.monotonic()
            if total >= calls or time.monotonic() - still > 2:
                return found
            time.sleep(0.2)
    finally:
        engine.dispose()


def _setup(stack: _Stack, name: str, switches: dict[int, str]) -> int:
    """Versions v1 and v2 behind their own switches, production -> 1, canary -> 2, route
    ``chat`` without retries, and a live canary of 10 %; returns the canary's id."""
    api = stack.api
    for n in (1, 2):
        params = {"base_url": f"{stack.upstream}/switch-{switches[n]}/v1", "model": switches[n]}
        version = {"backend": "openai_compatible", "params": params}
        _ok(api.post(f"/api/v1/models/{name}/versions", json=version))
    for alias, n in (("production", 1), ("canary", 2)):
        _ok(api.put(f"/api/v1/models/{name}/aliases/{alias}", json={"version": n}))
    route = {"deployments": [{"name": "main", "backend": "registry", "model": f"{name}@production"}]}
    _ok(api.put("/api/v1/routes/chat", json={**route, "retry": {"attempts": 0}}))
    body: dict[str, object] = {"name": name, "route": "chat", "share": 0.1, "metrics": ["error_rate"]}
    canary = _ok(api.post("/api/v1/canaries", json={**body, "min_samples": 200, "max_samples": 5000}))
    return int(canary["id"])


def canary_run(stack: _Stack, *, regression: bool) -> CanaryRun:
    name = f"bot-{uuid.uuid4().hex[:8]}"
    switches = {n: f"v{n}-{uuid.uuid4().hex[:8]}" for n in (1, 2)}
    canary_id = _setup(stack, name, switches)
    time.sleep(2.5)  # the route's new split reaches the gateway (1 s sync)
    if regression:
        _ok(httpx.post(f"{stack.upstream}/_control/{switches[2]}/rate-0.3"))
    injected, injected_wall = time.monotonic(), time.time()
    status = "running"
    with _Traffic(stack.url, stack.key, stack.clients) as traffic:
        while status == "running" and time.monotonic() - injected < 120:
            time.sleep(0.1)
            status = _ok(stack.api.get(f"/api/v1/canaries/{canary_id}"))["status"]
        requests = traffic.sent
    alias, kind = ("canary", "auto_rollback") if regression else ("production", "promote")
    at = _event_at(stack.api, name, alias, kind)
    run = CanaryRun(regression, status, requests, None if at is None else at - injected_wall)
    if regression and status == "rolled_back":
        time.sleep(2.5)  # the route reloads on its next sync
        since_ns = time.time_ns()
        with _Traffic(stack.url, stack.key, stack.clients) as after:
            time.sleep(2)
        served = _served(stack.database_url, name, since_ns, after.done)
        run.after_total = sum(served.values())
        run.after_v2 = served.get(f"{name}@2", 0)
    return run


def canaries(database_url: str, root: Path, runs: int, clients: int) -> list[CanaryRun]:
    up = free_port()
    upstream = f"http://127.0.0.1:{up}"
    config = root / "canary.yaml"
    config.write_text(yaml.safe_dump({"routes": [], "allowed_upstream_origins": [upstream]}), "utf-8")
    env = _env(
        root / "canary",
        database_url,
        config,
        WATCHKEEP_WORKER_ENABLED="true",
        WATCHKEEP_CANARY_CHECK_SECONDS="1",
        WATCHKEEP_EGRESS_ALLOW_NETWORKS="127.0.0.0/8",
    )
    key = _admin_key(env, f"bench-{uuid.uuid4().hex[:8]}")
    upstream_cmd = [sys.executable, "-m", "watchkeep.devtools.mock_upstream", "--port", str(up)]
    with started(upstream_cmd, f"{upstream}/_stats"), _server(env) as url, _client(url, key) as api:
        stack = _Stack(url, database_url, key, api, upstream, clients)
        out = [canary_run(stack, regression=True) for _ in range(runs)]
        out.append(canary_run(stack, regression=False))
    return out


# --- report ---------------------------------------------------------------------------------------


def _print_propagation(results: list[Propagation], moves: int) -> None:
    print(
        f"\n1. alias propagation: {moves} moves, 2 server processes, seconds from PUT response to first new answer"
    )
    header = f"{'database':10} {'process':8} {'n':>4} {'p50 s':>7} {'p95 s':>7} {'max s':>7}  within {TARGET_S:.0f} s"
    print(header)
    print("-" * len(header))
    for r in results:
        for name, values in r.seconds.items():
            worst = max(values, default=float("nan"))
            every = len(values) == moves and worst <= TARGET_S
            print(
                f"{r.database:10} {name:8} {len(values):4} {_pct(values, 50):7.3f} {_pct(values, 95):7.3f} "
                f"{worst:7.3f}  {'yes' if every else 'NO'}"
            )
        print(f"{'':10} answers of neither version: {r.other}; moves never served: {r.missed}")


def _share(hits: int, n: int) -> str:
    """hits/n with its Clopper-Pearson 95 % interval."""
    if n == 0:
        return "-"
    low, high = clopper_pearson(np.array(hits), np.array(n))
    return f"{hits}/{n} = {hits / n:.1%} [{float(low):.2%}, {float(high):.2%}]"


def _print_canaries(runs: list[CanaryRun], clients: int) -> None:
    print(
        f"\n2. live canary loop: share 10 %, error_rate, min 200 / max 5,000, worker every 1 s, "
        f"{clients} concurrent clients; regression = 30 % of v2's calls fail.\n"
        "requests: sent from injection (null: traffic start) until the status is seen; s to event: to the "
        "auto_rollback (null: promote) event; v2 share: stored calls after the reload, 95 % CI"
    )
    header = f"{'run':12} {'status':12} {'requests':>9} {'s to event':>10}  v2 share after reload"
    print(header)
    print("-" * len(header))
    for k, r in enumerate(runs):
        label = f"regress {k + 1}" if r.regression else "null"
        seconds = "-" if r.seconds_to_event is None else f"{r.seconds_to_event:.1f}"
        print(f"{label:12} {r.status:12} {r.requests:9,} {seconds:>10}  {_share(r.after_v2, r.after_total)}")
    rolled = [r for r in runs if r.regression and r.status == "rolled_back"]
    if rolled:
        events = [r.seconds_to_event for r in rolled if r.seconds_to_event is not None]
        requests = [r.requests for r in rolled]
        median_s = f"{statistics.median(events):.1f}" if events else "-"
        total = _share(sum(r.after_v2 for r in rolled), sum(r.after_total for r in rolled))
        print(
            f"{'median':12} {f'n={len(rolled)}':12} {statistics.median(requests):9,.0f} {median_s:>10}  {total}"
        )
        spread = f"{min(events):.1f}-{max(events):.1f} s" if events else "-"
        print(f"{'range':12} requests {min(requests):,}-{max(requests):,}, to event {spread}")


def _databases(args: argparse.Namespace, stack: contextlib.ExitStack, root: Path) -> list[tuple[str, str]]:
    found = [("sqlite", f"sqlite:///{root / 'bench.db'}")]
    if args.postgres:
        found.append(("postgres", args.postgres))
    elif not args.no_postgres:
        try:
            found.append(("postgres", stack.enter_context(TempPostgres(fsync=False)).url))
        except (PostgresUnavailable, subprocess.CalledProcessError) as exc:
            print(f"(no PostgreSQL: {exc})")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--postgres", help="also measure propagation on this PostgreSQL URL")
    parser.add_argument("--no-postgres", action="store_true", help="do not start a local PostgreSQL")
    parser.add_argument("--skip-canary", action="store_true")
    args = parser.parse_args()
    print(__doc__.rsplit("\n\n", 1)[0])
    started_at = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="wk-release-loop-") as tmp, contextlib.ExitStack() as stack:
        root = Path(tmp)
        dbs = _databases(args, stack, root)
        results = []
        for name, url in dbs:
            try:
                results.append(propagation(name, url, args.moves, root / name))
            except RuntimeError as exc:  # PostgreSQL is optional; SQLite is not
                if name == "sqlite":
                    raise
                print(f"({name}: not measured: {exc})")
        _print_propagation(results, args.moves)
        if not args.skip_canary:
            runs = canaries(f"sqlite:///{root / 'canary.db'}", root, args.runs, args.clients)
            _print_canaries(runs, args.clients)
    print(f"\n({time.monotonic() - started_at:.0f} s)")


if __name__ == "__main__":
    main()
