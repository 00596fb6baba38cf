"""Monitoring benchmark: drift tests on 1M values, 100 monitors over 1M spans, Evidently peer.

1. Drift: for each feature (latency, response length, input tokens, model, predicted
   label) a 1,000,000-value reference is summarised once, then a 1,000,000-value current
   window is tested against the cached summary (target <= 0.5 s a test).
2. Monitors: 1,000,000 LLM calls over 24 hours in SQLite (or PostgreSQL), 100 monitors
   (metric, drift, anomaly, quality), worker passes timed (target <= 10 s a pass): the
   cold first pass on a fresh store (drift references and anomaly series scanned within
   the pass's budget, the rest left due), the catch-up passes until every monitor has
   been evaluated, a warm pass, and the first pass of a restarted worker (references read
   back from ``drift_references``, closed anomaly buckets from ``monitor_series_buckets``).
   ``--no-budget`` times the whole cold pass at once.
3. Peer: the same drift computations by Evidently, in its own virtual environment
   (``benchmarks/peers/evidently.sh``), on the same data, in a subprocess.

    python benchmarks/monitoring.py                 # all parts, SQLite
    python benchmarks/monitoring.py --db postgres --spans 200000
    python benchmarks/monitoring.py --only monitors  # just the 100-monitor pass
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from watchkeep.devtools.postgres import TempPostgres
from watchkeep.devtools.synthetic_calls import Traffic, generate, write
from watchkeep.monitor.drift import ReferenceSummary, drift, summarise_categorical, summarise_numeric
from watchkeep.monitor.spec import MonitorSpec
from watchkeep.monitor.wiring import build_monitoring
from watchkeep.store.engine import make_engine
from watchkeep.store.migrate import upgrade
from watchkeep.store.projects import ProjectRepository

ROOT = Path(__file__).resolve().parents[1]
EVIDENTLY_PY = ROOT / ".bench" / "evidently-venv" / "bin" / "python"
DRIFT_TARGET_S = 0.5
PASS_TARGET_S = 10.0
NS = 1_000_000_000
HOUR = 3600 * NS
LABELS = ["billing", "refund", "shipping", "other"]


def feature_data(n: int, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Reference and (slightly shifted) current values of each feature."""
    rng = np.random.default_rng(seed)
    models = np.array(["gpt-4o-mini", "gpt-4o", "llama-3.1-8b", "claude-3-5-haiku"])
    return {
        "latency_ms": (rng.lognormal(6.5, 0.4, n), rng.lognormal(6.55, 0.4, n)),
        "response_length": (rng.poisson(400, n).astype(float), rng.poisson(420, n).astype(float)),
        "input_tokens": (rng.poisson(300, n).astype(float), rng.poisson(300, n).astype(float)),
        "model": (
            models[rng.choice(4, n, p=[0.5, 0.2, 0.2, 0.1])],
            models[rng.choice(4, n, p=[0.4, 0.3, 0.2, 0.1])],
        ),
        "predicted_label": (
            np.array(LABELS)[rng.choice(4, n)],
            np.array(LABELS)[rng.choice(4, n, p=[0.3, 0.3, 0.2, 0.2])],
        ),
    }


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _summarise_strings(values: np.ndarray) -> ReferenceSummary:
    """Categorical summary of a string array (its conversion to a list timed with it)."""
    return summarise_categorical(values.tolist())


def bench_drift(data: dict[str, tuple[np.ndarray, np.ndarray]]) -> list[dict[str, Any]]:
    rows = []
    for name, (ref, cur) in data.items():
        categorical = ref.dtype.kind in "US"
        if categorical:
            summary, build_s = timed(partial(_summarise_strings, ref))
            current: Any = cur.tolist()
        else:
            summary, build_s = timed(partial(summarise_numeric, ref))
            current = cur
        result, test_s = timed(partial(drift, summary, current))
        rows.append(
            {
                "feature": name,
                "method": result.method,
                "statistic": result.statistic,
                "drifted": result.drifted,
                "summary_s": build_s,
                "test_s": test_s,
            }
        )
    return rows


