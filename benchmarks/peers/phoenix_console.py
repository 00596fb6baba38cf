"""Arize Phoenix's trace list in the browser: the peer column of benchmarks/console.py.

Starts ``phoenix serve`` from its own virtual environment (``benchmarks/peers/phoenix.sh``,
.bench/phoenix) on a free loopback port with a fresh SQLite working directory, sends it the
same LLM-shaped OTLP/HTTP exports our server gets (``console.spread_bodies``, to its default
project), waits until its GraphQL API counts them all, and then times headless chromium from
navigation start to the first trace row on screen of the project's Traces page, over
``--rounds`` loads after two warm-ups: the median with its distribution-free 95 % interval.

Run with the project's python; the last line printed is one JSON object:
``{"tool": "phoenix", "version": ..., "spans": N, "first_row_ms": {...}}``, or one with
``"skipped"`` (exit 0) when the peer environment is absent, or ``"error"`` (exit 1).

    python benchmarks/peers/phoenix_console.py --spans 2000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from console import CHROMIUM, spread_bodies  # noqa: E402
from ingest import SPANS_PER_REQUEST  # noqa: E402
from watchkeep.devtools.postgres import free_port  # noqa: E402
from watchkeep.devtools.quantiles import quantile_interval  # noqa: E402

VENV = Path(os.environ.get("PHOENIX_VENV", str(ROOT / ".bench" / "phoenix")))
PHOENIX = VENV / "bin" / "phoenix"
# A data row of the traces table: its name cell links to the trace (not the empty-state row).
FIRST_ROW = "table tbody tr[data-selected] td a"
COUNT_QUERY = "{ projects { edges { node { id name recordCount } } } }"


def version() -> str:
    done = subprocess.run(
        [
            str(VENV / "bin" / "python"),
            "-c",
            "import importlib.metadata as m; print(m.version('arize-phoenix'))",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


@contextmanager
def phoenix_server(workdir: Path) -> Iterator[str]:
    """A running ``phoenix serve`` on loopback, its SQLite store under ``workdir``."""
    port = free_port()
    env = {
        **os.environ,
        "PHOENIX_WORKING_DIR": str(workdir),
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(free_port()),
        "PHOENIX_TELEMETRY_ENABLED": "false",
    }
    env.pop("PHOENIX_SQL_DATABASE_URL", None)
    url = f"http://127.0.0.1:{port}"
    with open(workdir / "serve.log", "wb") as log:
        proc = subprocess.Popen([str(PHOENIX), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 180
            while True:
                if proc.poll() is not None:
                    tail = (workdir / "serve.log").read_text(errors="replace")[-600:]
                    raise RuntimeError(f"phoenix serve exited with {proc.returncode}: {tail}")
                if time.monotonic() > deadline:
                    raise RuntimeError("phoenix serve was not ready within 180 s")
                try:
                    if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def default_project(url: str) -> tuple[str, int]:
    """The default project's id and the spans Phoenix has stored in it."""
    body = httpx.post(f"{url}/graphql", json={"query": COUNT_QUERY}, timeout=60).json()
    for edge in body["data"]["projects"]["edges"]:
        if edge["node"]["name"] == "default":
            return str(edge["node"]["id"]), int(edge["node"]["recordCount"])
    raise RuntimeError("Phoenix has no default project")


def fill(url: str, spans: int, days: float, seed: int) -> tuple[str, int]:
    """Send the exports and wait (bounded) until Phoenix counts them all: project id, spans."""
    sent = 0
    with httpx.Client(timeout=300, headers={"Content-Type": "application/x-protobuf"}) as http:
        for bodies in spread_bodies(spans, days, seed):
            for body in bodies:
                http.post(f"{url}/v1/traces", content=body).raise_for_status()
            sent += len(bodies)
    expected = sent * SPANS_PER_REQUEST
    deadline = time.monotonic() + max(120.0, expected / 10)  # it stores about 45 spans/s
    while True:
        project, stored = default_project(url)
        if stored >= expected:
            return project, stored
        if time.monotonic() > deadline:
            raise RuntimeError(f"Phoenix stored {stored} of {expected} spans in the time allowed")
        time.sleep(1)


def first_row_times(url: str, project: str, rounds: int) -> list[float]:
    """Milliseconds from navigation start to the first trace row, per timed load."""
    from playwright.sync_api import sync_playwright

    samples: list[float] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        for i in range(rounds + 2):
            page.goto(f"{url}/projects/{project}/traces", wait_until="commit")
            page.wait_for_selector(FIRST_ROW, timeout=120_000)
            shown = float(page.evaluate("performance.now()"))
            if i >= 2:  # the first loads warm the caches
                samples.append(shown)
        browser.close()
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=2000, help="spans stored (in whole exports)")
    parser.add_argument("--rounds", type=int, default=10, help="timed page loads")
    parser.add_argument("--days", type=float, default=1 / 24, help="start times spread over this many days")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    if not PHOENIX.exists():
        print(json.dumps({"tool": "phoenix", "skipped": f"no {PHOENIX}: run ./benchmarks/peers/phoenix.sh"}))
        return 0
    if not Path(CHROMIUM).exists():
        print(json.dumps({"tool": "phoenix", "skipped": f"no chromium at {CHROMIUM}"}))
        return 0
    try:
        release = version()
        with tempfile.TemporaryDirectory() as workdir, phoenix_server(Path(workdir)) as url:
            project, stored = fill(url, args.spans, args.days, args.seed)
            print(f"[phoenix {release}] stored {stored:,} spans", file=sys.stderr, flush=True)
            q = quantile_interval(first_row_times(url, project, args.rounds), 0.5)
    except Exception as exc:  # report any failure as a reason, for the caller's table
        print(json.dumps({"tool": "phoenix", "error": f"{type(exc).__name__}: {exc}"}))
        return 1
    first_row = {"median": q.value, "low": q.low, "high": q.high, "n": q.n}
    print(json.dumps({"tool": "phoenix", "version": release, "spans": stored, "first_row_ms": first_row}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
