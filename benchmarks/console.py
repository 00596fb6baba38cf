"""Console benchmark: the server time of every page at 1,000,000 stored spans, and the
browser's time to a usable trace list.

For each database it starts a real ``watchkeep server``, fills it with LLM-shaped spans
through OTLP (as ``benchmarks/ingest.py`` does, all within the last hours, so the default
24-hour views cover every span), adds a monitor, an annotation queue and a comment through
the API, logs a console user in through the login form, and then requests every page
``--rounds`` times after a warm-up: p50 and p95 of the response time on loopback (server
time plus about 0.2 ms of local HTTP), each with its n and a distribution-free 95 %
interval (``watchkeep.devtools.quantiles``). The target is p95 at most 150 ms.

Then headless chromium (Debian's, through Playwright) opens the trace list with the
session cookie: the time from navigation start to the first row on screen, and to the
overview's charts drawn, over ``--browser-rounds`` loads. Beside it, Arize Phoenix's figure
for the same list: a fresh SQLite server of ours and Phoenix (``benchmarks/peers/phoenix.sh``,
``benchmarks/peers/phoenix_console.py``) each get the same ``--peer-spans`` spans (Phoenix
stores about 45 spans/s, so not a million) and the time to the first trace row is taken the
same way in both.

    python benchmarks/console.py                      # both databases, 1M spans
    WATCHKEEP_BENCH_CONSOLE_SPANS=20000 python benchmarks/console.py --db sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path

import httpx

from ingest import SPANS_PER_REQUEST, post_all, server
from watchkeep.devtools.postgres import TempPostgres
from watchkeep.devtools.quantiles import Quantile, quantile_interval
from watchkeep.devtools.synthetic_otlp import build_request

TARGET_P95_MS = 150.0
EMAIL = "bench@example.com"
PASSWORD = "correct horse battery staple"
CLI = [sys.executable, "-m", "watchkeep.cli.main"]
CHROMIUM = os.environ.get("WATCHKEEP_CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[1]
PHOENIX_VENV = Path(os.environ.get("PHOENIX_VENV", str(ROOT / ".bench" / "phoenix")))
PEER_DAYS = 1 / 24  # the peer comparison's spans: within both tools' default views


def spread_bodies(target: int, days: float, seed: int) -> Iterator[list[bytes]]:
    """Batches of synthetic exports holding ``target`` spans (in whole exports), their start
    times spread evenly over the last ``days`` (newest last, as a store that has been running
    that long). Shared with the Phoenix peer (benchmarks/peers/phoenix_console.py)."""
    rng = random.Random(seed)
    requests = -(-target // SPANS_PER_REQUEST)
    now = time.time_ns()
    span_ns = int(days * 86_400e9)
    for first in range(0, requests, 100):
        batch = range(first, min(first + 100, requests))
        yield [
            build_request(SPANS_PER_REQUEST, rng=rng, start_ns=now - span_ns + i * span_ns // requests)[0]
            for i in batch
        ]


def fill_spread(url: str, key: str, target: int, days: float, seed: int) -> int:
    """Send ``spread_bodies`` to our server; the number of spans stored."""
    sent = 0
    for bodies in spread_bodies(target, days, seed):
        asyncio.run(post_all(url, key, bodies))
        sent += len(bodies) * SPANS_PER_REQUEST
    return sent


def wait_for_search_index(url: str, timeout_s: float = 1200.0) -> float:
    """Seconds until the search indexer has caught up with the fill (its lag gauge at 0):
    pages are timed on a server in its steady state, not one still indexing a million spans."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        found = re.search(
            r"^watchkeep_search_index_lag_spans ([0-9.e+]+)$", httpx.get(f"{url}/metrics").text, re.M
        )
        if found is None or float(found.group(1)) == 0:
            break
        time.sleep(2)
    return time.perf_counter() - started


def create_user(home: Path, database_url: str | None) -> None:
    """An owner of the default organisation (the benchmark project's) through the CLI."""
    env = {**os.environ, "WATCHKEEP_HOME": str(home), "WATCHKEEP_LOG_LEVEL": "WARNING"}
    if database_url:
        env["WATCHKEEP_DATABASE_URL"] = database_url
    subprocess.run(
        [*CLI, "users", "create", EMAIL, "--org", "default", "--role", "owner", "--password-stdin"],
        input=PASSWORD + "\n",
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )


