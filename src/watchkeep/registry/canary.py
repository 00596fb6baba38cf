"""Canary analysis: promote or roll back a candidate from live batches, valid under peeking.

Contract (pure; the worker stores the state and acts on the decision):

- ``CanaryPolicy`` names the metrics (``MetricRule``: a ``proportion`` such as the error
  rate or the feedback pass rate, or a ``mean`` such as latency or an online evaluator's
  score), which direction is better, and a ``tolerance`` in the metric's own units (a
  rate's points as a fraction, milliseconds, score units).
- ``start(policy)`` gives the empty ``CanaryState``; ``observe(state, batch)`` adds one
  batch, ``batch[name] = (baseline, candidate)`` as ``Counts`` or ``Moments`` of that
  batch only, and returns the new state (frozen; ``to_json``/``from_json`` round-trip).
- ``decide(state)`` returns a ``Decision``: ``rollback`` as soon as a metric is
  significantly worse (one-sided always-valid p-value of "worse than baseline" below
  ``alpha / m``, Bonferroni over the m metrics), else ``promote`` when every metric is
  shown to be no worse than its tolerance (the mirror-image always-valid test, same
  level) or when the candidate has ``max_samples`` observations, else ``continue``.
  ``reason`` is a sentence with the figures.

Error rates. For a candidate no worse than the baseline on every metric, the chance of
ever rolling back, however many batches are looked at, is at most ``alpha`` (Ville's
inequality on each metric's mSPRT, see ``sequential``; Bonferroni across metrics; the
normal approximation is why rollback waits for ``min_samples`` per arm). An early
promotion of a candidate worse than a tolerance on some metric also has probability at
most ``alpha``. A promotion at ``max_samples`` carries no such guarantee: its power
against a stated regression is measured in ``benchmarks/releases.py``.

Shadow mode (the candidate answers a copy of the traffic without serving it) feeds the
same ``observe``: the statistics are identical, only the action's effect differs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from watchkeep.registry.sequential import always_valid_p, mean_difference, proportion_difference

Kind = Literal["proportion", "mean"]
Direction = Literal["lower_is_better", "higher_is_better"]
Action = Literal["continue", "promote", "rollback"]


@dataclass(frozen=True, slots=True)
class Counts:
    """``events`` out of ``n`` (errors, passed feedback) for a proportion metric."""

    n: int
    events: int

    def __post_init__(self) -> None:
        if self.n < 0 or not 0 <= self.events <= self.n:
            raise ValueError(f"counts need 0 <= events <= n, got {self.events} of {self.n}")

    def merge(self, other: Counts) -> Counts:
        return Counts(self.n + other.n, self.events + other.events)

    @property
    def value(self) -> float:
        return self.events / self.n if self.n else math.nan


@dataclass(frozen=True, slots=True)
class Moments:
    """Count, mean and sum of squared deviations (``m2``) of a mean metric's values."""

    n: int
    mean: float = 0.0
    m2: float = 0.0

    def __post_init__(self) -> None:
        if self.n < 0 or self.m2 < 0 or not (math.isfinite(self.mean) and math.isfinite(self.m2)):
            raise ValueError("moments need n >= 0, finite mean and m2 >= 0")

    @classmethod
    def of(cls, values: list[float] | tuple[float, ...]) -> Moments:
        """The moments of raw values (what a worker computes from one batch of spans)."""
        n = len(values)
        if n == 0:
            return cls(0)
        mean = math.fsum(values) / n
        return cls(n, mean, math.fsum((v - mean) ** 2 for v in values))

    def merge(self, other: Moments) -> Moments:
        """Chan et al.'s parallel update: exact, order-free, no raw values kept."""
        n = self.n + other.n
        if n == 0:
            return self
        delta = other.mean - self.mean
        mean = self.mean + delta * other.n / n
        return Moments(n, mean, self.m2 + other.m2 + delta * delta * self.n * other.n / n)

    @property
    def value(self) -> float:
        return self.mean if self.n else math.nan

    @property
    def variance(self) -> float:
        return self.m2 / (self.n - 1) if self.n > 1 else 0.0


Sample = Counts | Moments


@dataclass(frozen=True, slots=True)
class MetricRule:
    """One compared metric. ``tolerance`` (> 0) is the largest acceptable worsening, in the
    metric's units; it is also the scale of the mSPRT's mixture (power peaks near it)."""

    name: str
    kind: Kind = "proportion"
    direction: Direction = "lower_is_better"
    tolerance: float = 0.01

    def __post_init__(self) -> None:
        if self.kind not in ("proportion", "mean") or self.direction not in (
            "lower_is_better",
            "higher_is_better",
        ):
            raise ValueError(
                f"bad metric rule {self.name!r}: kind {self.kind!r}, direction {self.direction!r}"
            )
        if not (self.tolerance > 0 and math.isfinite(self.tolerance)):
            raise ValueError(f"metric {self.name!r}: tolerance must be a positive number")


