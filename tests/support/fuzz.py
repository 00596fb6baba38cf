"""How many examples a property or schema test draws: its budget times ``WATCHKEEP_FUZZ_SCALE``.

``make test`` runs the budgets written beside each test, sized so the whole suite fits its
30 minutes; every run draws new examples (the seeds are random), so coverage accumulates
over CI runs. ``make fuzz`` runs the same tests with ten times the budgets, for a change to a
decoder or the API's schema. The scale is read once, when the tests are collected.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

SCALE_ENV = "WATCHKEEP_FUZZ_SCALE"


def _scale() -> float:
    raw = os.environ.get(SCALE_ENV, "1")
    try:
        scale = float(raw)
    except ValueError:
        raise ValueError(f"{SCALE_ENV} must be a number, not {raw!r}") from None
    if not scale > 0:
        raise ValueError(f"{SCALE_ENV} must be above 0, not {raw!r}")
    return scale


SCALE = _scale()


def examples(budget: int) -> int:
    """``budget`` examples scaled by ``WATCHKEEP_FUZZ_SCALE``, at least one."""
    return max(1, round(budget * SCALE))


def property_settings(budget: int, *suppress: HealthCheck) -> settings:
    """No deadline (the machine may be shared) and ``budget`` scaled examples."""
    return settings(
        max_examples=examples(budget),
        deadline=None,
        suppress_health_check=list(suppress or (HealthCheck.too_slow,)),
    )
