"""The canary worker's pure parts: metric names and their defaults, the look's window, the
shadow predicate on both SQL dialects, and a worker that is turned off."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import column, create_engine, literal, select
from sqlalchemy.dialects import postgresql, sqlite

from watchkeep.registry.canary_figures import (
    MAX_WINDOW_NS,
    NS,
    SETTLE_NS,
    HasAttribute,
    default_policy,
    metric_rule,
    window_end,
)
from watchkeep.registry.canary_repository import CanaryRepository
from watchkeep.registry.canary_worker import CanaryWorker
from watchkeep.registry.repository import RegistryRepository


def test_metric_names_take_their_defaults_and_unknown_ones_are_refused() -> None:
    error_rate = metric_rule("error_rate")
    assert (error_rate.kind, error_rate.direction, error_rate.tolerance) == (
        "proportion",
        "lower_is_better",
        0.02,
    )
    latency = metric_rule("latency_ms")
    assert (latency.kind, latency.tolerance) == ("mean", 100.0)
    score = metric_rule("score:helpful")
    assert (score.kind, score.direction) == ("proportion", "higher_is_better")
    mean_score = metric_rule("score:quality", kind="mean", tolerance=0.3)
    assert (mean_score.kind, mean_score.tolerance) == ("mean", 0.3)
    for bad in ("p99", "score:", "Error_rate"):
        with pytest.raises(ValueError, match="unknown canary metric"):
            metric_rule(bad)
    with pytest.raises(ValueError, match="is a mean"):
        metric_rule("latency_ms", kind="proportion")
    assert [m.name for m in default_policy().metrics] == ["error_rate", "latency_ms"]


def test_a_look_closes_its_window_a_settle_before_now_and_never_goes_back() -> None:
    watermark = 1_000 * NS
    assert window_end(watermark, watermark + 10 * NS) == watermark + 10 * NS - SETTLE_NS
    assert window_end(watermark, watermark + NS) == watermark  # nothing settled yet: no window
    assert window_end(watermark, watermark + 10 * MAX_WINDOW_NS) == watermark + MAX_WINDOW_NS


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [(sqlite.dialect(), "json_type(attrs"), (postgresql.dialect(), "(attrs) ->")],
)
def test_the_shadow_predicate_compiles_per_dialect(dialect: Any, expected: str) -> None:
    sql = str(HasAttribute(column("attrs"), "watchkeep.gateway.shadow_of").compile(dialect=dialect))
    assert expected in sql


def test_the_shadow_predicate_reads_sqlite_json() -> None:
    engine = create_engine("sqlite://")
    with engine.connect() as conn:
        for attrs, found in (
            ('{"watchkeep.gateway.shadow_of": "a"}', True),
            ('{"x": 1}', False),
            ("{}", False),
        ):
            got = conn.execute(
                select(HasAttribute(literal(attrs), "watchkeep.gateway.shadow_of"))
            ).scalar_one()
            assert bool(got) is found


def test_a_worker_with_interval_zero_starts_no_thread() -> None:
    engine = create_engine("sqlite://")
    worker = CanaryWorker(engine, RegistryRepository(engine), CanaryRepository(engine), interval_s=0)
    worker.start()
    assert not any(t.name == "watchkeep-canary-worker" for t in threading.enumerate())
    worker.stop()
