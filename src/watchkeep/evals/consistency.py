"""Consistency of a target: does it give the same verdict when asked again, or asked differently?

All three figures are over *verdicts* (``ItemResult.passed``), not output text: two
differently worded right answers agree, and a metric of text overlap would punish them.
Results that errored carry no verdict and are left out (the error counts show them).

- agreement rate: over items of the original variant with at least 2 scored repeats, the
  share whose repeats all gave the same verdict (Wilson interval; n = such items).
- pass^N: the share of items whose N repeats all passed (N = each item's scored repeats;
  items with an errored repeat are left out, reported as ``excluded``), next to pass@1,
  the mean per-item pass rate (Student t interval over items).
- invariance: per perturbation kind, the share of (item, repeat) pairs whose perturbed
  variant got the verdict the original got on the same repeat (Wilson); ``overall`` pools kinds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from typing import Any

from watchkeep.evals.model import ItemResult
from watchkeep.monitor.stats import DEFAULT_CONFIDENCE, Estimate, mean_interval, wilson


def is_original(r: ItemResult) -> bool:
    """An item as written: no perturbation and not an adversarial probe."""
    return r.variant == "" and r.family is None


def is_probe(r: ItemResult) -> bool:
    """An adversarial probe: a family, no perturbation."""
    return r.variant == "" and r.family is not None


def _verdicts_by_item(results: Iterable[ItemResult]) -> tuple[dict[str, list[bool]], set[str]]:
    """Original-variant verdicts per item (repeat order), and the items with an errored repeat."""
    by_item: dict[str, list[tuple[int, bool]]] = defaultdict(list)
    errored: set[str] = set()
    for r in results:
        if not is_original(r):
            continue
        passed = r.passed
        if passed is None:
            errored.add(r.item_key)
        else:
            by_item[r.item_key].append((r.repeat, passed))
    return {k: [p for _, p in sorted(v)] for k, v in by_item.items()}, errored


def agreement_rate(results: Sequence[ItemResult], confidence: float = DEFAULT_CONFIDENCE) -> Estimate:
    """Share of items (>= 2 scored repeats) whose repeats all gave the same verdict."""
    verdicts, _ = _verdicts_by_item(results)
    eligible = [v for v in verdicts.values() if len(v) >= 2]
    agree = sum(len(set(v)) == 1 for v in eligible)
    return wilson(agree, len(eligible), confidence)


def pass_hat_n(results: Sequence[ItemResult], confidence: float = DEFAULT_CONFIDENCE) -> dict[str, Any]:
    """pass^N (all repeats passed) and pass@1 (mean per-item pass rate), with intervals."""
    verdicts, errored = _verdicts_by_item(results)
    complete = {k: v for k, v in verdicts.items() if k not in errored}
    repeats = sorted({len(v) for v in complete.values()})
    all_passed = sum(all(v) for v in complete.values())
    rates = [sum(v) / len(v) for v in complete.values()]
    return {
        "n": len(complete),
        "repeats": repeats[-1] if repeats else 0,
        "min_repeats": repeats[0] if repeats else 0,
        "excluded": len(errored),
        "pass_hat_n": asdict(wilson(all_passed, len(complete), confidence)),
        "pass_at_1": asdict(mean_interval(rates, confidence)),
    }


def invariance(results: Sequence[ItemResult], confidence: float = DEFAULT_CONFIDENCE) -> dict[str, Estimate]:
    """Per perturbation kind (and ``overall``): share of variants that kept the original's verdict."""
    original: dict[tuple[str, int], bool] = {}
    for r in results:
        passed = r.passed
        if is_original(r) and passed is not None:
            original[(r.item_key, r.repeat)] = passed
    same: dict[str, list[bool]] = defaultdict(list)
    for r in results:
        if r.variant == "":
            continue
        passed = r.passed
        reference = original.get((r.item_key, r.repeat), original.get((r.item_key, 0)))
        if passed is None or reference is None:
            continue
        same[r.family or r.variant].append(passed == reference)
    out = {kind: wilson(sum(v), len(v), confidence) for kind, v in sorted(same.items())}
    if out:
        pooled = [x for v in same.values() for x in v]
        out["overall"] = wilson(sum(pooled), len(pooled), confidence)
    return out