@dataclass(frozen=True, slots=True)
class CanaryPolicy:
    """Family-wise ``alpha``; ``min_samples`` per arm before a metric is tested; promotion
    once the candidate has ``max_samples`` observations on its best-fed metric."""

    metrics: tuple[MetricRule, ...]
    alpha: float = 0.05
    min_samples: int = 200
    max_samples: int = 5000

    def __post_init__(self) -> None:
        if not self.metrics or len({m.name for m in self.metrics}) != len(self.metrics):
            raise ValueError("a canary policy needs metrics with distinct names")
        if not 0 < self.alpha < 1 or not 1 <= self.min_samples <= self.max_samples:
            raise ValueError("need 0 < alpha < 1 and 1 <= min_samples <= max_samples")

    @property
    def level(self) -> float:
        """The per-metric level: Bonferroni over the metrics."""
        return self.alpha / len(self.metrics)


@dataclass(frozen=True, slots=True)
class MetricState:
    """Cumulative arms of one metric and its two running always-valid p-values."""

    baseline: Sample
    candidate: Sample
    p_worse: float = 1.0  # H0 "candidate no worse than baseline"; small: roll back
    p_within: float = 1.0  # H0 "worse by at least the tolerance"; small: safe to promote


@dataclass(frozen=True, slots=True)
class CanaryState:
    policy: CanaryPolicy
    metrics: Mapping[str, MetricState]
    looks: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": {
                "alpha": self.policy.alpha,
                "min_samples": self.policy.min_samples,
                "max_samples": self.policy.max_samples,
                "metrics": [
                    {"name": m.name, "kind": m.kind, "direction": m.direction, "tolerance": m.tolerance}
                    for m in self.policy.metrics
                ],
            },
            "looks": self.looks,
            "metrics": {
                name: {
                    "baseline": _sample_json(s.baseline),
                    "candidate": _sample_json(s.candidate),
                    "p_worse": s.p_worse,
                    "p_within": s.p_within,
                }
                for name, s in self.metrics.items()
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CanaryState:
        p = data["policy"]
        policy = CanaryPolicy(
            metrics=tuple(MetricRule(**m) for m in p["metrics"]),
            alpha=float(p["alpha"]),
            min_samples=int(p["min_samples"]),
            max_samples=int(p["max_samples"]),
        )
        metrics = {
            name: MetricState(
                _sample_from_json(s["baseline"]),
                _sample_from_json(s["candidate"]),
                float(s["p_worse"]),
                float(s["p_within"]),
            )
            for name, s in data["metrics"].items()
        }
        if set(metrics) != {m.name for m in policy.metrics}:
            raise ValueError("canary state metrics do not match its policy")
        return cls(policy, metrics, int(data["looks"]))


def _sample_json(s: Sample) -> dict[str, Any]:
    if isinstance(s, Counts):
        return {"n": s.n, "events": s.events}
    return {"n": s.n, "mean": s.mean, "m2": s.m2}


def _sample_from_json(d: Mapping[str, Any]) -> Sample:
    if "events" in d:
        return Counts(int(d["n"]), int(d["events"]))
    return Moments(int(d["n"]), float(d["mean"]), float(d["m2"]))


def _empty(rule: MetricRule) -> Sample:
    return Counts(0, 0) if rule.kind == "proportion" else Moments(0)


def start(policy: CanaryPolicy) -> CanaryState:
    """The state of a canary that has seen nothing yet."""
    return CanaryState(policy, {m.name: MetricState(_empty(m), _empty(m)) for m in policy.metrics})


def worsening(rule: MetricRule, baseline: Sample, candidate: Sample) -> tuple[float, float]:
    """How much worse the candidate is (positive: worse, in the metric's units) and its variance."""
    if isinstance(baseline, Counts) and isinstance(candidate, Counts):
        diff, var = proportion_difference(baseline.events, baseline.n, candidate.events, candidate.n)
    elif isinstance(baseline, Moments) and isinstance(candidate, Moments):
        diff, var = mean_difference(
            baseline.mean, baseline.variance, baseline.n, candidate.mean, candidate.variance, candidate.n
        )
    else:
        raise TypeError(f"metric {rule.name!r}: both arms must be Counts or both Moments")
    sign = 1.0 if rule.direction == "lower_is_better" else -1.0
    return sign * float(diff), float(var)


def _merge(rule: MetricRule, total: Sample, more: Sample) -> Sample:
    if isinstance(total, Counts) and isinstance(more, Counts):
        return total.merge(more)
    if isinstance(total, Moments) and isinstance(more, Moments):
        return total.merge(more)
    raise TypeError(f"metric {rule.name!r} is a {rule.kind}: give {type(total).__name__} for both arms")


def observe(state: CanaryState, batch: Mapping[str, tuple[Sample, Sample]]) -> CanaryState:
    """Add one batch (``name -> (baseline, candidate)``, this batch only) and update the tests.

    Metrics missing from the batch keep their state; a name not in the policy is an error.
    """
    rules = {m.name: m for m in state.policy.metrics}
    unknown = set(batch) - set(rules)
    if unknown:
        raise KeyError(f"metrics not in the canary policy: {sorted(unknown)}")
    updated = dict(state.metrics)
    for name, (base, cand) in batch.items():
        rule, old = rules[name], state.metrics[name]
        new = replace(
            old, baseline=_merge(rule, old.baseline, base), candidate=_merge(rule, old.candidate, cand)
        )
        if min(new.baseline.n, new.candidate.n) >= state.policy.min_samples:
            worse, var = worsening(rule, new.baseline, new.candidate)
            tau = rule.tolerance
            new = replace(
                new,
                p_worse=min(old.p_worse, float(always_valid_p(worse, var, tau))),
                p_within=min(old.p_within, float(always_valid_p(rule.tolerance - worse, var, tau))),
            )
        updated[name] = new
    return CanaryState(state.policy, updated, state.looks + 1)


@dataclass(frozen=True, slots=True)
class MetricReport:
    """One metric's figures at the time of a decision."""

    name: str
    n_baseline: int
    n_candidate: int
    baseline: float
    candidate: float
    worsening: float
    p_worse: float
    p_within: float


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    metric: str | None  # the metric that decided a rollback, else None
    p_value: float | None  # its always-valid p-value (rollback) or the largest p_within (early promote)
    reason: str
    metrics: tuple[MetricReport, ...] = field(default=())


def _report(rule: MetricRule, s: MetricState) -> MetricReport:
    worse = worsening(rule, s.baseline, s.candidate)[0] if min(s.baseline.n, s.candidate.n) else math.nan
    return MetricReport(
        rule.name,
        s.baseline.n,
        s.candidate.n,
        s.baseline.value,
        s.candidate.value,
        worse,
        s.p_worse,
        s.p_within,
    )


def _fmt(rule: MetricRule, value: float) -> str:
    return f"{value:.2%}" if rule.kind == "proportion" else f"{value:.4g}"


def _delta(rule: MetricRule, value: float) -> str:
    return f"{100 * value:.2f} points" if rule.kind == "proportion" else f"{value:.4g}"


def _figures(rule: MetricRule, r: MetricReport) -> str:
    return (
        f"{rule.name} {_fmt(rule, r.candidate)} (n={r.n_candidate:,}) vs {_fmt(rule, r.baseline)} "
        f"(n={r.n_baseline:,}), worse by {_delta(rule, r.worsening)}"
    )


def decide(state: CanaryState) -> Decision:
    """What to do now; pure, so calling it after every batch is the intended use."""
    policy = state.policy
    level = policy.level
    rules = {m.name: m for m in policy.metrics}
    reports = tuple(_report(m, state.metrics[m.name]) for m in policy.metrics)
    bound = f"alpha {policy.alpha:g} over {len(reports)} metric(s), so {level:.3g} each"
    worst = min(reports, key=lambda r: r.p_worse)
    if worst.p_worse <= level:
        return Decision(
            "rollback",
            worst.name,
            worst.p_worse,
            f"Roll back: {_figures(rules[worst.name], worst)}; always-valid p = {worst.p_worse:.3g} "
            f"<= {level:.3g} ({bound}) after {state.looks} look(s).",
            reports,
        )
    tested = all(min(r.n_baseline, r.n_candidate) >= policy.min_samples for r in reports)
    loosest = max(reports, key=lambda r: r.p_within)
    if tested and loosest.p_within <= level:
        return Decision(
            "promote",
            None,
            loosest.p_within,
            f"Promote: every metric is within its tolerance (largest always-valid p = {loosest.p_within:.3g} "
            f"<= {level:.3g}, {bound}); {'; '.join(_figures(rules[r.name], r) for r in reports)}.",
            reports,
        )
    size = max(r.n_candidate for r in reports)
    if size >= policy.max_samples:
        return Decision(
            "promote",
            None,
            None,
            f"Promote: {size:,} candidate observations reached max_samples {policy.max_samples:,} with no "
            f"significant regression (smallest p = {worst.p_worse:.3g} > {level:.3g}); "
            f"{'; '.join(_figures(rules[r.name], r) for r in reports)}.",
            reports,
        )
    return Decision(
        "continue",
        None,
        None,
        f"Continue: {size:,} of {policy.max_samples:,} candidate observations, no significant regression yet "
        f"(smallest p = {worst.p_worse:.3g} on {worst.name}, needs <= {level:.3g}).",
        reports,
    )
