"""How many decode worker processes a server starts by default (issue 17)."""

from __future__ import annotations

import pytest

from watchkeep.ingest.decode_pool import default_workers


@pytest.mark.parametrize(
    ("cores", "workers"),
    [(1, 0), (2, 2), (3, 3), (4, 4), (16, 4)],
)
def test_one_worker_a_core_at_most_four_none_on_one_core(cores: int, workers: int) -> None:
    assert default_workers(cores) == workers


def test_defaults_to_this_machines_cores() -> None:
    assert 0 <= default_workers() <= 4
