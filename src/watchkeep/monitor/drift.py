"""Drift tests between a reference summary and a current sample, chosen as Evidently does.

The reference is summarised once into a ``ReferenceSummary`` (quantile bins with counts,
moments and a small reservoir sample for numeric features; category counts for
categorical ones) that serialises to JSON, so a cached reference costs nothing to reuse
and a run only bins the current window (one ``searchsorted`` over its values).

Default test choice (``method="auto"``), after Evidently's proven defaults:
numeric — KS two-sample (p < alpha) when the smaller sample has at most 1,000 values,
otherwise Wasserstein distance normalised by the reference standard deviation (> 0.1);
categorical — chi-square goodness of fit (p < alpha) for small samples, otherwise the
Jensen-Shannon distance (> 0.1). PSI (> 0.1 moderate, > 0.25 large) is available on
request for either kind.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon

SMALL_SAMPLE = 1000
REFERENCE_BINS = 1000
PSI_BINS = 10
RESERVOIR = 2000
MAX_CATEGORIES = 200
OTHER = "__other__"
Method = Literal["auto", "ks", "wasserstein", "psi", "jensenshannon", "chisquare"]
DEFAULT_THRESHOLDS = {"wasserstein": 0.1, "jensenshannon": 0.1, "psi": 0.1, "ks": 0.05, "chisquare": 0.05}


@dataclass(slots=True)
class ReferenceSummary:
    """A reference distribution reduced to what the tests need (JSON-serialisable)."""

    kind: Literal["numeric", "categorical"]
    n: int
    edges: list[float] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    mean: float = 0.0
    std: float = 0.0
    sample: list[float] = field(default_factory=list)
    categories: dict[str, int] = field(default_factory=dict)
    discrete: bool = False

    def to_json(self) -> dict[str, Any]:
        """A plain dict for storage."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReferenceSummary:
        """The summary stored by ``to_json``."""
        return cls(**data)


@dataclass(frozen=True, slots=True)
class DriftResult:
    """One test's verdict: the statistic, its threshold and the sample sizes."""

    method: str
    statistic: float
    threshold: float
    drifted: bool
    reference_n: int
    current_n: int
    p_value: float | None = None


def summarise_numeric(values: np.ndarray, *, bins: int = REFERENCE_BINS, seed: int = 0) -> ReferenceSummary:
    """Quantile bins (edges at reference quantiles, open at both ends) and a reservoir."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return ReferenceSummary("numeric", 0)
    edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)))
    counts = _bin_counts(x, edges)
    rng = np.random.default_rng(seed)
    sample = x if x.size <= RESERVOIR else rng.choice(x, RESERVOIR, replace=False)
    return ReferenceSummary(
        "numeric",
        int(x.size),
        edges=edges.tolist(),
        counts=counts.tolist(),
        mean=float(x.mean()),
        std=float(x.std()),
        sample=np.sort(sample).tolist(),
        discrete=bool(np.all(x == np.round(x))),
    )


def summarise_categorical(values: Iterable[str | None]) -> ReferenceSummary:
    """Counts of the commonest categories; the rest folded into one ``__other__``."""
    counts = Counter("__none__" if v is None else str(v) for v in values)
    kept = dict(counts.most_common(MAX_CATEGORIES))
    rest = sum(counts.values()) - sum(kept.values())
    if rest:
        kept[OTHER] = kept.get(OTHER, 0) + rest
    return ReferenceSummary("categorical", sum(counts.values()), categories=kept)


def _bin_counts(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts in len(edges)+1 bins: below the first edge, between edges, above the last."""
    idx = np.searchsorted(edges, x, side="right")
    return np.bincount(idx, minlength=edges.size + 1)


def numeric_drift(
    ref: ReferenceSummary,
    current: np.ndarray,
    method: Method = "auto",
    threshold: float | None = None,
) -> DriftResult:
    """Compare ``current`` values with a numeric reference summary."""
    x = np.asarray(current, dtype=float)
    x = x[np.isfinite(x)]
    if method == "auto":
        method = "ks" if min(ref.n, x.size) <= SMALL_SAMPLE else "wasserstein"
    limit = DEFAULT_THRESHOLDS[method] if threshold is None else threshold
    if ref.n == 0 or x.size == 0:
        return DriftResult(method, float("nan"), limit, False, ref.n, int(x.size))
    edges = np.asarray(ref.edges)
    if method == "ks":
        stat, p = _ks(ref, x, edges)
        return DriftResult("ks", stat, limit, p < limit, ref.n, int(x.size), p)
    if method == "wasserstein":
        stat = _wasserstein_normed(ref, x, edges)
    elif method == "psi":
        stat = psi(*_coarse_bins(ref, x, edges))
    elif method == "jensenshannon":
        cur = _bin_counts(x, edges).astype(float)
        stat = float(jensenshannon(np.asarray(ref.counts, dtype=float), cur))
    else:
        raise ValueError(f"method {method!r} does not apply to numeric features")
    return DriftResult(method, stat, limit, stat > limit, ref.n, int(x.size))