def login(url: str) -> httpx.Client:
    """A client logged in through the console's login form."""
    http = httpx.Client(base_url=url, timeout=60, follow_redirects=False)
    form = http.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None, "no login form"
    done = http.post("/login", data={"csrf_token": token.group(1), "email": EMAIL, "password": PASSWORD})
    if done.status_code != 303:
        raise RuntimeError(f"login failed: {done.status_code}")
    return http


def seed_objects(url: str, key: str) -> dict[str, str]:
    """A monitor, an annotation queue filled with traces and a comment: ids for the pages."""
    found: dict[str, str] = {}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as api:
        traces = api.get("/api/v1/traces", params={"limit": 1}).json()["items"]
        found["trace"] = traces[0]["trace_id"]
        monitor = api.post(
            "/api/v1/monitors",
            json={
                "name": "p95 latency",
                "kind": "metric",
                "metric": "latency_p95_ms",
                "window": "1h",
                "schedule": "1m",
                "condition": {"op": ">", "warning": 4000, "alert": 8000},
            },
        )
        if monitor.status_code in (200, 201):
            found["monitor"] = str(monitor.json()["id"])
        queue = api.post(
            "/api/v1/annotation-queues",
            json={"name": "bench", "score_name": "verdict", "labels": ["good", "bad"]},
        )
        if queue.status_code in (200, 201):
            found["queue"] = str(queue.json()["id"])
            until = datetime.now(UTC)
            since = until - timedelta(days=1)
            api.post(
                f"/api/v1/annotation-queues/{found['queue']}/items",
                json={"sample": 200, "seed": 1, "since": since.isoformat(), "until": until.isoformat()},
            )
        api.post(
            "/api/v1/comments", json={"target_kind": "trace", "target_id": found["trace"], "body": "bench"}
        )
    return found


def pages(project: str, ids: dict[str, str]) -> dict[str, str]:
    """Every page to time, by label."""
    p = f"/p/{project}"
    out = {
        "overview (24h)": f"{p}/",
        "overview, model filter": f"{p}/?model=gpt-4o-mini",
        "traces": f"{p}/traces",
        "traces, model filter": f"{p}/traces?model=gpt-4o-mini",
        "traces, errors only": f"{p}/traces?status=error",
        "traces, search (common word)": f"{p}/traces?q=renewal",  # in every span: the worst case
        "traces, search (rare word)": f"{p}/traces?q=424242",  # one question number
        "trace": f"{p}/traces/{ids['trace']}",
        "users": f"{p}/users",
        "sessions": f"{p}/sessions",
        "overview (7d)": f"{p}/?range=7d",
        "users (7d)": f"{p}/users?range=7d",
        "monitors": f"{p}/monitors",
        "routes": f"{p}/routes",
        "queues": f"{p}/queues",
        "activity": f"{p}/activity",
        "members": f"{p}/settings/members",
        "keys": f"{p}/settings/keys",
    }
    if "monitor" in ids:
        out["monitor"] = f"{p}/monitors/{ids['monitor']}"
    if "queue" in ids:
        out["queue"] = f"{p}/queues/{ids['queue']}"
        out["annotate"] = f"{p}/queues/{ids['queue']}/annotate"
    return out


def time_pages(
    http: httpx.Client, targets: dict[str, str], rounds: int
) -> dict[str, tuple[Quantile, Quantile] | str]:
    """p50 and p95 (ms) of each page, or why it could not be timed."""
    out: dict[str, tuple[Quantile, Quantile] | str] = {}
    for label, path in targets.items():
        first = http.get(path)
        if first.status_code != 200:
            out[label] = f"HTTP {first.status_code}"
            continue
        for _ in range(2):
            http.get(path)
        samples = []
        for _ in range(rounds):
            started = time.perf_counter()
            response = http.get(path)
            samples.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
        out[label] = (quantile_interval(samples, 0.5), quantile_interval(samples, 0.95))
        print(f"  {label:<26} p95 {out[label][1].format(' ms')}", flush=True)  # type: ignore[index]
    return out