def bench_evidently(data: dict[str, tuple[np.ndarray, np.ndarray]], folder: Path) -> dict[str, Any] | str:
    if not EVIDENTLY_PY.exists():
        return "absent (run benchmarks/peers/evidently.sh)"
    for name, (ref, cur) in data.items():
        np.save(folder / f"{name}.ref.npy", ref)
        np.save(folder / f"{name}.cur.npy", cur)
    script = Path(__file__).with_name("peers") / "evidently_drift.py"
    done = subprocess.run(
        [str(EVIDENTLY_PY), str(script), str(folder), *data], capture_output=True, text=True, timeout=3600
    )
    if done.returncode != 0:
        return f"failed: {done.stderr.strip().splitlines()[-1] if done.stderr else done.returncode}"
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def monitor_specs() -> list[MonitorSpec]:
    specs: list[dict[str, Any]] = []
    filters = [
        {},
        {"model": "gpt-4o-mini"},
        {"model": "llama-3.1-8b"},
        {"environment": "prod"},
        {"release": "r1"},
    ]
    metrics = [
        "error_rate",
        "latency_p99_ms",
        "request_rate",
        "cost_usd",
        "ttft_p90_ms",
        "latency_p50_ms",
        "output_tokens",
        "requests",
    ]
    for i in range(40):
        specs.append(
            {
                "name": f"metric-{i}",
                "kind": "metric",
                "metric": metrics[i % len(metrics)],
                "filter": filters[i % len(filters)],
                "window": "1h",
                "condition": {"op": ">", "alert": 1e12},
            }
        )
    features = [
        "latency_ms",
        "input_tokens",
        "output_tokens",
        "model",
        "finish_reason",
        "response_length",
        "ttft_ms",
        "cost_usd",
    ]
    for i in range(25):
        specs.append(
            {
                "name": f"drift-{i}",
                "kind": "drift",
                "feature": features[i % len(features)],
                "filter": filters[i % 3],
                "window": "1h",
                "reference": {"duration": "22h", "offset": "1h", "refresh": "1h"},
            }
        )
    for i in range(25):
        specs.append(
            {
                "name": f"anomaly-{i}",
                "kind": "anomaly",
                "metric": metrics[i % 4],
                "filter": filters[i % len(filters)],
                "window": "1h",
                "bucket": "1h",
                "reference": {"duration": "23h"},
                "anomaly_method": "robust_z" if i % 2 else "ewma",
            }
        )
    for i in range(10):
        specs.append(
            {
                "name": f"quality-{i}",
                "kind": "quality",
                "score": "intent",
                "statistic": ["accuracy", "macro_f1", "f1:refund", "recall:billing"][i % 4],
                "window": "24h",
                "condition": {"op": "<", "alert": 0.5},
            }
        )
    return [MonitorSpec.model_validate(s) for s in specs]


