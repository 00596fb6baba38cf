"""A run's figures, each with its interval, as one JSON-able dict (stored on the run).

Shape (every estimate is ``{"value", "low", "high", "n", "method"}``; a section with
nothing to say is ``null``):

- ``n_cases``, ``n_items``, ``n_scored``; ``confidence``
- ``errors``: ``{"total", "rate", "by_kind": {kind: count}}``
- ``pass_rate``: over original items (no perturbation, not a probe), Wilson
- ``evaluators``: ``{name: {"pass_rate", "value" (Student t), "errors", "n"}}`` (original items)
- ``classification``: accuracy, macro F1 and per-class precision/recall/F1 from the
  ``predicted``/``expected`` details of scores (``monitor.stats.classification_report``)
- ``judge_noise``: mean of scores' ``details.spread`` (a judge's repeats disagreeing)
- ``consistency``: ``{"agreement", "pass_hat_n"}`` when an item was repeated (``evals.consistency``)
- ``invariance``: ``{kind: estimate, "overall": estimate}`` when variants ran
- ``adversarial``: ``{"asr", "families": {family: {"asr", "n"}}, "by_severity"}``: attack
  success rate = share of probes that did not pass their detector (Wilson)
- ``latency_ms``: ``{"p50", "p95", "mean", "n"}``; ``usage``: ``{"cost_usd", "input_tokens",
  "output_tokens", "cached"}``
"""

from __future__ import annotations

import functools
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from watchkeep.evals.adversarial.suite import all_probes
from watchkeep.evals.consistency import (
    agreement_rate,
    invariance,
    is_original,
    is_probe,
    pass_hat_n,
)
from watchkeep.evals.model import ItemResult
from watchkeep.monitor.stats import Estimate, classification_report, mean_interval, wilson


def _est(e: Estimate) -> dict[str, Any]:
    return asdict(e)


def _rate(flags: Sequence[bool], confidence: float) -> dict[str, Any]:
    return _est(wilson(sum(flags), len(flags), confidence))


def _evaluators(originals: Sequence[ItemResult], confidence: float) -> dict[str, Any]:
    passes: dict[str, list[bool]] = defaultdict(list)
    values: dict[str, list[float]] = defaultdict(list)
    errors: Counter[str] = Counter()
    for r in originals:
        for name, s in r.scores.items():
            if s.error is not None:
                errors[name] += 1
            if s.passed is not None:
                passes[name].append(bool(s.passed))
            if s.value is not None and math.isfinite(s.value):
                values[name].append(float(s.value))
    names = sorted(set(passes) | set(values) | set(errors))
    return {
        name: {
            "pass_rate": _rate(passes[name], confidence),
            "value": _est(mean_interval(values[name], confidence)),
            "errors": errors[name],
            "n": len(passes[name]),
        }
        for name in names
    }


def _classification(originals: Iterable[ItemResult], confidence: float) -> dict[str, Any] | None:
    y_true: list[str] = []
    y_pred: list[str] = []
    for r in originals:
        for s in r.scores.values():
            d = s.details or {}
            if "predicted" in d and "expected" in d and d["expected"] is not None:
                y_true.append(str(d["expected"]))
                y_pred.append(str(d["predicted"]))
                break  # one label pair per result
    if not y_true:
        return None
    rep = classification_report(y_true, y_pred, confidence=confidence)
    return {
        "n": rep.n,
        "labels": rep.labels,
        "confusion": rep.confusion,
        "accuracy": _est(rep.accuracy),
        "macro_f1": _est(rep.macro_f1),
        "per_class": {
            c.label: {
                "precision": _est(c.precision),
                "recall": _est(c.recall),
                "f1": _est(c.f1),
                "support": c.support,
            }
            for c in rep.per_class
        },
    }


