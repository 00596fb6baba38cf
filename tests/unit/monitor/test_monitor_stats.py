"""Quality statistics agree with textbook values and with scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_recall_fscore_support

from watchkeep.monitor.quality import summarise
from watchkeep.monitor.stats import classification_report, mean_interval, wilson


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