def fill_store(url: str, n_spans: int) -> tuple[Engine, int, int, float]:
    """A store of ``n_spans`` LLM calls over the 24 hours before ``now`` and 5,000 labels.

    Returns the engine, the project id, ``now`` (the next full hour) and the fill seconds.
    """
    engine = make_engine(url, sqlite_synchronous="NORMAL")
    upgrade(engine)
    project_id = ProjectRepository(engine).get_or_create("bench-monitoring").id
    now = (time.time_ns() // HOUR + 1) * HOUR
    chunk = 100_000
    started = time.perf_counter()
    for i in range(0, n_spans, chunk):
        part = min(chunk, n_spans - i)
        span = (24 * HOUR * part) // n_spans
        lo = now - 24 * HOUR + (24 * HOUR * i) // n_spans
        write(engine, generate(project_id, part, lo, lo + span, Traffic(with_payloads=True), seed=i))
    fill_s = time.perf_counter() - started
    with engine.begin() as conn:
        from sqlalchemy import insert

        from watchkeep.store.tables import scores

        rng = np.random.default_rng(0)
        rows = []
        for j in range(5000):
            actual = LABELS[j % 4]
            rows.append(
                {
                    "project_id": project_id,
                    "trace_id": f"{j:032x}",
                    "name": "intent",
                    "data_type": "categorical",
                    "string_value": actual if rng.random() < 0.8 else LABELS[(j + 1) % 4],
                    "label": actual,
                    "source": "human",
                    "created_at_unix_nano": now - HOUR,
                }
            )
        conn.execute(insert(scores), rows)
    from sqlalchemy import text

    if url.startswith("postgresql"):
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    else:  # what the server's StoreMaintenance thread does continuously
        with engine.connect() as conn:
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            conn.execute(text("ANALYZE"))
            conn.commit()
    return engine, project_id, now, fill_s


def bench_monitors(url: str, n_spans: int, budget: bool = True) -> dict[str, Any]:
    engine, project_id, now, fill_s = fill_store(url, n_spans)
    monitoring = build_monitoring(engine, CollectorRegistry())
    for spec in monitor_specs():
        monitoring.monitors.upsert(project_id, spec)
    worker = monitoring.worker
    if not budget:
        worker.reference_budget_s = float("inf")  # the unbounded cold pass, for comparison
    cold, cold_s = timed(lambda: worker.run_once(now))
    catch_up: list[float] = []
    evaluated, deferred = cold.evaluated, cold.deferred
    while deferred and len(catch_up) < 100:  # the deferred drift monitors, one tick later each
        step, seconds = timed(partial(worker.run_once, now + (len(catch_up) + 1) * NS))
        catch_up.append(seconds)
        evaluated, deferred = evaluated + step.evaluated, step.deferred
    warm, warm_s = timed(lambda: worker.run_once(now + (61 + len(catch_up)) * NS))
    worker.stop()
    restarted = build_monitoring(engine, CollectorRegistry()).worker  # a fresh process's worker
    after, restart_s = timed(lambda: restarted.run_once(now + (122 + len(catch_up)) * NS))
    restarted.stop()
    engine.dispose()
    return {
        "spans": n_spans,
        "fill_s": fill_s,
        "monitors": len(monitor_specs()),
        "cold_evaluated": cold.evaluated,
        "cold_deferred": cold.deferred,
        "cold_s": cold_s,
        "catch_up_s": catch_up,
        "evaluated_by_catch_up": evaluated,
        "warm_evaluated": warm.evaluated,
        "warm_s": warm_s,
        "restart_evaluated": after.evaluated,
        "restart_deferred": after.deferred,
        "restart_s": restart_s,
        "cache_hits": warm.cache_hits,
        "states": warm.states,
    }


def print_monitors(result: dict[str, Any], db: str) -> None:
    print(f"\nMonitors over {result['spans']:,} stored spans ({db}; fill {result['fill_s']:.1f} s)")
    n = result["monitors"]
    catch_up = result["catch_up_s"]
    rows = [
        (
            f"cold first pass ({result['cold_evaluated']} evaluated, {result['cold_deferred']} left due)",
            result["cold_s"],
        ),
        *(
            (f"catch-up pass {i + 1} (references and series filling in)", seconds)
            for i, seconds in enumerate(catch_up)
        ),
        (f"warm pass ({result['warm_evaluated']} evaluated, references cached)", result["warm_s"]),
        (
            f"restarted worker's first pass ({result['restart_evaluated']} evaluated, "
            f"{result['restart_deferred']} left due)",
            result["restart_s"],
        ),
    ]
    for label, seconds in rows:
        ok = "ok" if seconds <= PASS_TARGET_S else "MISSED"
        print(f"  {label:<62} {seconds:7.2f} s   target <= {PASS_TARGET_S} s {ok}")
    print(
        f"  all {n} monitors evaluated after {len(catch_up)} catch-up pass(es) "
        f"({result['evaluated_by_catch_up']} evaluations); "
        f"window queries shared within the warm pass: {result['cache_hits']}; states: {result['states']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--values", type=int, default=1_000_000, help="values per feature for drift")
    parser.add_argument("--spans", type=int, default=1_000_000, help="stored spans for the monitor pass")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parts = ["drift", "monitors", "peer"]
    parser.add_argument("--skip", choices=parts, action="append", default=[])
    parser.add_argument("--only", choices=parts, help="run just this part (overrides --skip)")
    parser.add_argument(
        "--no-budget", action="store_true", help="cold pass summarises every reference at once"
    )
    args = parser.parse_args()
    if args.only:
        args.skip = [p for p in parts if p != args.only]
    data = feature_data(args.values) if {"drift", "peer"} - set(args.skip) else {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if "drift" not in args.skip:
            print(f"\nDrift, {args.values:,} reference and {args.values:,} current values per feature")
            print(
                f"{'feature':<17}{'test':<15}{'statistic':>10}  drift  {'summary s':>9}  {'test s':>7}  target"
            )
            for r in bench_drift(data):
                ok = "ok" if r["test_s"] <= DRIFT_TARGET_S else "MISSED"
                print(
                    f"{r['feature']:<17}{r['method']:<15}{r['statistic']:>10.4f}  {r['drifted']!s:<5}  "
                    f"{r['summary_s']:>9.3f}  {r['test_s']:>7.3f}  <= {DRIFT_TARGET_S} s {ok}"
                )
        if "peer" not in args.skip:
            peer = bench_evidently(data, folder)
            print("\nEvidently (peer, own venv, same data, pandas DataFrames)")
            if isinstance(peer, str):
                print(f"  {peer}")
            else:
                print(f"  evidently {peer['version']}")
                for name, r in peer["features"].items():
                    method = str(r["method"])[:30]
                    print(
                        f"  {name:<17}{method:<31}{r['statistic']:>8.4f}  {r['drifted']!s:<5}  {r['seconds']:>7.3f} s"
                    )
        if "monitors" not in args.skip:
            budget = not args.no_budget
            if args.db == "postgres":
                pg = TempPostgres().start()
                try:
                    result = bench_monitors(pg.create_database("bench_monitoring"), args.spans, budget)
                finally:
                    pg.stop()
            else:
                result = bench_monitors(f"sqlite:///{folder / 'monitoring.db'}", args.spans, budget)
            print_monitors(result, args.db)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
