"""Canary analysis, measured: false rollback rate on a null candidate and time to detect a regression.

Each row is N simulated canaries (devtools/canary_sim.py, the functions canary.observe
runs): batches of 1,000 requests, 10 % to the candidate, a look after every batch, 50
looks (5,000 candidate requests), rollback at the first always-valid p <= alpha = 0.05
(min 200 requests per arm). "naive" is a one-sided z-test at the same alpha peeked at
every batch. Rates carry n and a Clopper-Pearson 95 % interval; time to detect is the
total requests served (both arms) until rollback, over the runs that rolled back.

    python benchmarks/releases.py [--runs 2000] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from watchkeep.devtools.canary_sim import Design, Outcome, simulate_lognormal_mean, simulate_proportion
from watchkeep.monitor.stats import clopper_pearson


def _rate(looks: np.ndarray) -> str:
    hits, n = int((looks >= 0).sum()), int(looks.size)
    low, high = clopper_pearson(np.array(hits), np.array(n))
    return f"{hits / n:6.1%} [{float(low):.1%}, {float(high):.1%}] n={n}"


def _detect(out: Outcome, which: str) -> str:
    requests = out.requests_to_rollback(which)
    if requests.size == 0:
        return "-"
    return f"median {np.median(requests):,.0f}, p90 {np.percentile(requests, 90):,.0f} (n={requests.size})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    design = Design(runs=args.runs)
    slow = Design(runs=max(100, args.runs // 4))  # per-request latency draws cost more
    scenarios: list[tuple[str, Callable[[], Outcome]]] = [
        ("error rate 2% -> 2% (null)", lambda: simulate_proportion(0.02, 0.02, 0.01, design, seed=args.seed)),
        (
            "error rate 10% -> 10% (null)",
            lambda: simulate_proportion(0.10, 0.10, 0.01, design, seed=args.seed + 1),
        ),
        (
            "latency mean +0% (null)",
            lambda: simulate_lognormal_mean(800, 1.0, 0.8, 80, slow, seed=args.seed + 2),
        ),
        ("error rate 2% -> 4%", lambda: simulate_proportion(0.02, 0.04, 0.01, design, seed=args.seed + 3)),
        ("error rate 2% -> 3%", lambda: simulate_proportion(0.02, 0.03, 0.01, design, seed=args.seed + 4)),
        ("latency mean +20%", lambda: simulate_lognormal_mean(800, 1.2, 0.8, 80, slow, seed=args.seed + 5)),
        ("latency mean +10%", lambda: simulate_lognormal_mean(800, 1.1, 0.8, 80, slow, seed=args.seed + 6)),
    ]
    print(
        f"canary: batches of {design.batch:,} requests, {design.split:.0%} to the candidate, {design.looks} looks, "
        f"alpha {design.alpha}, min {design.min_samples} per arm; latency lognormal mean 800 ms, sigma 0.8, "
        "tolerance 80 ms; error-rate tolerance 1 point"
    )
    header = f"{'scenario':30} {'test':6} {'rolled back (rate, 95% CI, n)':34} requests until rollback"
    print(header)
    print("-" * len(header))
    for name, run in scenarios:
        started = time.perf_counter()
        out = run()
        for which, looks in (("msprt", out.msprt), ("naive", out.naive)):
            print(f"{name:30} {which:6} {_rate(looks):34} {_detect(out, which)}")
        print(f"{'':30} ({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
