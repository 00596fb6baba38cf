"""Drift scenarios with known truth: injected shifts are found, null trials stay quiet."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import wasserstein_distance

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
