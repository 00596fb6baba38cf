"""The always-valid test behind canary analysis: a one-sided mixture SPRT (mSPRT).

Why mSPRT: a canary is looked at after every batch of traffic and stopped the moment it
looks bad. A fixed-n test peeked at like that rejects a null candidate far more often
than its alpha (see benchmarks/releases.py). The mixture sequential probability ratio
test (Robbins 1970; Johari, Pekelis, Walsh, "Always valid inference", 2017/2022) turns
the likelihood ratio, averaged over a prior on the effect, into a nonnegative
supermartingale under the null, so by Ville's inequality
``P(sup_n Lambda_n >= 1/alpha) <= alpha``: the running ``min(1, 1/Lambda)`` is a p-value
valid at any stopping time, however often it is looked at. A group-sequential design
with alpha spending would need the number and timing of looks fixed in advance; a
canary's batches come when traffic comes.

Contract. The statistic is a difference of two arm means ``x`` with (plug-in) variance
``v``, treated as Gaussian (the normal approximation of Johari et al.'s two-sample
test, valid for proportions and for means as the arms grow; hence a minimum sample
size). The null is ``theta <= theta0`` (composite: for Gaussian data the mixture
ratio is a supermartingale at every theta below theta0 too), the alternative mixes
``theta - theta0`` over a half-normal with scale ``tau``:

    Lambda = 2 sqrt(v / (v + tau^2)) exp(x^2 tau^2 / (2 v (v + tau^2))) Phi(x tau / sqrt(v (v + tau^2)))

with ``x`` the estimate minus ``theta0``. ``tau`` tunes power toward effects of about
that size; the validity does not depend on it. Everything here is vectorised numpy so
the simulations in the tests and the benchmark run the very code the policy runs.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import log_ndtr

FloatArray = NDArray[np.float64]

# A variance floor: a plug-in variance of exactly 0 (identical constant arms) would make
# the ratio infinite; this keeps it finite without affecting any realistic figure.
_VARIANCE_FLOOR = 1e-300


def log_mixture_lr(x: ArrayLike, variance: ArrayLike, tau: float) -> FloatArray:
    """log Lambda of the one-sided mSPRT for ``H0: theta <= theta0`` (``x`` = estimate - theta0)."""
    if tau <= 0:
        raise ValueError("tau must be positive")
    xs = np.asarray(x, dtype=float)
    v = np.maximum(np.asarray(variance, dtype=float), _VARIANCE_FLOOR)
    t2 = tau * tau
    total = v + t2
    out: FloatArray = (
        np.log(2.0)
        + 0.5 * np.log(v / total)
        + xs * xs * t2 / (2.0 * v * total)
        + log_ndtr(xs * tau / np.sqrt(v * total))
    )
    return out


def always_valid_p(x: ArrayLike, variance: ArrayLike, tau: float) -> FloatArray:
    """``min(1, 1/Lambda)`` at one look; take the running minimum over looks for the p-value."""
    return np.asarray(np.minimum(1.0, np.exp(-log_mixture_lr(x, variance, tau))), dtype=float)


def proportion_difference(
    events_base: ArrayLike, n_base: ArrayLike, events_cand: ArrayLike, n_cand: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Candidate minus baseline rate and its variance (each rate with half a pseudo-event).

    The pseudo-counts (``(x + 0.5) / (n + 1)``, as in Agresti-Caffo) keep the variance
    positive when an arm has seen no events yet, where a bare plug-in of 0 would let one
    event look infinitely significant.
    """
    nb = np.maximum(np.asarray(n_base, dtype=float), 1.0)
    nc = np.maximum(np.asarray(n_cand, dtype=float), 1.0)
    pb = np.asarray(events_base, dtype=float) / nb
    pc = np.asarray(events_cand, dtype=float) / nc
    sb = (np.asarray(events_base, dtype=float) + 0.5) / (nb + 1.0)
    sc = (np.asarray(events_cand, dtype=float) + 0.5) / (nc + 1.0)
    variance = sb * (1 - sb) / nb + sc * (1 - sc) / nc
    return np.asarray(pc - pb, dtype=float), np.asarray(variance, dtype=float)


def mean_difference(
    mean_base: ArrayLike,
    var_base: ArrayLike,
    n_base: ArrayLike,
    mean_cand: ArrayLike,
    var_cand: ArrayLike,
    n_cand: ArrayLike,
) -> tuple[FloatArray, FloatArray]:
    """Candidate minus baseline mean and its Welch variance ``s_b^2/n_b + s_c^2/n_c``."""
    nb = np.maximum(np.asarray(n_base, dtype=float), 1.0)
    nc = np.maximum(np.asarray(n_cand, dtype=float), 1.0)
    diff = np.asarray(mean_cand, dtype=float) - np.asarray(mean_base, dtype=float)
    variance = np.asarray(var_base, dtype=float) / nb + np.asarray(var_cand, dtype=float) / nc
    return np.asarray(diff, dtype=float), np.asarray(variance, dtype=float)
