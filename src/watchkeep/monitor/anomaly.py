"""Anomalies on a metric's time series: robust z-score and EWMA, thresholds from the reference.

Robust z-score: distance from the reference median in units of the scaled MAD, which
a few past outliers cannot inflate. EWMA: an exponentially weighted mean of the
current points against the reference mean, in units of its stationary standard error,
which catches small sustained shifts a point test misses. In both, the threshold is
the (1 - alpha) quantile of the same score over the reference period itself (never
below 3; past incidents, beyond 10, left out), so a naturally noisy series gets a wider
band instead of constant alarms, and one bad day in the reference does not blind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

MAD_SCALE = 1.4826  # MAD of a normal distribution times this is its standard deviation
MIN_THRESHOLD = 3.0
INCIDENT = 10.0  # reference points scoring beyond this are past incidents, not noise
AnomalyMethod = Literal["robust_z", "ewma"]


@dataclass(frozen=True, slots=True)
class AnomalyResult:
    """The score of the newest point, its threshold, and which current points exceed it."""

    method: str
    score: float
    threshold: float
    anomalous: bool
    flagged: list[int]
    reference_n: int


def _clean(values: np.ndarray | list[float | None]) -> np.ndarray:
    x = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    finite: np.ndarray = x[np.isfinite(x)]
    return finite


def _learnt_threshold(reference_scores: np.ndarray, alpha: float) -> float:
    noise = np.abs(reference_scores)
    noise = noise[noise <= INCIDENT]
    if noise.size == 0:
        return MIN_THRESHOLD
    return max(MIN_THRESHOLD, float(np.quantile(noise, 1 - alpha)))


def robust_z(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Robust z-scores of ``values`` against the reference median and scaled MAD."""
    median = float(np.median(reference))
    mad = float(np.median(np.abs(reference - median))) * MAD_SCALE
    if mad == 0:
        mad = float(np.std(reference)) or max(abs(median) * 1e-3, 1e-9)
    z: np.ndarray = (values - median) / mad
    return z


def ewma_scores(values: np.ndarray, mean: float, sd: float, lam: float) -> np.ndarray:
    """EWMA of ``values`` (started at ``mean``) in units of its stationary standard error."""
    z = np.empty_like(values)
    level = mean
    for i, v in enumerate(values):
        level = lam * v + (1 - lam) * level
        z[i] = level
    se = (sd or max(abs(mean) * 1e-3, 1e-9)) * np.sqrt(lam / (2 - lam))
    out: np.ndarray = (z - mean) / se
    return out


def detect(
    reference: np.ndarray | list[float | None],
    current: np.ndarray | list[float | None],
    method: AnomalyMethod = "robust_z",
    *,
    alpha: float = 0.01,
    lam: float = 0.3,
) -> AnomalyResult:
    """Score ``current`` points (oldest first) against ``reference``; judge the newest."""
    ref = _clean(reference)
    cur = _clean(current)
    if ref.size < 3 or cur.size == 0:
        return AnomalyResult(method, float("nan"), MIN_THRESHOLD, False, [], int(ref.size))
    if method == "robust_z":
        threshold = _learnt_threshold(robust_z(ref, ref), alpha)
        scores = robust_z(cur, ref)
    elif method == "ewma":
        mean, sd = float(ref.mean()), float(ref.std(ddof=1))
        threshold = _learnt_threshold(ewma_scores(ref, mean, sd, lam), alpha)
        scores = ewma_scores(cur, mean, sd, lam)
    else:
        raise ValueError(f"unknown anomaly method {method!r}")
    flagged = [int(i) for i in np.flatnonzero(np.abs(scores) > threshold)]
    latest = float(scores[-1])
    return AnomalyResult(method, latest, threshold, abs(latest) > threshold, flagged, int(ref.size))