def _judge_noise(results: Iterable[ItemResult], confidence: float) -> dict[str, Any] | None:
    spreads = [
        float(s.details["spread"])
        for r in results
        for s in r.scores.values()
        if s.details and isinstance(s.details.get("spread"), (int, float))
    ]
    return _est(mean_interval(spreads, confidence)) if spreads else None


@functools.cache
def _probe_severities() -> dict[str, str]:
    """Severity of every built-in probe by id (result rows carry the probe id as item key)."""
    return {p.id: p.severity for p in all_probes()}


def _severity(r: ItemResult) -> str | None:
    for s in r.scores.values():
        if s.details and s.details.get("severity") is not None:
            return str(s.details["severity"])
    return _probe_severities().get(r.item_key)


def _adversarial(probes: Sequence[ItemResult], confidence: float) -> dict[str, Any] | None:
    scored = [(r, r.passed) for r in probes]
    scored = [(r, p) for r, p in scored if p is not None]
    if not probes:
        return None
    fams: dict[str, list[bool]] = defaultdict(list)
    sev: dict[str, list[bool]] = defaultdict(list)
    for r, passed in scored:
        fams[r.family or ""].append(not passed)
        level = _severity(r)
        if level is not None:
            sev[level].append(not passed)
    return {
        "asr": _rate([not p for _, p in scored], confidence),
        "n_probes": len(probes),
        "errors": len(probes) - len(scored),
        "families": {f: {"asr": _rate(v, confidence), "n": len(v)} for f, v in sorted(fams.items())},
        "by_severity": {s: _rate(v, confidence) for s, v in sorted(sev.items())},
    }


def _latency(results: Iterable[ItemResult]) -> dict[str, Any]:
    lat = np.array([r.latency_ms for r in results if r.latency_ms is not None], dtype=float)
    if lat.size == 0:
        return {"p50": None, "p95": None, "mean": None, "n": 0}
    p50, p95 = np.percentile(lat, [50, 95])
    return {"p50": float(p50), "p95": float(p95), "mean": float(lat.mean()), "n": int(lat.size)}


def _usage(results: Sequence[ItemResult]) -> dict[str, Any]:
    return {
        "cost_usd": float(sum(r.cost_usd or 0.0 for r in results)),
        "input_tokens": int(sum(r.input_tokens or 0 for r in results)),
        "output_tokens": int(sum(r.output_tokens or 0 for r in results)),
        "cached": sum(r.cached for r in results),
    }


def aggregate(results: Sequence[ItemResult], *, confidence: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """Every figure of one run (module docstring for the shape); pure and deterministic.

    ``seed`` is accepted for figures that resample; none of today's does, so it is unused.
    """
    del seed
    originals = [r for r in results if is_original(r)]
    scored = [r for r in originals if r.passed is not None]
    errors = Counter(r.error_kind or "unknown" for r in results if r.error is not None)
    repeated = any(r.repeat > 0 for r in originals)
    has_variants = any(r.variant != "" for r in results)
    consistency = None
    if repeated:
        consistency = {
            "agreement": _est(agreement_rate(results, confidence)),
            "pass_hat_n": pass_hat_n(results, confidence),
        }
    inv = invariance(results, confidence) if has_variants else {}
    return {
        "confidence": confidence,
        "n_cases": len(results),
        "n_items": len({r.item_key for r in results}),
        "n_scored": len(scored),
        "errors": {
            "total": sum(errors.values()),
            "rate": sum(errors.values()) / len(results) if results else None,
            "by_kind": dict(sorted(errors.items())),
        },
        "pass_rate": _rate([bool(r.passed) for r in scored], confidence),
        "evaluators": _evaluators(scored, confidence),
        "classification": _classification(scored, confidence),
        "judge_noise": _judge_noise(results, confidence),
        "consistency": consistency,
        "invariance": {k: _est(v) for k, v in inv.items()} or None,
        "adversarial": _adversarial([r for r in results if is_probe(r)], confidence),
        "latency_ms": _latency(results),
        "usage": _usage(results),
    }
