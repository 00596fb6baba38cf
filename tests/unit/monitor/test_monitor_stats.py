"""Quality statistics agree with textbook values and with scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_recall_fscore_support

from watchkeep.monitor.quality import summarise
from watchkeep.monitor.stats import classification_report, clopper_pearson, f1_interval, mean_interval, wilson


def test_wilson_interval_matches_the_textbook_example() -> None:
    # 81 successes in 263 trials: Wilson 95 % interval (0.2553, 0.3662).
    est = wilson(81, 263)
    assert est.value == pytest.approx(81 / 263)
    assert est.low == pytest.approx(0.2553, abs=1e-3)
    assert est.high == pytest.approx(0.3662, abs=1e-3)
    assert wilson(0, 10).low == 0.0
    assert wilson(0, 0).value is None


def test_classification_report_agrees_with_sklearn() -> None:
    rng = np.random.default_rng(3)
    truth = rng.choice(["cat", "dog", "eel"], 400).tolist()
    pred = [t if rng.random() < 0.7 else str(rng.choice(["cat", "dog", "eel"])) for t in truth]
    report = classification_report(truth, pred)
    p, r, f, support = precision_recall_fscore_support(truth, pred, labels=report.labels, zero_division=0)
    for i, cls in enumerate(report.per_class):
        assert cls.precision.value == pytest.approx(p[i])
        assert cls.recall.value == pytest.approx(r[i])
        assert cls.f1.value == pytest.approx(f[i])
        assert cls.support == support[i]
        assert cls.f1.low is not None
        assert cls.f1.high is not None
        assert cls.f1.value is not None
        assert cls.f1.low <= cls.f1.value <= cls.f1.high
    assert report.macro_f1.value == pytest.approx(f1_score(truth, pred, average="macro"))
    assert report.micro_f1.value == pytest.approx(f1_score(truth, pred, average="micro"))
    assert report.accuracy.n == 400
    assert sum(map(sum, report.confusion)) == 400
    assert report.confusion[0][0] == sum(t == p == "cat" for t, p in zip(truth, pred, strict=True))


def test_mean_interval_covers_the_true_mean() -> None:
    rng = np.random.default_rng(1)
    est = mean_interval(rng.normal(5.0, 2.0, 500))
    assert est.low is not None
    assert est.high is not None
    assert est.low < 5.0 < est.high
    assert est.n == 500


def test_summarise_reads_each_data_type() -> None:
    categorical = [("categorical", None, "pos", "pos"), ("categorical", None, "neg", "pos")]
    report = summarise("s", categorical)
    assert report.classification is not None
    assert report.value("accuracy").value == 0.5  # type: ignore[union-attr]
    assert report.value("recall:pos").value == 0.5  # type: ignore[union-attr]
    thumbs = summarise("t", [("boolean", 1.0, None, None)] * 3 + [("boolean", 0.0, None, None)])
    assert thumbs.rate is not None
    assert thumbs.rate.value == 0.75
    numeric = summarise("n", [("numeric", 2.0, None, None), ("numeric", 4.0, None, None)])
    assert numeric.mean is not None
    assert numeric.mean.value == 3.0


def test_clopper_pearson_matches_the_textbook_values() -> None:
    low, high = clopper_pearson(np.array([0, 3, 81]), np.array([10, 3, 263]))
    assert low[0] == 0.0
    assert high[0] == pytest.approx(1 - 0.025 ** (1 / 10))
    assert low[1] == pytest.approx(0.025 ** (1 / 3))
    assert high[1] == 1.0
    assert low[2] == pytest.approx(0.2527, abs=1e-3)
    assert high[2] == pytest.approx(0.3676, abs=1e-3)
    empty_low, empty_high = clopper_pearson(np.array([0]), np.array([0]))
    assert np.isnan(empty_low[0])
    assert np.isnan(empty_high[0])


def test_f1_interval_of_a_perfect_small_sample_is_not_degenerate() -> None:
    # make up's case: 6 labelled scores, all correct. A bootstrap gave F1 [1.0, 1.0].
    truth = ["neg", "pos", "neg", "pos", "pos", "neg"]
    report = classification_report(truth, truth)
    for cls in report.per_class:
        assert cls.f1.value == 1.0
        assert cls.f1.high == 1.0
        assert cls.f1.low is not None
        assert cls.precision.low is not None
        # F1 = 2J/(1+J) >= J: a little above the precision/recall bound of 0.44, far below 1.
        assert cls.f1.low == pytest.approx(0.4525, abs=1e-3)
        assert cls.precision.low < cls.f1.low < 0.6
    assert report.macro_f1.low == pytest.approx(0.4525, abs=1e-3)
    assert report.macro_f1.high == 1.0
    one_class = classification_report(["pos"] * 6, ["pos"] * 6).per_class[0].f1
    assert one_class.low is not None
    assert 0.6 < one_class.low < 0.75


def test_report_f1_bounds_are_the_f1_interval_of_its_counts() -> None:
    rng = np.random.default_rng(5)
    truth = rng.choice(["a", "b", "c"], 60).tolist()
    pred = [t if rng.random() < 0.6 else str(rng.choice(["a", "b", "c"])) for t in truth]
    report = classification_report(truth, pred, confidence=0.9)
    cm = np.array(report.confusion)
    tp = np.diag(cm)
    low, high = f1_interval(tp, cm.sum(axis=0) - tp, cm.sum(axis=1) - tp, 0.9)
    for i, cls in enumerate(report.per_class):
        assert cls.f1.low == pytest.approx(low[i])
        assert cls.f1.high == pytest.approx(high[i])
        assert cls.f1.method == "clopper-pearson"
    assert report.macro_f1.low == pytest.approx(low.mean())
    assert report.macro_f1.high == pytest.approx(high.mean())


def _binary_cells(prevalence: float, f1: float) -> np.ndarray:
    """Cell probabilities (TP, FN, FP, TN) of a classifier with one error rate e on both
    classes, chosen so that the positive class has the given F1."""
    error = 2 * prevalence * (1 - f1) / (f1 + 2 * prevalence * (1 - f1))
    pos, neg = prevalence, 1 - prevalence
    return np.array([pos * (1 - error), pos * error, neg * error, neg * (1 - error)])


def _f1_of(tp: np.ndarray | float, fp: np.ndarray | float, fn: np.ndarray | float) -> np.ndarray:
    return np.asarray(2 * np.asarray(tp) / (2 * np.asarray(tp) + fp + fn))


@pytest.mark.parametrize("prevalence", [0.5, 0.3])
def test_f1_interval_keeps_nominal_coverage_from_5_to_500_samples(prevalence: float) -> None:
    """Nominal 95 % covers the true F1 at least 93 % of the time at every n and true F1.

    Samples where F1 is undefined (no TP, FP or FN: the class never appears) carry no
    interval and are left out; 4,000 replications per cell put the Monte Carlo standard
    error near 0.35 points, and the interval's true coverage is at least 95 %.
    """
    rng = np.random.default_rng(12)
    reps = 4000
    for n in (5, 10, 30, 100, 500):
        for true_f1 in (0.5, 0.7, 0.9, 1.0):
            cells = _binary_cells(prevalence, true_f1)
            # The negative class's F1 (its TP is TN, its FP is FN, its FN is FP).
            true_neg_f1 = float(_f1_of(cells[3], cells[1], cells[2]))
            assert float(_f1_of(cells[0], cells[2], cells[1])) == pytest.approx(true_f1)
            tp, fn, fp, tn = rng.multinomial(n, cells, size=reps).T
            low, high = f1_interval(tp, fp, fn)
            defined = ~np.isnan(low)
            covered = (low[defined] <= true_f1 + 1e-12) & (high[defined] >= true_f1 - 1e-12)
            assert covered.mean() >= 0.93, (n, true_f1, covered.mean())
            # Macro F1 (mean of the per-class bounds) over samples where both are defined.
            neg_low, neg_high = f1_interval(tn, fn, fp)
            both = defined & ~np.isnan(neg_low)
            macro_true = (true_f1 + true_neg_f1) / 2
            macro_low = (low + neg_low)[both] / 2
            macro_high = (high + neg_high)[both] / 2
            macro_covered = (macro_low <= macro_true + 1e-12) & (macro_high >= macro_true - 1e-12)
            assert macro_covered.mean() >= 0.93, (n, true_f1, macro_covered.mean())
