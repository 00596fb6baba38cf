"""The gateway benchmark compares two targets slice by slice (``benchmarks/load_client``)."""

from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture(scope="module")
def load_client() -> ModuleType:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    try:
        return importlib.import_module("load_client")
    finally:
        sys.path.pop(0)


def test_the_gap_is_taken_between_the_same_slices(load_client: ModuleType) -> None:
    # Slice i of both targets runs in the same second; the machine drifts between slices.
    drift = [0.0, 5.0, 1.0, 9.0, 2.0]
    run = load_client.Result(
        [d + 1.3 + j * 0.01 for d in drift for j in range(3)], slice_starts=[0, 3, 6, 9, 12]
    )
    other = load_client.Result([d + 1.0 for d in drift for _ in range(5)], slice_starts=[0, 5, 10, 15, 20])
    assert run.slice_pcts(0.5) == pytest.approx([d + 1.31 for d in drift])
    gap = load_client.slice_gap(run, other)
    assert gap.value == pytest.approx(0.31)  # the drift cancels slice by slice
    assert gap.n == 5
    assert gap.low <= gap.value <= gap.high


def test_slices_with_errors_alone_are_left_out(load_client: ModuleType) -> None:
    other = load_client.Result([1.0, 1.0, 1.0], slice_starts=[0, 1, 2])
    run = load_client.Result([2.0, 3.0], slice_starts=[0, 1, 2])  # the last slice answered nothing
    assert load_client.slice_gap(run, other).n == 2
    silent = load_client.Result([], slice_starts=[0, 0, 0])
    assert math.isnan(load_client.slice_gap(silent, other).value)
