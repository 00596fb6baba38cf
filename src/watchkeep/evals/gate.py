"""The release gate: is a candidate run worse than its baseline, at a stated error rate?

Two runs are paired on the item key; each side's repeats and perturbed variants of an item
are averaged into a per-item pass rate (an item's variants are not independent samples, so
the item is the unit every test resamples). Items on one side only are reported, never
used; the per-item differences are listed per (item, variant). The rule, per metric:

- H0: the candidate's metric is at least the baseline's minus ``max_drop``.
- ``pass_rate`` with ``max_drop == 0``: McNemar's exact one-sided test on per-item majority
  pass/fail (b = baseline passes and candidate fails); exact, so never above alpha.
- any other metric, or a positive margin: the paired BCa bootstrap's one-sided p-value of
  "delta < -max_drop" (``evals.stats.PairedBootstrap.p_below``).
- the metrics' p-values go through Holm's step-down, so the family-wise false-alarm rate
  over every metric tested stays at or below ``alpha``.

Verdict: "regression" when Holm rejects any metric; "inconclusive" when there is nothing to
compare (no paired item) or the candidate's error rate exceeds ``max_error_rate`` (its
numbers are not trustworthy); "pass" otherwise. Fixed thresholds are ``check_thresholds``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from watchkeep.evals.config import GateSpec
from watchkeep.evals.model import ItemResult
from watchkeep.evals.stats import DeltaInterval, PairedBootstrap, holm, mcnemar_exact
from watchkeep.monitor.stats import Estimate, mean_interval

Verdict = Literal["pass", "regression", "inconclusive"]
Change = Literal["fixed", "broken", "same"]
PASS_RATE = "pass_rate"
VALUE_SUFFIX = ":value"  # "<evaluator>:value" is the mean of that evaluator's score values


@dataclass(frozen=True, slots=True)
class GatePolicy:
    """What counts as a regression (mirrors ``evals.config.GateSpec``)."""

    alpha: float = 0.05
    max_drop: float = 0.0
    metrics: tuple[str, ...] = (PASS_RATE,)
    thresholds: Mapping[str, float] = field(default_factory=dict)
    max_error_rate: float = 0.1
    bootstrap_resamples: int = 2000

    @classmethod
    def from_spec(cls, spec: GateSpec) -> GatePolicy:
        """The policy of a run config's ``gate:`` section."""
        return cls(
            alpha=spec.alpha,
            max_drop=spec.max_drop,
            metrics=tuple(spec.metrics),
            thresholds=dict(spec.thresholds),
            max_error_rate=spec.max_error_rate,
            bootstrap_resamples=spec.bootstrap_resamples,
        )


@dataclass(frozen=True, slots=True)
class MetricDelta:
    """One metric on both runs (over the paired items) and the delta with its interval."""

    name: str
    baseline: Estimate
    candidate: Estimate
    delta: DeltaInterval
    p_value: float | None = None  # one-sided, of "worse by more than max_drop"
    test: str = ""
    regression: bool = False


@dataclass(frozen=True, slots=True)
class McNemarResult:
    """McNemar's exact test on per-item majority pass/fail (one-sided: candidate worse)."""

    b: int  # baseline passed, candidate failed
    c: int  # baseline failed, candidate passed
    p_value: float


@dataclass(frozen=True, slots=True)
class ItemDiff:
    """One paired item whose verdict may have changed."""

    item_key: str
    variant: str
    baseline_pass_rate: float
    candidate_pass_rate: float
    change: Change
    baseline_output: str | None
    candidate_output: str | None


@dataclass(frozen=True, slots=True)
class Comparison:
    """Everything the gate decided and why; ``to_json`` is what a report and the API show."""

    n_paired: int
    only_baseline: list[tuple[str, str]]
    only_candidate: list[tuple[str, str]]
    metrics: list[MetricDelta]
    mcnemar: McNemarResult
    verdict: Verdict
    reasons: list[str]
    items: list[ItemDiff]
    alpha: float = 0.05
    max_drop: float = 0.0
    candidate_error_rate: float | None = None
    items_truncated: bool = False

    def to_json(self) -> dict[str, Any]:
        """JSON-able; NaN becomes null."""
        return {
            "n_paired": self.n_paired,
            "only_baseline": [list(k) for k in self.only_baseline],
            "only_candidate": [list(k) for k in self.only_candidate],
            "metrics": [
                {
                    "name": m.name,
                    "baseline": _estimate_json(m.baseline),
                    "candidate": _estimate_json(m.candidate),
                    "delta": m.delta.to_json(),
                    "p_value": m.p_value,
                    "test": m.test,
                    "regression": m.regression,
                }
                for m in self.metrics
            ],
            "mcnemar": asdict(self.mcnemar),
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "alpha": self.alpha,
            "max_drop": self.max_drop,
            "candidate_error_rate": self.candidate_error_rate,
            "items": [asdict(d) for d in self.items],
            "items_truncated": self.items_truncated,
        }


