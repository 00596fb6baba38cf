"""Inter-annotator agreement of an annotation queue, each figure with n and an interval.

Two annotators: Cohen's kappa (scikit-learn's ``cohen_kappa_score`` for the estimate).
More than two: the mean pairwise Cohen's kappa and Fleiss' kappa, in the form that allows
a different number of annotators per item (observed agreement per item over its own
annotator pairs; category shares over all labels). Percent agreement is the mean share of
agreeing annotator pairs per item. Intervals are percentile bootstraps over items: items,
not labels, are the independent units. The bootstrap recomputes kappa from weighted
confusion counts in numpy (one ``bincount`` per pair and resample) because calling
scikit-learn 1,000 times per pair costs seconds; a unit test holds both to the same value.
Work is bounded by ``MAX_WORK`` (resamples x pairs x items).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import cohen_kappa_score

from watchkeep.monitor.stats import DEFAULT_CONFIDENCE, Estimate

RESAMPLES = 1000
MIN_RESAMPLES = 100
MAX_WORK = 50_000_000
MAX_PAIRS = 45  # 10 annotators; beyond, the most active ones' pairs


@dataclass(frozen=True, slots=True)
class PairKappa:
    """Cohen's kappa of two annotators over the items both labelled."""

    a: int
    b: int
    n: int
    kappa: float | None


@dataclass(frozen=True, slots=True)
class AgreementReport:
    """Agreement over the items with at least two labels (``n``)."""

    n: int
    annotators: dict[int, int]  # user id -> labels given
    percent_agreement: Estimate
    cohen_kappa: Estimate | None  # exactly two annotators
    mean_pairwise_kappa: Estimate | None  # more than two
    fleiss_kappa: Estimate | None  # more than two
    pairs: list[PairKappa]
    resamples: int


def kappa_from_confusion(confusion: np.ndarray) -> float | None:
    """Cohen's kappa of a (weighted) confusion matrix; None when chance agreement is total."""
    total = float(confusion.sum())
    if total <= 0:
        return None
    observed = float(np.trace(confusion)) / total
    expected = float(confusion.sum(axis=1) @ confusion.sum(axis=0)) / (total * total)
    if expected >= 1.0 - 1e-12:
        return None
    return (observed - expected) / (1.0 - expected)


def fleiss_from_counts(
    counts: np.ndarray, weights: np.ndarray | None = None
) -> tuple[float | None, float | None]:
    """(Fleiss' kappa, observed agreement) of an items-by-categories count matrix; items with
    fewer than two labels are ignored; ``weights`` are bootstrap multiplicities."""
    per_item = counts.sum(axis=1)
    keep = per_item >= 2
    counts, per_item = counts[keep], per_item[keep]
    w = np.ones(len(counts)) if weights is None else weights[keep]
    if w.sum() <= 0:
        return None, None
    agreeing = ((counts * (counts - 1)).sum(axis=1)) / (per_item * (per_item - 1))
    observed = float((w * agreeing).sum() / w.sum())
    shares = (w[:, None] * counts).sum(axis=0) / float((w * per_item).sum())
    expected = float((shares**2).sum())
    if expected >= 1.0 - 1e-12:
        return None, observed
    return (observed - expected) / (1.0 - expected), observed


def _interval(value: float | None, samples: list[float], n: int, confidence: float) -> Estimate:
    finite = np.array([s for s in samples if s is not None and np.isfinite(s)], dtype=float)
    if value is None or finite.size == 0:
        return Estimate(value, None, None, n, "bootstrap")
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return Estimate(value, float(min(low, value)), float(max(high, value)), n, "bootstrap")


