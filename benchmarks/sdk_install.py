"""What an application pays for the SDK: installed size and import time, against peers.

Each SDK goes into its own fresh venv under ``.bench/`` (no system site-packages):
watchkeep's wheel built from this checkout without extras, ``langfuse`` and
``arize-phoenix-otel`` from the package index. Size is what the install adds to an
empty venv's site-packages; import time is the median over fresh processes of the wall
time of ``python -c "import X"`` and of ``-X importtime``'s cumulative figure for X.

    python benchmarks/sdk_install.py [--runs 5] [--reinstall]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import time
import venv
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / ".bench"


@dataclass(frozen=True)
class Peer:
    name: str
    requirement: str  # what pip installs; "" for this checkout's wheel
    modules: tuple[str, ...]  # imported in turn, each measured


PEERS = (
    Peer("watchkeep", "", ("watchkeep", "watchkeep.sdk")),
    Peer("langfuse", "langfuse", ("langfuse",)),
    Peer("arize-phoenix-otel", "arize-phoenix-otel", ("phoenix.otel",)),
)


def site_packages(env: Path) -> Path:
    (found,) = env.glob("lib/python*/site-packages")
    return found


def tree_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def pip(env: Path, *args: str) -> None:
    subprocess.run([str(env / "bin" / "python"), "-m", "pip", "-q", *args], check=True)


def fresh_venv(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(path)


def build_wheel() -> Path:
    out = BENCH / "wheel"
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)], check=True
    )
    (wheel,) = out.glob("watchkeep-*.whl")
    return wheel


def install(peer: Peer, reinstall: bool) -> Path:
    env = BENCH / f"sdk-{peer.name}"
    if reinstall or not (env / "bin" / "python").exists():
        fresh_venv(env)
        pip(env, "install", peer.requirement or str(build_wheel()))
    elif not peer.requirement:
        pip(env, "install", "--force-reinstall", "--no-deps", str(build_wheel()))
    return env


def import_times(env: Path, module: str, runs: int) -> tuple[float, float]:
    """Median wall ms of a fresh ``import module`` and median ``-X importtime`` cumulative ms."""
    python = str(env / "bin" / "python")
    subprocess.run([python, "-c", f"import {module}"], check=True)  # warm the bytecode cache
    walls: list[float] = []
    cumulative: list[float] = []
    pattern = re.compile(rf"import time:\s+\d+ \|\s+(\d+) \| {re.escape(module)}$", re.M)
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([python, "-c", f"import {module}"], check=True)
        walls.append((time.perf_counter() - start) * 1000)
        traced = subprocess.run(
            [python, "-X", "importtime", "-c", f"import {module}"], capture_output=True, text=True, check=True
        )
        found = pattern.findall(traced.stderr)
        cumulative.append(int(found[-1]) / 1000 if found else float("nan"))
    return statistics.median(walls), statistics.median(cumulative)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--reinstall", action="store_true", help="rebuild every venv from scratch")
    args = parser.parse_args()
    BENCH.mkdir(exist_ok=True)
    empty = BENCH / "sdk-empty"
    fresh_venv(empty)
    baseline = tree_bytes(site_packages(empty))
    bare_ms = statistics.median(_bare_start(empty) for _ in range(args.runs))
    print(f"\nSDK install cost ({args.runs} fresh processes each; bare interpreter start {bare_ms:.0f} ms)\n")
    print(f"{'package':<20} {'import':<16} {'installed MB':>12} {'import wall ms':>15} {'importtime ms':>14}")
    for peer in PEERS:
        env = install(peer, args.reinstall)
        size_mb = (tree_bytes(site_packages(env)) - baseline) / 1e6
        for i, module in enumerate(peer.modules):
            wall, cumulative = import_times(env, module, args.runs)
            size = f"{size_mb:12.1f}" if i == 0 else " " * 12
            label = peer.name if i == 0 else ""
            print(f"{label:<20} {module:<16} {size} {wall:15.0f} {cumulative:14.0f}")
    print("\ninstalled MB: site-packages minus an empty venv's; wall ms includes interpreter start.")


def _bare_start(env: Path) -> float:
    start = time.perf_counter()
    subprocess.run([str(env / "bin" / "python"), "-c", "pass"], check=True)
    return (time.perf_counter() - start) * 1000


if __name__ == "__main__":
    main()
