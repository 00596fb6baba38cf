"""Drift scenarios with known truth: injected shifts are found, null trials stay quiet."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy.stats import binom, wasserstein_distance

from watchkeep.devtools.synthetic_calls import TOPICS
from watchkeep.monitor.drift import (
    ReferenceSummary,
    categorical_drift,
    dataset_drift,
    numeric_drift,
    summarise_categorical,
    summarise_numeric,
)
from watchkeep.monitor.embedding_drift import HashingEmbedder, domain_classifier_drift

TRIALS = 200


def test_binned_wasserstein_matches_the_exact_distance() -> None:
    rng = np.random.default_rng(0)
    ref, cur = rng.lognormal(6, 0.5, 50_000), rng.lognormal(6.1, 0.5, 50_000)
    result = numeric_drift(summarise_numeric(ref), cur, "wasserstein")
    assert result.statistic == pytest.approx(wasserstein_distance(ref, cur) / ref.std(), rel=0.03)


def test_summary_round_trips_through_json() -> None:
    summary = summarise_numeric(np.arange(5000.0))
    assert ReferenceSummary.from_json(summary.to_json()) == summary


def test_test_choice_follows_sample_size() -> None:
    ref = summarise_numeric(np.random.default_rng(0).normal(size=20_000))
    assert numeric_drift(ref, np.zeros(500)).method == "ks"
    assert numeric_drift(ref, np.zeros(5000)).method == "wasserstein"
    cats = summarise_categorical(["a", "b"] * 5000)
    assert categorical_drift(cats, ["a"] * 100).method == "chisquare"
    assert categorical_drift(cats, ["a"] * 5000).method == "jensenshannon"


@pytest.mark.parametrize("n", [300, 20_000])
def test_an_injected_length_shift_is_detected(n: int) -> None:
    rng = np.random.default_rng(1)
    ref = summarise_numeric(rng.poisson(120, 20_000))  # response length in characters
    assert numeric_drift(ref, rng.poisson(150, n)).drifted
    assert not numeric_drift(ref, rng.poisson(120, n)).drifted


@pytest.mark.parametrize("n", [300, 20_000])
def test_an_injected_label_shift_is_detected(n: int) -> None:
    rng = np.random.default_rng(2)
    labels = ["positive", "negative", "neutral"]
    ref = summarise_categorical(rng.choice(labels, 20_000, p=[0.5, 0.3, 0.2]).tolist())
    shifted = rng.choice(labels, n, p=[0.25, 0.55, 0.2]).tolist()
    assert categorical_drift(ref, shifted).drifted


def test_psi_flags_a_large_shift_only() -> None:
    rng = np.random.default_rng(4)
    ref = summarise_numeric(rng.normal(0, 1, 50_000))
    assert numeric_drift(ref, rng.normal(1, 1, 50_000), "psi").drifted
    assert not numeric_drift(ref, rng.normal(0, 1, 50_000), "psi").drifted


def _texts(rng: np.random.Generator, topic: str, n: int) -> list[str]:
    vocab = TOPICS[topic].split()
    return [" ".join(rng.choice(vocab, 12)) for _ in range(n)]


def test_a_topic_shift_is_detected_by_the_domain_classifier() -> None:
    rng = np.random.default_rng(5)
    emb = HashingEmbedder()
    ref = emb.embed(_texts(rng, "contracts", 400))
    same = emb.embed(_texts(rng, "contracts", 400))
    mixed = emb.embed(_texts(rng, "contracts", 250) + _texts(rng, "cooking", 150))
    assert domain_classifier_drift(ref, mixed).drifted
    assert not domain_classifier_drift(ref, same).drifted


def test_null_trials_keep_false_alarms_at_or_below_five_percent() -> None:
    """Reference and current drawn from one distribution: per-feature alarms of the
    distance tests, and the report-level verdict over p-value tests, stay <= 5 %."""
    rng = np.random.default_rng(6)
    labels = ["a", "b", "c", "d"]
    ref_len = summarise_numeric(rng.poisson(120, 20_000))
    ref_lat = summarise_numeric(rng.lognormal(6.5, 0.4, 20_000))
    ref_tok = summarise_numeric(rng.poisson(300, 20_000))
    ref_lab = summarise_categorical(rng.choice(labels, 20_000, p=[0.4, 0.3, 0.2, 0.1]).tolist())
    large_alarms = 0
    report_alarms = 0
    for _ in range(TRIALS):
        large = [
            numeric_drift(ref_len, rng.poisson(120, 5000)),
            numeric_drift(ref_lat, rng.lognormal(6.5, 0.4, 5000)),
            categorical_drift(ref_lab, rng.choice(labels, 5000, p=[0.4, 0.3, 0.2, 0.1]).tolist()),
        ]
        large_alarms += sum(r.drifted for r in large)
        small = [
            numeric_drift(ref_len, rng.poisson(120, 300)),
            numeric_drift(ref_lat, rng.lognormal(6.5, 0.4, 300)),
            numeric_drift(ref_tok, rng.poisson(300, 300)),
            categorical_drift(ref_lab, rng.choice(labels, 300, p=[0.4, 0.3, 0.2, 0.1]).tolist()),
        ]
        assert all(r.method in ("ks", "chisquare") for r in small)
        report_alarms += dataset_drift(small)
    assert large_alarms / (3 * TRIALS) <= 0.05
    assert report_alarms / TRIALS <= 0.05


# Null and power trials with fresh references and currents in every trial, across sizes.
# The reference sizes straddle the kept reservoir (2,000 values: tested exactly; beyond
# it, against the binned full reference). Fixed base seed: the counts are deterministic.
NULL_TRIALS = 200
ALPHA = 0.05
# One-sided 99.9 % binomial bound on one size's alarms at a true rate of 5 % (10.5 %),
# and a bound on the rate pooled over all sizes (2,400 trials: 5 % +- 0.45 %).
NULL_LIMIT = int(binom.ppf(0.999, NULL_TRIALS, ALPHA))
POOLED_LIMIT = 0.065
SIZES = [(ref_n, cur_n) for ref_n in (1500, 20_000) for cur_n in (100, 1000, 5000)]


def _null_alarms(trial: Callable[[np.random.Generator, int, int], bool], seed: int) -> list[int]:
    """Alarms per (reference, current) size, each trial on fresh seeds."""
    rng = np.random.default_rng(seed)
    return [sum(trial(rng, ref_n, cur_n) for _ in range(NULL_TRIALS)) for ref_n, cur_n in SIZES]


def _assert_null_rate(alarms: list[int]) -> None:
    assert max(alarms) <= NULL_LIMIT, alarms
    assert sum(alarms) / (NULL_TRIALS * len(alarms)) <= POOLED_LIMIT, alarms


@pytest.mark.parametrize("kind", ["continuous", "counts"])
def test_ks_null_false_alarms_hold_at_alpha_at_every_size(kind: str) -> None:
    def draw(rng: np.random.Generator, n: int) -> np.ndarray:
        if kind == "counts":
            return rng.poisson(120, n).astype(float)  # ties everywhere, as token counts have
        return rng.lognormal(6.5, 0.4, n)

    def trial(rng: np.random.Generator, ref_n: int, cur_n: int) -> bool:
        ref = summarise_numeric(draw(rng, ref_n), seed=int(rng.integers(2**31)))
        return numeric_drift(ref, draw(rng, cur_n), "ks").drifted

    _assert_null_rate(_null_alarms(trial, 7 if kind == "counts" else 8))


def test_ks_against_one_large_reference_holds_at_alpha() -> None:
    """The reported case: one 200,000-value reference, many currents of 1,000."""
    rng = np.random.default_rng(8)
    ref = summarise_numeric(rng.normal(size=200_000))
    alarms = sum(numeric_drift(ref, rng.normal(size=1000)).drifted for _ in range(NULL_TRIALS))
    assert alarms <= NULL_LIMIT


def test_ks_finds_a_fifth_of_a_standard_deviation_at_1000() -> None:
    rng = np.random.default_rng(9)
    found = 0
    for _ in range(100):
        ref = summarise_numeric(rng.normal(size=20_000), seed=int(rng.integers(2**31)))
        found += numeric_drift(ref, rng.normal(0.2, 1.0, 1000)).drifted
    assert found >= 90


SHARES = np.array([0.4, 0.3, 0.2, 0.1])
ZIPF = (1 / np.arange(1, 301)) / (1 / np.arange(1, 301)).sum()  # 300 categories, long tail


@pytest.mark.parametrize("shares", [SHARES, ZIPF], ids=["four", "zipf300"])
def test_chisquare_null_false_alarms_hold_at_alpha_at_every_size(shares: np.ndarray) -> None:
    names = np.array([f"c{i}" for i in range(shares.size)])

    def trial(rng: np.random.Generator, ref_n: int, cur_n: int) -> bool:
        ref = summarise_categorical(rng.choice(names, ref_n, p=shares).tolist())
        cur = rng.choice(names, cur_n, p=shares).tolist()
        return categorical_drift(ref, cur, "chisquare").drifted

    _assert_null_rate(_null_alarms(trial, 10 + shares.size))


def test_chisquare_finds_a_ten_point_share_move_at_500() -> None:
    rng = np.random.default_rng(11)
    names = np.array(["a", "b", "c", "d"])
    moved = np.array([0.3, 0.4, 0.2, 0.1])  # 10 points from "a" to "b"
    found = 0
    for _ in range(100):
        ref = summarise_categorical(rng.choice(names, 20_000, p=SHARES).tolist())
        found += categorical_drift(ref, rng.choice(names, 500, p=moved).tolist()).drifted
    assert found >= 90


def test_a_category_new_to_the_reference_is_drift() -> None:
    ref = summarise_categorical(["a", "b"] * 500)
    assert categorical_drift(ref, ["a", "b"] * 200 + ["c"] * 50, "chisquare").drifted


def test_the_current_folds_the_categories_the_reference_folded() -> None:
    """A long tail: the reference kept its top 200 and folded the rest; the current must
    fold the same ones, not its own top 200, or a null sample looks drifted."""
    rng = np.random.default_rng(12)
    names = np.array([f"c{i}" for i in range(300)])
    ref = summarise_categorical(rng.choice(names, 50_000, p=ZIPF).tolist())
    current = rng.choice(names, 5000, p=ZIPF).tolist()
    assert not categorical_drift(ref, current, "jensenshannon").drifted
    assert not categorical_drift(ref, current, "chisquare").drifted