def browser_times(url: str, http: httpx.Client, project: str, rounds: int) -> dict[str, Quantile] | str:
    """Milliseconds from navigation start to a usable trace list / drawn overview charts."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return "playwright is not installed"
    if not Path(CHROMIUM).exists():
        return f"no chromium at {CHROMIUM}"
    cookies = [
        {"name": c.name, "value": c.value or "", "url": url}
        for c in http.cookies.jar
        if c.name == "wk_session"
    ]
    results: dict[str, list[float]] = {"trace list: first row": [], "overview: charts drawn": []}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.add_cookies(cookies)  # type: ignore[arg-type]
        page = context.new_page()
        for i in range(rounds + 2):
            page.goto(f"{url}/p/{project}/traces", wait_until="commit")
            page.wait_for_selector("table.wk-trace-list tbody tr[data-trace-id]")
            rows = float(page.evaluate("performance.now()"))
            page.goto(f"{url}/p/{project}/", wait_until="commit")
            page.wait_for_selector(".wk-chart canvas")
            charts = float(page.evaluate("performance.now()"))
            if i >= 2:  # the first loads warm the caches
                results["trace list: first row"].append(rows)
                results["overview: charts drawn"].append(charts)
        browser.close()
    return {label: quantile_interval(samples, 0.5) for label, samples in results.items()}


def run_one(
    label: str,
    database_url: str | None,
    spans: int,
    days: float,
    rounds: int,
    browser_rounds: int,
    only: frozenset[str] = frozenset(),
) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as home, server(database_url, Path(home)) as started:
        url, key = started[0], started[1]
        stored = fill_spread(url, key, spans, days, seed=11)
        print(f"[{label}] stored {stored:,} spans over {days:g} days", flush=True)
        print(f"[{label}] search index caught up in {wait_for_search_index(url):.0f} s", flush=True)
        create_user(Path(home), database_url)
        ids = seed_objects(url, key)
        http = login(url)
        try:
            targets = {k: v for k, v in pages("bench", ids).items() if not only or k in only}
            timed = time_pages(http, targets, rounds)
            browser = browser_times(url, http, "bench", browser_rounds) if browser_rounds else "not asked for"
        finally:
            http.close()
    return {"db": label, "spans": stored, "pages": timed, "browser": browser}


def ours_first_row(spans: int, rounds: int) -> tuple[int, Quantile | str]:
    """Our trace list's first row at the peer's size: a fresh SQLite server, stored spans."""
    with tempfile.TemporaryDirectory() as home, server(None, Path(home)) as started:
        stored = fill_spread(started[0], started[1], spans, PEER_DAYS, seed=11)
        create_user(Path(home), None)
        http = login(started[0])
        try:
            times = browser_times(started[0], http, "bench", rounds)
        finally:
            http.close()
    return stored, times if isinstance(times, str) else times["trace list: first row"]


def phoenix_first_row(spans: int, rounds: int) -> dict[str, object]:
    """Phoenix's figure for the same spans (benchmarks/peers/phoenix_console.py), or why not."""
    script = ROOT / "benchmarks" / "peers" / "phoenix_console.py"
    args = ["--spans", str(spans), "--rounds", str(rounds), "--days", str(PEER_DAYS)]
    try:
        done = subprocess.run(
            [sys.executable, str(script), *args], capture_output=True, text=True, timeout=900 + spans / 10
        )
    except subprocess.TimeoutExpired:
        return {"error": "benchmarks/peers/phoenix_console.py timed out"}
    try:
        found = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": f"exit {done.returncode}: {done.stderr.strip()[-300:]}"}
    assert isinstance(found, dict)
    return found


def peer_compare(spans: int, rounds: int) -> dict[str, object] | str:
    """Our trace list and Phoenix's, same spans, same run; or why Phoenix cannot run."""
    if spans <= 0:
        return "skipped (--peer-spans 0)"
    if not (PHOENIX_VENV / "bin" / "phoenix").exists():
        return f"no Phoenix environment at {PHOENIX_VENV} (./benchmarks/peers/phoenix.sh makes it)"
    print(f"[peer] watchkeep and Arize Phoenix, {spans:,} spans each", flush=True)
    stored, ours = ours_first_row(spans, rounds)
    return {"stored": stored, "ours": ours, "phoenix": phoenix_first_row(spans, rounds)}


@contextmanager
def maybe_postgres(wanted: bool) -> Iterator[str | None]:
    if not wanted:
        yield None
        return
    with TempPostgres() as pg:
        yield pg.url


