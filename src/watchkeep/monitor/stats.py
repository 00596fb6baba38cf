"""Quality statistics with their uncertainty: every rate comes with n and an interval.

Rates of counts use the Wilson score interval (good coverage even near 0 and 1, where
the normal approximation fails); F1 is not a simple proportion, so its interval comes
from a seeded bootstrap over the labelled pairs. Means use Student's t.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as sps
from sklearn.metrics import confusion_matrix

DEFAULT_CONFIDENCE = 0.95
BOOTSTRAP_ROUNDS = 500


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


def _bootstrap_f1(
    y_true: np.ndarray, y_pred: np.ndarray, k: int, confidence: float, rounds: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap percentile intervals of per-class F1 and macro F1: arrays (k+1, 2)."""
    rng = np.random.default_rng(seed)
    n = y_true.size
    samples = np.empty((rounds, k + 1))
    for r in range(rounds):
        idx = rng.integers(0, n, n)
        cm = np.bincount(y_true[idx] * k + y_pred[idx], minlength=k * k).reshape(k, k)
        _, _, f1 = _prf(cm)
        samples[r, :k] = f1
        samples[r, k] = f1.mean()
    alpha = (1 - confidence) / 2
    bounds = np.quantile(samples, [alpha, 1 - alpha], axis=0).T
    return bounds[:k], bounds[k]


def classification_report(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    bootstrap_rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = 0,
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
    cm = confusion_matrix(t, p, labels=list(range(k))) if n else np.zeros((k, k), dtype=np.int64)
    tp = np.diag(cm)
    predicted = cm.sum(axis=0)
    actual = cm.sum(axis=1)
    precision, recall, f1 = _prf(cm)
    if n:
        f1_bounds, macro_bounds = _bootstrap_f1(t, p, k, confidence, bootstrap_rounds, seed)
    else:
        f1_bounds, macro_bounds = np.full((k, 2), np.nan), np.array([np.nan, np.nan])
    per_class = [
        ClassMetrics(
            label=label,
            precision=wilson(int(tp[i]), int(predicted[i]), confidence),
            recall=wilson(int(tp[i]), int(actual[i]), confidence),
            f1=Estimate(float(f1[i]), _num(f1_bounds[i, 0]), _num(f1_bounds[i, 1]), n, "bootstrap"),
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
        macro_precision=_macro(precision, per_class, "precision"),
        macro_recall=_macro(recall, per_class, "recall"),
        macro_f1=Estimate(
            float(f1.mean()) if k else None, _num(macro_bounds[0]), _num(macro_bounds[1]), n, "bootstrap"
        ),
        micro_f1=Estimate(accuracy.value, accuracy.low, accuracy.high, n, "wilson"),
    )


def _num(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def _macro(values: np.ndarray, per_class: list[ClassMetrics], which: str) -> Estimate:
    """Macro average; its interval is the mean of the per-class Wilson bounds (conservative)."""
    if not per_class:
        return Estimate(None, None, None, 0, "wilson-mean")
    bounds = [getattr(c, which) for c in per_class]
    lows = [b.low for b in bounds if b.low is not None]
    highs = [b.high for b in bounds if b.high is not None]
    n = sum(c.support for c in per_class)
    return Estimate(
        float(values.mean()),
        float(np.mean(lows)) if lows else None,
        float(np.mean(highs)) if highs else None,
        n,
        "wilson-mean",
    )