def _estimate_json(e: Estimate) -> dict[str, Any]:
    return asdict(e)


@dataclass
class _Side:
    """One run's results of one (item, variant), repeats together."""

    passes: list[float] = field(default_factory=list)
    by_evaluator: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    values: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    output: str | None = None
    errors: int = 0


def _group(results: Iterable[ItemResult], *, by_item: bool = False) -> dict[tuple[str, str], _Side]:
    """Results by (item, variant), or by item alone (variant "") when ``by_item``."""
    sides: dict[tuple[str, str], _Side] = {}
    for r in sorted(results, key=lambda r: r.key):
        side = sides.setdefault((r.item_key, "" if by_item else r.variant), _Side())
        passed = r.passed
        if passed is None:
            side.errors += 1
            continue
        side.passes.append(float(passed))
        if side.output is None:
            side.output = r.output
        for name, score in r.scores.items():
            if score.passed is not None:
                side.by_evaluator[name].append(float(score.passed))
            if score.value is not None and math.isfinite(score.value):
                side.values[name].append(float(score.value))
    return sides


def _scored(sides: Mapping[tuple[str, str], _Side]) -> set[tuple[str, str]]:
    return {k for k, side in sides.items() if side.passes}


def _metric_values(sides: Sequence[_Side], metric: str) -> np.ndarray:
    """Per-item values of ``metric`` (NaN where the item has none)."""
    out = np.full(len(sides), np.nan)
    for i, side in enumerate(sides):
        if metric == PASS_RATE:
            vals = side.passes
        elif metric.endswith(VALUE_SUFFIX):
            vals = side.values.get(metric[: -len(VALUE_SUFFIX)], [])
        else:
            vals = side.by_evaluator.get(metric, [])
        if vals:
            out[i] = sum(vals) / len(vals)
    return out


def _error_rate(results: Sequence[ItemResult]) -> float | None:
    if not results:
        return None
    return sum(r.error is not None for r in results) / len(results)


def _item_diffs(
    keys: Sequence[tuple[str, str]],
    base: Sequence[_Side],
    cand: Sequence[_Side],
    limit: int,
) -> tuple[list[ItemDiff], bool]:
    """Changed items first (broken, then fixed), then the rest, at most ``limit``."""
    diffs = []
    for key, b, c in zip(keys, base, cand, strict=True):
        rb, rc = sum(b.passes) / len(b.passes), sum(c.passes) / len(c.passes)
        change: Change = "same" if rb == rc else ("broken" if rc < rb else "fixed")
        diffs.append(ItemDiff(key[0], key[1], rb, rc, change, b.output, c.output))
    rank = {"broken": 0, "fixed": 1, "same": 2}
    diffs.sort(key=lambda d: (rank[d.change], d.item_key, d.variant))
    return diffs[:limit], len(diffs) > limit


def _test_metric(
    name: str,
    base: np.ndarray,
    cand: np.ndarray,
    policy: GatePolicy,
    seed: int,
    mcnemar: McNemarResult,
) -> MetricDelta:
    mask = ~(np.isnan(base) | np.isnan(cand))
    b, c = base[mask], cand[mask]
    boot = PairedBootstrap(b, c, n_resamples=policy.bootstrap_resamples, seed=seed)
    if name == PASS_RATE and policy.max_drop == 0:
        p, test = mcnemar.p_value, "mcnemar-exact"
    else:
        p, test = boot.p_below(-policy.max_drop), "bootstrap-bca"
    return MetricDelta(
        name=name,
        baseline=mean_interval(b, 1 - policy.alpha),
        candidate=mean_interval(c, 1 - policy.alpha),
        delta=boot.interval(1 - policy.alpha),
        p_value=p if b.size else None,
        test=test,
    )


def decide_paired(
    baseline: Mapping[str, np.ndarray],
    candidate: Mapping[str, np.ndarray],
    policy: GatePolicy,
    *,
    seed: int = 0,
) -> tuple[list[MetricDelta], McNemarResult]:
    """The gate's decision on per-item values already paired (index i is one item on both sides).

    ``baseline[name]`` holds each paired item's value of metric ``name`` (NaN where it has
    none); ``"pass_rate"`` must be present (McNemar uses it). The metrics tested are
    ``policy.metrics``; Holm has marked the regressions. ``compare_runs`` is this after pairing.
    """
    b_rate, c_rate = np.asarray(baseline[PASS_RATE]), np.asarray(candidate[PASS_RATE])
    b_major, c_major = b_rate >= 0.5, c_rate >= 0.5  # majority of repeats; a tie passes
    n_b, n_c = int(np.sum(b_major & ~c_major)), int(np.sum(~b_major & c_major))
    mcnemar = McNemarResult(n_b, n_c, mcnemar_exact(n_b, n_c, alternative="greater"))
    metrics = [
        _test_metric(name, baseline[name], candidate[name], policy, seed + i, mcnemar)
        for i, name in enumerate(dict.fromkeys(policy.metrics or (PASS_RATE,)))
    ]
    p_values = {i: m.p_value for i, m in enumerate(metrics) if m.p_value is not None}
    rejected = holm(list(p_values.values()), policy.alpha)
    for i, rej in zip(p_values, rejected, strict=True):
        if rej:
            m = metrics[i]
            metrics[i] = MetricDelta(
                m.name, m.baseline, m.candidate, m.delta, m.p_value, m.test, regression=True
            )
    return metrics, mcnemar