def report_peer(peer: dict[str, object] | str) -> None:
    """The trace list's first row, watchkeep beside Phoenix, or why Phoenix was not measured."""
    if isinstance(peer, str):
        print(f"\nPeer: Arize Phoenix's trace list was not measured in this run: {peer}.")
        return
    phoenix = peer["phoenix"]
    assert isinstance(phoenix, dict)
    print(
        f"\nTrace list, first row (ms), {peer['stored']:,} spans: watchkeep vs Phoenix (median [95 % interval]):"
    )
    ours = peer["ours"]
    if isinstance(ours, Quantile):
        print(f"{'watchkeep':<10} {version('watchkeep'):<10} {ours.format():>26}  n={ours.n}")
    else:
        print(f"{'watchkeep':<10} not measured: {ours}")
    row = phoenix.get("first_row_ms")
    if isinstance(row, dict):
        q = Quantile(row["median"], row["low"], row["high"], row["n"])
        print(
            f"{'Phoenix':<10} {phoenix['version']:<10} {q.format():>26}  n={q.n}  ({phoenix['spans']:,} spans)"
        )
    else:
        reason = phoenix.get("skipped") or phoenix.get("error")
        print(f"Peer: Arize Phoenix's trace list was not measured in this run: {reason}.")


def report(results: list[dict[str, object]], rounds: int, peer: dict[str, object] | str) -> None:
    print()
    print(
        f"Console pages: response time on loopback, ms, n={rounds} each, [95 % interval]; target p95 <= {TARGET_P95_MS:.0f} ms"
    )
    print(f"{'database':<10} {'page':<26} {'p50':>22} {'p95':>24}  ok")
    for r in results:
        timed = r["pages"]
        assert isinstance(timed, dict)
        for page_label, value in timed.items():
            if isinstance(value, str):
                print(f"{r['db']:<10} {page_label:<26} {'(' + value + ')':>22}")
                continue
            p50, p95 = value
            ok = "yes" if p95.value <= TARGET_P95_MS else "NO"
            print(f"{r['db']:<10} {page_label:<26} {p50.format():>22} {p95.format():>24}  {ok}")
    print()
    print("Browser (headless chromium), ms from navigation start, median [95 % interval]:")
    for r in results:
        browser = r["browser"]
        if isinstance(browser, str):
            print(f"{r['db']:<10} not measured: {browser}")
            continue
        assert isinstance(browser, dict)
        for what, q in browser.items():
            print(f"{r['db']:<10} {what:<26} {q.format():>22}  n={q.n}")
    report_peer(peer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--spans",
        type=int,
        default=int(os.environ.get("WATCHKEEP_BENCH_CONSOLE_SPANS", "1000000")),
        help="spans stored (env WATCHKEEP_BENCH_CONSOLE_SPANS)",
    )
    parser.add_argument(
        "--days",
        type=float,
        default=None,
        help="the stored spans' start times span this many days (default: 30, or 1 below 100,000 spans)",
    )
    parser.add_argument("--rounds", type=int, default=60, help="timed requests per page")
    parser.add_argument("--only", default="", help="page labels to time, separated by ; (default: all)")
    parser.add_argument("--browser-rounds", type=int, default=15, help="timed page loads in the browser")
    parser.add_argument(
        "--peer-spans",
        type=int,
        default=2000,
        help="spans for the trace list beside Arize Phoenix's (it stores about 45 spans/s); 0 skips",
    )
    args = parser.parse_args()
    # The indexer catches up with the fill at full speed (it then follows ingest, idle).
    os.environ.setdefault("WATCHKEEP_SEARCH_INDEX_BUDGET", "1.0")
    results = []
    for label in ("sqlite", "postgres"):
        if args.db not in (label, "both"):
            continue
        with maybe_postgres(label == "postgres") as url:
            days = args.days if args.days is not None else (30.0 if args.spans >= 100_000 else 1.0)
            only = frozenset(p.strip() for p in args.only.split(";") if p.strip())
            results.append(run_one(label, url, args.spans, days, args.rounds, args.browser_rounds, only))
    peer = peer_compare(args.peer_spans, args.browser_rounds)
    report(results, args.rounds, peer)


if __name__ == "__main__":
    main()
