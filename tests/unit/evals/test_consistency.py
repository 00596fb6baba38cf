"""Agreement rate, pass^N and invariance over verdicts."""

from __future__ import annotations

import pytest

from tests.support.eval_results import result
from watchkeep.evals.consistency import agreement_rate, invariance, pass_hat_n
from watchkeep.evals.model import ItemResult


def _repeats(key: str, verdicts: list[bool | None]) -> list[ItemResult]:
    return [result(key, v, repeat=r) for r, v in enumerate(verdicts)]


def test_agreement_rate_counts_items_whose_repeats_agree() -> None:
    results = (
        _repeats("a", [True, True, True])
        + _repeats("b", [False, False, False])
        + _repeats("c", [True, False, True])
        + _repeats("d", [True])  # one repeat: not eligible
        + [result("p", False, family="jailbreak")]  # a probe: not an original item
    )
    est = agreement_rate(results)
    assert est.n == 3
    assert est.value == pytest.approx(2 / 3)
    assert est.method == "wilson"
    assert est.low is not None
    assert est.low < 2 / 3 < (est.high or 0)


def test_errors_are_left_out_of_agreement() -> None:
    results = _repeats("a", [True, None, True]) + _repeats("b", [None, False])
    est = agreement_rate(results)
    assert (est.n, est.value) == (1, 1.0)


def test_pass_hat_n_and_pass_at_1() -> None:
    results = (
        _repeats("a", [True, True, True, True])
        + _repeats("b", [True, False, True, True])
        + _repeats("c", [False, False, False, False])
        + _repeats("d", [True, True, None, True])  # an errored repeat: excluded
    )
    out = pass_hat_n(results)
    assert out["n"] == 3
    assert out["repeats"] == 4
    assert out["excluded"] == 1
    assert out["pass_hat_n"]["value"] == pytest.approx(1 / 3)
    assert out["pass_at_1"]["value"] == pytest.approx((1 + 0.75 + 0) / 3)
    assert out["pass_at_1"]["method"] == "t"


def test_pass_hat_n_of_nothing() -> None:
    out = pass_hat_n([])
    assert out["n"] == 0
    assert out["pass_hat_n"]["value"] is None


def test_invariance_per_kind_and_overall() -> None:
    results = [
        result("a", True),
        result("b", False),
        result("a", True, variant="typos", family="typos"),
        result("b", True, variant="typos", family="typos"),  # flipped
        result("a", True, variant="case", family="case"),
        result("b", False, variant="case", family="case"),
        result("a", None, variant="whitespace", family="whitespace"),  # errored: left out
        result("z", True, variant="case", family="case"),  # no original: left out
    ]
    out = invariance(results)
    assert set(out) == {"typos", "case", "overall"}
    assert (out["typos"].value, out["typos"].n) == (0.5, 2)
    assert (out["case"].value, out["case"].n) == (1.0, 2)
    assert (out["overall"].value, out["overall"].n) == (0.75, 4)


def test_invariance_pairs_variants_with_the_same_repeat() -> None:
    results = [
        result("a", True, repeat=0),
        result("a", False, repeat=1),
        result("a", False, repeat=1, variant="case", family="case"),
    ]
    assert invariance(results)["case"].value == 1.0
    assert invariance([result("a", True)]) == {}