def compare_runs(
    baseline: Sequence[ItemResult],
    candidate: Sequence[ItemResult],
    policy: GatePolicy,
    *,
    seed: int = 0,
    max_item_diffs: int = 1000,
) -> Comparison:
    """Pair two runs' results and decide pass / regression / inconclusive (module docstring)."""
    base_units, cand_units = _group(baseline, by_item=True), _group(candidate, by_item=True)
    units = sorted(_scored(base_units) & _scored(cand_units))
    b_units = [base_units[k] for k in units]
    c_units = [cand_units[k] for k in units]
    names = list(dict.fromkeys((PASS_RATE, *policy.metrics)))
    metrics, mcnemar = decide_paired(
        {n: _metric_values(b_units, n) for n in names},
        {n: _metric_values(c_units, n) for n in names},
        policy,
        seed=seed,
    )
    error_rate = _error_rate(candidate)
    verdict, reasons = _verdict(metrics, len(units), error_rate, policy)
    base_sides, cand_sides = _group(baseline), _group(candidate)
    keys = sorted(_scored(base_sides) & _scored(cand_sides))
    items, truncated = _item_diffs(
        keys, [base_sides[k] for k in keys], [cand_sides[k] for k in keys], max_item_diffs
    )
    return Comparison(
        n_paired=len(units),
        only_baseline=sorted(set(base_sides) - set(cand_sides)),
        only_candidate=sorted(set(cand_sides) - set(base_sides)),
        metrics=metrics,
        mcnemar=mcnemar,
        verdict=verdict,
        reasons=reasons,
        items=items,
        alpha=policy.alpha,
        max_drop=policy.max_drop,
        candidate_error_rate=error_rate,
        items_truncated=truncated,
    )


def _verdict(
    metrics: Sequence[MetricDelta], n_paired: int, error_rate: float | None, policy: GatePolicy
) -> tuple[Verdict, list[str]]:
    reasons = [
        f"{m.name} dropped by more than {policy.max_drop:g}: delta {m.delta.delta:+.4f} "
        f"({m.test}, p={m.p_value:.4g}, Holm at alpha={policy.alpha:g})"
        for m in metrics
        if m.regression
    ]
    if reasons:
        return "regression", reasons
    if n_paired == 0:
        return "inconclusive", ["no item was scored in both runs"]
    if error_rate is not None and error_rate > policy.max_error_rate:
        return "inconclusive", [
            f"candidate error rate {error_rate:.3f} exceeds max_error_rate {policy.max_error_rate:g}"
        ]
    missing = [m.name for m in metrics if m.p_value is None]
    if missing:
        return "inconclusive", [f"no paired values for metric(s): {', '.join(missing)}"]
    return "pass", [f"no metric dropped significantly over {n_paired} paired items"]


def check_thresholds(aggregates: Mapping[str, Any], thresholds: Mapping[str, float]) -> list[str]:
    """Fixed bars on one run's point estimates; one message per bar missed.

    ``pass_rate`` and an evaluator's name are minimums (of the overall and that evaluator's
    pass rate); ``asr:<family>`` (or ``asr`` overall) is a maximum attack success rate.
    A name with no figure in ``aggregates`` fails too: a bar that cannot be checked is not met.
    """
    failures = []
    for name, bar in sorted(thresholds.items()):
        value, is_max = _threshold_value(aggregates, name)
        if value is None:
            failures.append(f"{name}: no value to check against {bar:g}")
        elif is_max and value > bar:
            failures.append(f"{name}: {value:.4f} is above the maximum {bar:g}")
        elif not is_max and value < bar:
            failures.append(f"{name}: {value:.4f} is below the minimum {bar:g}")
    return failures


def _threshold_value(aggregates: Mapping[str, Any], name: str) -> tuple[float | None, bool]:
    def point(node: Any) -> float | None:
        if isinstance(node, Mapping):
            value = node.get("value")
            return float(value) if isinstance(value, (int, float)) else None
        return None

    if name == PASS_RATE:
        return point(aggregates.get("pass_rate")), False
    if name == "asr" or name.startswith("asr:"):
        adversarial = aggregates.get("adversarial") or {}
        if name == "asr":
            return point(adversarial.get("asr")), True
        family = (adversarial.get("families") or {}).get(name[4:]) or {}
        return point(family.get("asr")), True
    evaluator = (aggregates.get("evaluators") or {}).get(name) or {}
    return point(evaluator.get("pass_rate")), False