class _Encoded:
    """Items with ≥2 labels as integer arrays: per-item category counts and per-pair label pairs."""

    def __init__(self, items: Sequence[Mapping[int, str]], categories: Sequence[str]) -> None:
        index = {c: k for k, c in enumerate(categories)}
        for labels in items:
            for label in labels.values():
                index.setdefault(label, len(index))
        self.k = len(index)
        self.items = [dict(x) for x in items if len(x) >= 2]
        self.counts = np.zeros((len(self.items), self.k), dtype=float)
        for row, labels in enumerate(self.items):
            for label in labels.values():
                self.counts[row, index[label]] += 1
        given: dict[int, int] = {}
        for labels in items:
            for user in labels:
                given[user] = given.get(user, 0) + 1
        self.annotators = given
        active = sorted(given, key=lambda u: (-given[u], u))
        pairs = list(itertools.combinations(sorted(active), 2))
        if len(pairs) > MAX_PAIRS:
            top = sorted(active[:10])
            pairs = list(itertools.combinations(top, 2))
        self.pairs: list[tuple[int, int, np.ndarray, np.ndarray, np.ndarray]] = []
        for a, b in pairs:
            rows = [r for r, labels in enumerate(self.items) if a in labels and b in labels]
            la = np.array([index[self.items[r][a]] for r in rows], dtype=np.int64)
            lb = np.array([index[self.items[r][b]] for r in rows], dtype=np.int64)
            self.pairs.append((a, b, np.array(rows, dtype=np.int64), la, lb))

    def pair_kappa(self, la: np.ndarray, lb: np.ndarray, weights: np.ndarray) -> float | None:
        confusion = np.bincount(la * self.k + lb, weights=weights, minlength=self.k * self.k)
        return kappa_from_confusion(confusion.reshape(self.k, self.k))


def agreement(
    items: Sequence[Mapping[int, str]],
    categories: Sequence[str] = (),
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
) -> AgreementReport:
    """Agreement of labelled items (each a map of annotator id to label)."""
    enc = _Encoded(items, categories)
    n = len(enc.items)
    work = max(1, n) * max(1, len(enc.pairs) + 1)
    resamples = max(MIN_RESAMPLES, min(resamples, MAX_WORK // work)) if n else 0
    pairs = [PairKappa(a, b, len(rows), _sk_kappa(la, lb)) for a, b, rows, la, lb in enc.pairs]
    fleiss, observed = fleiss_from_counts(enc.counts) if n else (None, None)
    rng = np.random.default_rng(seed)
    boot: dict[str, list[float]] = {"agree": [], "pair_mean": [], "fleiss": [], "cohen": []}
    for _ in range(resamples):
        weights = np.bincount(rng.integers(0, n, size=n), minlength=n).astype(float)
        f_kappa, f_observed = fleiss_from_counts(enc.counts, weights)
        boot["agree"].append(np.nan if f_observed is None else f_observed)
        boot["fleiss"].append(np.nan if f_kappa is None else f_kappa)
        kappas = [enc.pair_kappa(la, lb, weights[rows]) for _, _, rows, la, lb in enc.pairs]
        defined = [k for k in kappas if k is not None]
        boot["pair_mean"].append(float(np.mean(defined)) if defined else np.nan)
        boot["cohen"].append(np.nan if not kappas or kappas[0] is None else kappas[0])
    defined_pairs = [p.kappa for p in pairs if p.kappa is not None]
    many = len(enc.annotators) > 2
    mean_pairwise = float(np.mean(defined_pairs)) if defined_pairs else None
    return AgreementReport(
        n=n,
        annotators=dict(sorted(enc.annotators.items())),
        percent_agreement=_interval(observed, boot["agree"], n, confidence),
        cohen_kappa=None
        if many or not pairs
        else _interval(pairs[0].kappa, boot["cohen"], pairs[0].n, confidence),
        mean_pairwise_kappa=_interval(mean_pairwise, boot["pair_mean"], n, confidence) if many else None,
        fleiss_kappa=_interval(fleiss, boot["fleiss"], n, confidence) if many else None,
        pairs=pairs,
        resamples=resamples,
    )


def _sk_kappa(la: np.ndarray, lb: np.ndarray) -> float | None:
    """scikit-learn's Cohen's kappa; None with no items or when it is undefined (NaN)."""
    if la.size == 0 or np.unique(np.concatenate([la, lb])).size < 2:
        return None  # one category only: chance agreement is total
    value = float(cohen_kappa_score(la, lb))
    return value if np.isfinite(value) else None
