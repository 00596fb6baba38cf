"""The collector tuning of server processes: applied where asked, and only there."""

from __future__ import annotations

import gc
import subprocess
import sys

from watchkeep.ingest.decode_pool import DecodePool

PROBE = (
    "import gc, sys; from watchkeep.gc_tuning import tune_for_throughput; "
    "tune_for_throughput(int(sys.argv[1])); print(gc.get_threshold()[0], gc.get_freeze_count())"
)


def probe(threshold: int) -> tuple[int, int]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(threshold)], check=True, capture_output=True, text=True
    )
    young, frozen = out.stdout.split()
    return int(young), int(frozen)


def test_tuning_freezes_start_up_objects_and_raises_the_young_threshold() -> None:
    young, frozen = probe(40_000)
    assert young == 40_000
    assert frozen > 1_000  # the interpreter's and watchkeep's modules


def test_zero_leaves_cpythons_defaults() -> None:
    assert probe(0) == (gc.get_threshold()[0], 0)


def test_decode_workers_run_with_the_configured_threshold() -> None:
    pool = DecodePool(1, None, young_threshold=12_345)
    try:
        assert pool._pool is not None
        assert pool._pool.submit(gc.get_threshold).result(timeout=60)[0] == 12_345
        assert pool._pool.submit(gc.get_freeze_count).result(timeout=60) > 0
    finally:
        pool.close()
    assert gc.get_freeze_count() == 0  # never in the process that made the pool
