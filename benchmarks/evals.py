"""Evaluation throughput: cases per second against the mock backend, cold and cached, beside promptfoo.

Both tools run the same N cases (one user message each, two checks: contains and exact
match) against the same mock OpenAI-compatible upstream at the same concurrency, from
their command lines, so start-up is included for both; watchkeep's figures without its
start-up (the run's own start and finish times) are printed too. "Cached" is a second
run of the same cases: watchkeep serves them from its output cache (keyed by target
version, input, parameters and repeat), promptfoo from its own cache.

    python benchmarks/evals.py [--cases 5000] [--concurrency 64] [--no-peer]

Needs the promptfoo peer (benchmarks/peers/promptfoo.sh) for its column.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
PROMPTFOO = ROOT / ".bench" / "promptfoo" / "node_modules" / ".bin" / "promptfoo"
REPLY = "The quick brown fox jumps over the lazy dog."  # what the mock upstream answers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def mock_upstream() -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "watchkeep.devtools.mock_upstream", "--port", str(port), "--latency-ms", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("mock upstream did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(10)


def _questions(n: int) -> list[str]:
    return [f"Question {i}: what does the fox do?" for i in range(n)]


def _timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} exited {done.returncode}: {done.stderr[-2000:]}")
    return elapsed


def watchkeep_runs(work: Path, upstream: str, n: int, concurrency: int) -> dict[str, float]:
    """Two CLI runs of the same config: cold (no cache entries) and cached."""
    data = work / "cases.jsonl"
    data.write_text("".join(json.dumps({"input": q, "expected": REPLY}) + "\n" for q in _questions(n)))
    config = {
        "name": "bench",
        "project": "bench",
        "dataset": {"name": "bench", "file": str(data)},
        "target": {"kind": "openai", "base_url": upstream, "model": "mock", "version": "mock-1"},
        "params": {"temperature": 0},
        "evaluators": [{"name": "contains", "params": {"values": ["fox"]}}, {"name": "exact_match"}],
        "concurrency": concurrency,
        "seed": 1,
    }
    path = work / "bench.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {
        **os.environ,
        "WATCHKEEP_DATABASE_URL": f"sqlite:///{work / 'wk.db'}",
        "WATCHKEEP_EGRESS_ALLOW_NETWORKS": "127.0.0.0/8",
    }
    cli = [str(Path(sys.executable).with_name("watchkeep"))]
    subprocess.run([*cli, "projects", "create", "bench"], env=env, cwd=work, capture_output=True, check=True)
    figures: dict[str, float] = {}
    for label in ("cold", "cached"):
        out = work / f"out-{label}"
        wall = _timed([*cli, "eval", "run", str(path), "--output", str(out), "--no-progress"], env, work)
        report = json.loads((out / "report.json").read_text())
        run = report["run"]
        inner = (run["finished_at_ns"] - run["started_at_ns"]) / 1e9
        figures[f"{label}_wall"] = n / wall
        figures[f"{label}_run"] = n / inner if inner > 0 else float("nan")
        figures[f"{label}_passed"] = float(
            report["aggregates"].get("pass_rate", {}).get("value", float("nan"))
        )
    return figures


def promptfoo_runs(work: Path, upstream: str, n: int, concurrency: int) -> dict[str, float]:
    """The same cases through promptfoo's CLI: cold (--no-cache), then a cached rerun."""
    tests: list[dict[str, Any]] = [
        {
            "vars": {"q": q},
            "assert": [{"type": "contains", "value": "fox"}, {"type": "equals", "value": REPLY}],
        }
        for q in _questions(n)
    ]
    config = {
        "description": "bench",
        "prompts": ["{{q}}"],
        "providers": [
            {"id": "openai:chat:mock", "config": {"apiBaseUrl": upstream, "apiKey": "x", "temperature": 0}}
        ],
        "tests": tests,
    }
    (work / "promptfooconfig.json").write_text(json.dumps(config))
    env = {
        **os.environ,
        "HOME": str(work / "home"),
        "PROMPTFOO_DISABLE_TELEMETRY": "1",
        "PROMPTFOO_DISABLE_UPDATE": "1",
        "NODE_NO_WARNINGS": "1",
    }
    base = [str(PROMPTFOO), "eval", "-c", "promptfooconfig.json", "--max-concurrency", str(concurrency)]
    base += ["--no-progress-bar", "--no-table"]
    figures = {"cold_wall": n / _timed([*base, "--no-cache", "-o", "cold.json"], env, work)}
    figures["cold_run"] = n / _promptfoo_seconds(work / "cold.json")
    _timed([*base, "-o", "fill.json"], env, work)  # fills its cache
    figures["cached_wall"] = n / _timed([*base, "-o", "cached.json"], env, work)
    figures["cached_run"] = n / _promptfoo_seconds(work / "cached.json")
    return figures


def _promptfoo_seconds(output: Path) -> float:
    """The evaluation's own duration as promptfoo reports it (start-up excluded)."""
    stats = json.loads(output.read_text())["results"]["stats"]
    return max(float(stats.get("evaluationDurationMs") or stats["durationMs"]), 1.0) / 1000


def table(ours: dict[str, float], peer: dict[str, float] | None, n: int, concurrency: int) -> str:
    def cell(figs: dict[str, float] | None, key: str) -> str:
        return f"{figs[key]:,.0f}" if figs and key in figs else "-"

    lines = [
        f"evaluation throughput: {n:,} cases, mock backend, concurrency {concurrency} (cases/s, higher is better)",
        f"{'':44} {'watchkeep':>12} {'promptfoo':>12}",
        f"{'cold, command line (start-up included)':44} {cell(ours, 'cold_wall'):>12} {cell(peer, 'cold_wall'):>12}",
        f"{'cold, the run itself':44} {cell(ours, 'cold_run'):>12} {cell(peer, 'cold_run'):>12}",
        f"{'cached rerun, command line':44} {cell(ours, 'cached_wall'):>12} {cell(peer, 'cached_wall'):>12}",
        f"{'cached rerun, the run itself':44} {cell(ours, 'cached_run'):>12} {cell(peer, 'cached_run'):>12}",
        "targets: >= 1,000 cases/s cold and >= 10,000 cached (the run itself)",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--no-peer", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wk-bench-evals-") as tmp, mock_upstream() as upstream:
        work = Path(tmp)
        (work / "wk").mkdir()
        ours = watchkeep_runs(work / "wk", upstream, args.cases, args.concurrency)
        peer = None
        if not args.no_peer and PROMPTFOO.exists():
            (work / "pf" / "home").mkdir(parents=True)
            peer = promptfoo_runs(work / "pf", upstream, args.cases, args.concurrency)
        print(table(ours, peer, args.cases, args.concurrency), flush=True)


if __name__ == "__main__":
    main()
