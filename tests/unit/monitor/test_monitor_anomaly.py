"""Anomaly detection flags spikes and shifts, not ordinary noise."""

from __future__ import annotations

import numpy as np

from watchkeep.monitor.anomaly import MIN_THRESHOLD, detect


def test_robust_z_flags_a_spike_despite_outliers_in_the_reference() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(100, 5, 300)
    ref[::50] = 400  # a few past incidents must not widen the band much
    result = detect(ref, [101, 99, 180], "robust_z")
    assert result.anomalous
    assert result.flagged == [2]
    assert not detect(ref, [101, 99, 104], "robust_z").anomalous


def test_ewma_catches_a_small_sustained_shift_a_point_test_misses() -> None:
    rng = np.random.default_rng(1)
    ref = rng.normal(0.02, 0.004, 500)  # an error rate per bucket
    shifted = rng.normal(0.0275, 0.004, 12)
    assert detect(ref, shifted, "ewma").anomalous
    assert not detect(ref, rng.normal(0.02, 0.004, 12), "ewma").anomalous


def test_thresholds_are_learnt_from_the_reference() -> None:
    rng = np.random.default_rng(2)
    heavy = rng.standard_t(2, 2000)
    assert detect(heavy, [0.0], "robust_z").threshold > MIN_THRESHOLD
    assert detect(rng.normal(size=2000), [0.0], "robust_z").threshold == MIN_THRESHOLD


def test_null_series_rarely_alarm() -> None:
    rng = np.random.default_rng(3)
    alarms = sum(detect(rng.normal(size=288), rng.normal(size=1), "robust_z").anomalous for _ in range(300))
    assert alarms / 300 <= 0.05


def test_missing_buckets_and_short_references_mean_no_verdict() -> None:
    result = detect([1.0, None], [5.0], "robust_z")
    assert not result.anomalous
    assert np.isnan(result.score)
