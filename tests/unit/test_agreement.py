"""Agreement statistics against hand computations and published values."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from watchkeep.monitor.agreement import agreement, fleiss_from_counts, kappa_from_confusion

# Fleiss (1971) as worked on Wikipedia: 10 items, 14 raters each, 5 categories; kappa 0.210.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def two_raters(table: dict[tuple[str, str], int]) -> list[dict[int, str]]:
    """Items labelled by annotators 1 and 2, as many of each (label1, label2) as the table says."""
    return [{1: a, 2: b} for (a, b), count in table.items() for _ in range(count)]


def test_cohen_kappa_matches_the_hand_computation() -> None:
    # po = 35/50 = 0.7; pe = 0.5 * 0.6 + 0.5 * 0.4 = 0.5; kappa = (0.7 - 0.5) / 0.5 = 0.4
    items = two_raters({("yes", "yes"): 20, ("yes", "no"): 5, ("no", "yes"): 10, ("no", "no"): 15})
    report = agreement(items, ["yes", "no"], seed=1)
    assert report.cohen_kappa is not None
    assert report.cohen_kappa.value == pytest.approx(0.4)
    assert report.cohen_kappa.n == 50
    assert report.percent_agreement.value == pytest.approx(0.7)
    assert report.mean_pairwise_kappa is None
    assert report.fleiss_kappa is None
    assert report.annotators == {1: 50, 2: 50}
    low, high = report.cohen_kappa.low, report.cohen_kappa.high
    assert low is not None
    assert high is not None
    assert low <= 0.4 <= high
    assert high - low < 0.6  # an interval, not the whole range


def test_the_bootstrap_is_seeded() -> None:
    items = two_raters({("a", "a"): 7, ("a", "b"): 3, ("b", "b"): 6, ("b", "a"): 2})
    first, again, other = (agreement(items, seed=s) for s in (5, 5, 6))
    assert first.cohen_kappa == again.cohen_kappa
    assert first.cohen_kappa != other.cohen_kappa


def test_fleiss_kappa_matches_the_published_example() -> None:
    kappa, observed = fleiss_from_counts(np.array(FLEISS_TABLE, dtype=float))
    assert kappa == pytest.approx(0.2099, abs=5e-4)
    assert observed == pytest.approx(0.3780, abs=5e-4)
    items = [
        dict(enumerate((c for c, count in enumerate(row) for _ in range(count)), start=1))
        for row in FLEISS_TABLE
    ]
    report = agreement([{u: str(c) for u, c in item.items()} for item in items], seed=0)
    assert report.fleiss_kappa is not None
    assert report.mean_pairwise_kappa is not None
    assert report.fleiss_kappa.value == pytest.approx(0.2099, abs=5e-4)
    assert report.fleiss_kappa.n == 10
    assert report.cohen_kappa is None


def test_three_annotators_mean_pairwise_kappa_is_the_mean_of_the_pairs() -> None:
    a = ["x", "x", "y", "y", "z", "x", "y", "z"]
    b = ["x", "y", "y", "y", "z", "x", "x", "z"]
    c = ["x", "x", "y", "z", "z", "y", "y", "z"]
    items = [{1: a[k], 2: b[k], 3: c[k]} for k in range(len(a))]
    report = agreement(items, ["x", "y", "z"], seed=3)
    expected = np.mean([cohen_kappa_score(a, b), cohen_kappa_score(a, c), cohen_kappa_score(b, c)])
    assert report.mean_pairwise_kappa is not None
    assert report.mean_pairwise_kappa.value == pytest.approx(expected)
    assert [(p.a, p.b, p.n) for p in report.pairs] == [(1, 2, 8), (1, 3, 8), (2, 3, 8)]
    est = report.fleiss_kappa
    assert est is not None
    assert est.low is not None
    assert est.high is not None
    assert est.value is not None
    assert est.low <= est.value <= est.high


def test_the_bootstraps_kappa_equals_scikit_learns() -> None:
    rng = np.random.default_rng(0)
    la, lb = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    lb[:120] = la[:120]
    confusion = np.bincount(la * 4 + lb, minlength=16).reshape(4, 4)
    assert kappa_from_confusion(confusion) == pytest.approx(cohen_kappa_score(la, lb))


def test_undefined_kappa_and_items_with_one_label() -> None:
    items = [{1: "a", 2: "a"}, {1: "a", 2: "a"}, {1: "b"}]
    report = agreement(items, ["a", "b"])
    assert report.n == 2
    assert report.cohen_kappa is not None
    assert report.cohen_kappa.value is None
    assert report.percent_agreement.value == 1.0
    assert report.annotators == {1: 3, 2: 2}
    empty = agreement([], ["a", "b"])
    assert empty.n == 0
    assert empty.percent_agreement.value is None
    assert empty.resamples == 0
