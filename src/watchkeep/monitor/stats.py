"""Quality statistics with their uncertainty: every rate comes with n and an interval.

Rates of counts use the Wilson score interval (good coverage even near 0 and 1, where
the normal approximation fails). F1 is not a simple proportion, but it is a monotone
function of one: F1 = 2J / (1 + J) with J = TP / (TP + FP + FN), and given TP + FP + FN,
TP is binomial in J. So F1's interval is the Clopper-Pearson interval of J mapped
through that function: at least nominal coverage at every n, never degenerate on a
perfect small sample (a bootstrap of one collapses to a point). Means use Student's t.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as sps
from sklearn.metrics import confusion_matrix

DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True, slots=True)
class Estimate:
    """A point estimate with its interval and the sample size behind it."""

    value: float | None
    low: float | None
    high: float | None
    n: int
    method: str


@dataclass(frozen=True, slots=True)
class ClassMetrics:
    """Precision, recall and F1 of one class (one-vs-rest) and its support."""

    label: str
    precision: Estimate
    recall: Estimate
    f1: Estimate
    support: int


@dataclass(frozen=True, slots=True)
class ClassificationReport:
    """Everything a team asks of labelled feedback, each figure with its interval."""

    n: int
    labels: list[str]
    confusion: list[list[int]]  # rows: true label, columns: predicted label
    accuracy: Estimate
    per_class: list[ClassMetrics]
    macro_precision: Estimate
    macro_recall: Estimate
    macro_f1: Estimate
    micro_f1: Estimate  # equals accuracy for single-label classification
    extra: dict[str, float] = field(default_factory=dict)


def wilson(successes: int, n: int, confidence: float = DEFAULT_CONFIDENCE) -> Estimate:
    """The Wilson score interval of ``successes`` out of ``n``."""
    if n <= 0:
        return Estimate(None, None, None, 0, "wilson")
    z = float(sps.norm.ppf(0.5 + confidence / 2))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Estimate(p, max(0.0, float(centre - half)), min(1.0, float(centre + half)), n, "wilson")


def mean_interval(values: Sequence[float] | np.ndarray, confidence: float = DEFAULT_CONFIDENCE) -> Estimate:
    """The mean of ``values`` with a Student-t interval."""
    x = np.asarray(values, dtype=float)
    n = int(x.size)
    if n == 0:
        return Estimate(None, None, None, 0, "t")
    mean = float(x.mean())
    if n == 1:
        return Estimate(mean, None, None, 1, "t")
    half = float(sps.t.ppf(0.5 + confidence / 2, n - 1) * x.std(ddof=1) / np.sqrt(n))
    return Estimate(mean, mean - half, mean + half, n, "t")


def _prf(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall, F1 from a confusion matrix (0 where undefined)."""
    tp = np.diag(cm).astype(float)
    predicted = cm.sum(axis=0).astype(float)
    actual = cm.sum(axis=1).astype(float)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(tp), where=both > 0)
    return precision, recall, f1


def clopper_pearson(
    successes: np.ndarray, trials: np.ndarray, confidence: float = DEFAULT_CONFIDENCE
) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper-Pearson) binomial bounds, elementwise; NaN where ``trials`` is 0."""
    s = np.asarray(successes, dtype=float)
    m = np.asarray(trials, dtype=float)
    alpha = (1 - confidence) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(s > 0, sps.beta.ppf(alpha, s, m - s + 1), 0.0)
        high = np.where(s < m, sps.beta.ppf(1 - alpha, s + 1, m - s), 1.0)
    empty = m <= 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def f1_interval(
    tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, confidence: float = DEFAULT_CONFIDENCE
) -> tuple[np.ndarray, np.ndarray]:
    """F1 bounds, elementwise: Clopper-Pearson on J = TP/(TP+FP+FN) mapped by 2J/(1+J).

    The map is increasing, so the bounds keep J's coverage (at least ``confidence``
    conditionally on TP+FP+FN, hence overall). NaN where TP+FP+FN is 0 (F1 undefined).
    """
    t = np.asarray(tp)
    low, high = clopper_pearson(t, t + np.asarray(fp) + np.asarray(fn), confidence)
    return 2 * low / (1 + low), 2 * high / (1 + high)


def classification_report(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    *,
    confidence: float = DEFAULT_CONFIDENCE,
) -> ClassificationReport:
    """Accuracy, per-class/macro/micro precision-recall-F1 and the confusion matrix."""
    if len(y_true) != len(y_pred):
        raise ValueError("y_true and y_pred differ in length")
    labels = sorted(set(y_true) | set(y_pred))
    k = len(labels)
    n = len(y_true)
    index = {label: i for i, label in enumerate(labels)}
    t = np.fromiter((index[v] for v in y_true), dtype=np.int64, count=n)
    p = np.fromiter((index[v] for v in y_pred), dtype=np.int64, count=n)
    if k == 1:  # one class: every prediction is right (scikit-learn warns on this shape)
        cm = np.array([[n]], dtype=np.int64)
    else:
        cm = confusion_matrix(t, p, labels=list(range(k))) if n else np.zeros((k, k), dtype=np.int64)
    tp = np.diag(cm)
    predicted = cm.sum(axis=0)
    actual = cm.sum(axis=1)
    precision, recall, f1 = _prf(cm)
    f1_low, f1_high = f1_interval(tp, predicted - tp, actual - tp, confidence)
    per_class = [
        ClassMetrics(
            label=label,
            precision=wilson(int(tp[i]), int(predicted[i]), confidence),
            recall=wilson(int(tp[i]), int(actual[i]), confidence),
            f1=Estimate(float(f1[i]), _num(f1_low[i]), _num(f1_high[i]), n, "clopper-pearson"),
            support=int(actual[i]),
        )
        for i, label in enumerate(labels)
    ]
    accuracy = wilson(int(tp.sum()), n, confidence)
    return ClassificationReport(
        n=n,
        labels=labels,
        confusion=cm.astype(int).tolist(),
        accuracy=accuracy,
        per_class=per_class,
        macro_precision=_macro(precision, per_class, "precision", "wilson-mean"),
        macro_recall=_macro(recall, per_class, "recall", "wilson-mean"),
        macro_f1=_macro(f1, per_class, "f1", "clopper-pearson-mean"),
        micro_f1=Estimate(accuracy.value, accuracy.low, accuracy.high, n, "wilson"),
    )


def _num(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def _macro(values: np.ndarray, per_class: list[ClassMetrics], which: str, method: str) -> Estimate:
    """Macro average; its interval is the mean of the per-class bounds (conservative)."""
    if not per_class:
        return Estimate(None, None, None, 0, method)
    bounds = [getattr(c, which) for c in per_class]
    lows = [b.low for b in bounds if b.low is not None]
    highs = [b.high for b in bounds if b.high is not None]
    n = sum(c.support for c in per_class)
    return Estimate(
        float(values.mean()),
        float(np.mean(lows)) if lows else None,
        float(np.mean(highs)) if highs else None,
        n,
        method,
    )