def _ks(ref: ReferenceSummary, x: np.ndarray, edges: np.ndarray) -> tuple[float, float]:
    """Two-sample KS against the whole reference, not its reservoir.

    A reservoir stands for the reference only when it is the reference: testing against a
    2,000-value subsample of a large reference adds the subsample's own sampling error to
    every verdict, so a fixed reference alarmed in up to 15 % of null trials. Beyond the
    reservoir the reference CDF is read, exactly, at its quantile edges (values strictly
    below each edge, and at most the last), so the statistic is the supremum over those
    points: at most one bin's mass (0.1 %) below the full one, and exact with ties.
    The p-value is the two-sample one (effective size ``n m / (n + m)``); on grouped or
    tied data it is conservative.
    """
    if ref.n <= len(ref.sample):
        res = sps.ks_2samp(np.asarray(ref.sample), x)
        return float(res.statistic), float(res.pvalue)
    f_ref = np.cumsum(np.asarray(ref.counts, dtype=float))[:-1] / ref.n
    xs = np.sort(x)
    f_cur = np.searchsorted(xs, edges, side="left") / xs.size
    top = np.searchsorted(xs, edges[-1], side="right") / xs.size
    stat = float(max(np.max(np.abs(f_ref - f_cur)), 1.0 - top))
    en = max(round(ref.n * xs.size / (ref.n + xs.size)), 1)
    return stat, float(min(max(sps.kstwo.sf(stat, en), 0.0), 1.0))


def _wasserstein_normed(ref: ReferenceSummary, x: np.ndarray, edges: np.ndarray) -> float:
    """W1 between the binned CDFs (edges at reference quantiles), over the reference std.

    Both CDFs count values strictly below each edge, so point masses on an edge (token
    counts, lengths) match exactly; current values outside the reference range add
    their distance to the nearest edge exactly, so a shift beyond it is not under-counted.
    """
    f_ref = np.cumsum(np.asarray(ref.counts, dtype=float))[:-1] / ref.n
    f_cur = np.cumsum(_bin_counts(x, edges))[:-1] / x.size
    widths = np.diff(edges)
    gap = np.abs(f_ref - f_cur)
    # Between two edges the CDFs of integer data are flat at their right-edge value;
    # continuous data is closer to linear, so the trapezoid rule is used.
    per_bin = gap[1:] if ref.discrete else (gap[1:] + gap[:-1]) / 2
    inner = float(np.sum(per_bin * widths)) if widths.size else 0.0
    below = x[x < edges[0]]
    above = x[x > edges[-1]]
    outer = (float(np.sum(edges[0] - below)) + float(np.sum(above - edges[-1]))) / x.size
    scale = ref.std if ref.std > 0 else max(abs(ref.mean), 1.0)
    return (inner + outer) / scale


def _coarse_bins(ref: ReferenceSummary, x: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference and current counts in about ten reference-quantile bins (for PSI)."""
    inner = np.unique(np.linspace(0, edges.size - 1, PSI_BINS + 1).round().astype(int))[1:-1]
    ref_coarse = np.add.reduceat(np.asarray(ref.counts), np.r_[0, inner + 1])
    return ref_coarse.astype(float), _bin_counts(x, edges[inner]).astype(float)


def psi(ref_counts: np.ndarray, cur_counts: np.ndarray, eps: float = 1e-4) -> float:
    """Population stability index of two binned distributions (empty bins smoothed)."""
    n = min(ref_counts.size, cur_counts.size)
    p = np.maximum(ref_counts[:n] / max(ref_counts.sum(), 1), eps)
    q = np.maximum(cur_counts[:n] / max(cur_counts.sum(), 1), eps)
    return float(np.sum((q - p) * np.log(q / p)))


def categorical_drift(
    ref: ReferenceSummary,
    current: Sequence[str | None],
    method: Method = "auto",
    threshold: float | None = None,
) -> DriftResult:
    """Compare ``current`` categories with a categorical reference summary."""
    ref, cur = _align(ref, current)
    if method == "auto":
        method = "chisquare" if min(ref.n, cur.n) <= SMALL_SAMPLE else "jensenshannon"
    limit = DEFAULT_THRESHOLDS[method] if threshold is None else threshold
    if ref.n == 0 or cur.n == 0:
        return DriftResult(method, float("nan"), limit, False, ref.n, cur.n)
    keys = sorted(set(ref.categories) | set(cur.categories))
    p = np.array([ref.categories.get(k, 0) for k in keys], dtype=float)
    q = np.array([cur.categories.get(k, 0) for k in keys], dtype=float)
    if method == "chisquare":
        stat, pv = chi2_homogeneity(p, q)
        return DriftResult("chisquare", stat, limit, pv < limit, ref.n, cur.n, pv)
    if method == "jensenshannon":
        stat = float(jensenshannon(p, q))
    elif method == "psi":
        stat = psi(p, q)
    else:
        raise ValueError(f"method {method!r} does not apply to categorical features")
    return DriftResult(method, stat, limit, stat > limit, ref.n, cur.n)


def _align(ref: ReferenceSummary, current: Sequence[str | None]) -> tuple[ReferenceSummary, ReferenceSummary]:
    """The reference and current counts over the same categories.

    The reference folded its rare categories into ``__other__``; the current window must
    fold the same ones (not its own top 200), or a category counted on one side only
    looks like drift. Without an ``__other__`` every reference category was kept, so an
    unseen current category stays itself: it is new.
    """
    counts = Counter("__none__" if v is None else str(v) for v in current)
    if OTHER not in ref.categories:
        return ref, ReferenceSummary("categorical", sum(counts.values()), categories=dict(counts))
    # Which categories the reference kept depends on its own counts, so those near the
    # cut are over-counted there (and the ones it never saw are missing from its
    # ``__other__``). Keep apart only categories far above the cut, chosen by their
    # count in both samples together: under no drift that choice favours neither side.
    floor = 3 * min(c for k, c in ref.categories.items() if k != OTHER) + 10
    share = ref.n / (ref.n + sum(counts.values()))
    clear = {k: c for k, c in ref.categories.items() if k != OTHER and (c + counts.get(k, 0)) * share > floor}
    ref = ReferenceSummary("categorical", ref.n, categories={**clear, OTHER: ref.n - sum(clear.values())})
    kept: dict[str, int] = {}
    for key, count in counts.items():
        name = key if key in clear else OTHER
        kept[name] = kept.get(name, 0) + count
    return ref, ReferenceSummary("categorical", sum(counts.values()), categories=kept)


def chi2_homogeneity(
    ref_counts: np.ndarray, cur_counts: np.ndarray, min_expected: float = 5.0
) -> tuple[float, float]:
    """Chi-square test that two samples share one categorical distribution.

    A goodness-of-fit test would take the reference shares as exact, which inflates the
    statistic by ``1 + m / n`` (m current, n reference values). Categories whose smaller
    expected count is under ``min_expected`` are pooled, rarest first (Cochran's rule):
    with many sparse cells the chi-square approximation alarms far above alpha.
    """
    table = np.vstack([ref_counts, cur_counts]).astype(float)
    table = table[:, table.sum(axis=0) > 0]
    rows = table.sum(axis=1)
    if table.shape[1] < 2 or rows.min() == 0:
        return 0.0, 1.0
    need = min_expected / (rows.min() / rows.sum())  # column total giving that expectation
    order = np.argsort(table.sum(axis=0), kind="stable")
    table = table[:, order]
    sizes = table.sum(axis=0)
    cut = int(np.sum(sizes < need))  # every sparse column, then more until the pool is not
    if cut:
        short = need - sizes[:cut].sum()
        if short > 0:
            cut = min(cut + int(np.searchsorted(np.cumsum(sizes[cut:]), short)) + 1, sizes.size)
        table = np.column_stack([table[:, :cut].sum(axis=1), table[:, cut:]])
    if table.shape[1] < 2:
        return 0.0, 1.0
    res = sps.chi2_contingency(table, correction=False)
    return float(res.statistic), float(res.pvalue)


def drift(
    ref: ReferenceSummary, current: Any, method: Method = "auto", threshold: float | None = None
) -> DriftResult:
    """Dispatch on the reference's kind."""
    if ref.kind == "numeric":
        return numeric_drift(ref, np.asarray(current, dtype=float), method, threshold)
    return categorical_drift(ref, list(current), method, threshold)


def dataset_drift(results: Sequence[DriftResult], share: float = 0.5) -> bool:
    """Evidently's dataset rule: drift when at least ``share`` of the features drifted."""
    return bool(results) and sum(r.drifted for r in results) >= share * len(results)
