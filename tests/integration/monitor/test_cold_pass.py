"""The cold monitor pass (issue 12 item 6): its shortcuts never change a result.

A drift reference missing from every cache is summarised for its feature's whole family
from one scan and persisted; a worker pass bounds the time it spends on that and leaves
the remaining drift monitors due. Each summary must equal the one a scan of its feature
alone gives; the cold pass, a warm pass and a restarted process's pass (summaries read
back from ``drift_references``) must observe the same; and a pass with no budget left
defers monitors without failing them, until later passes have evaluated every one.
Anomaly monitors' closed series buckets are persisted in ``monitor_series_buckets`` and
their scans charged to the same budget: cold, warm and restarted observations agree too.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import delete, select
from tests.support.monitor import MonitorApi

from watchkeep.devtools.synthetic_calls import Traffic
from watchkeep.monitor.drift import summarise_categorical, summarise_numeric
from watchkeep.monitor.drift_service import DriftService, ReferenceSpec, reference_budget
from watchkeep.monitor.evaluate import MonitorEvaluator, Observation, PassCache
from watchkeep.monitor.features import FAMILIES, FeatureLoader, FeatureRequest
from watchkeep.monitor.metric_queries import MetricFilter
from watchkeep.monitor.spec import MonitorSpec
from watchkeep.monitor.wiring import build_monitoring
from watchkeep.store.tables import drift_references, monitor_series_buckets

NS = 1_000_000_000
HOUR = 3600 * NS
FEATURES = ["latency_ms", "output_tokens", "model", "finish_reason", "response_length", "cost_usd"]
FILTERS: list[dict[str, str]] = [{}, {"model": "gpt-4o-mini"}]


def fill(mon: MonitorApi, now: int) -> None:
    """Three hours of calls, the last one a little slower, wordier and more often llama."""
    mon.fill(900, now - 3 * HOUR, now - HOUR, Traffic(), seed=1)
    shifted = Traffic(latency_median_ms=900.0, models={"gpt-4o-mini": 0.5, "llama-3.1-8b": 0.5})
    mon.fill(400, now - HOUR, now, shifted, seed=2)


def specs() -> list[MonitorSpec]:
    drift = [
        {
            "name": f"drift-{feature}-{i}",
            "kind": "drift",
            "feature": feature,
            "filter": f,
            "window": "1h",
            "reference": {"duration": "2h", "offset": "1s", "refresh": "1h"},
        }
        for feature in FEATURES
        for i, f in enumerate(FILTERS)
    ]
    metric = [
        {"name": "calls", "kind": "metric", "metric": "requests", "window": "1h", "condition": {"alert": 1e9}}
    ]
    anomaly = [
        {
            "name": f"anomaly-{name}-{method}-{i}",
            "kind": "anomaly",
            "metric": name,
            "filter": f,
            "window": "10m",
            "bucket": "10m",
            "reference": {"duration": "2h"},
            "anomaly_method": method,
        }
        for name in ("error_rate", "latency_p99_ms", "request_rate", "cost_usd", "ttft_p90_ms")
        for i, f in enumerate(FILTERS)
        for method in ("robust_z", "ewma")
    ]
    return [MonitorSpec.model_validate(s) for s in [*drift, *metric, *anomaly]]


def evaluator_of(mon: MonitorApi, *, fresh: bool) -> MonitorEvaluator:
    """An evaluator; ``fresh``: a new process's services on the same store."""
    m = build_monitoring(mon.services.engine, CollectorRegistry()) if fresh else mon.services.monitoring
    return MonitorEvaluator(m.metrics, m.quality, m.drift, m.resources)


def observe(
    mon: MonitorApi,
    now: int,
    *,
    fresh: bool,
    evaluator: MonitorEvaluator | None = None,
    planned: bool = False,
) -> dict[str, Observation]:
    """Every spec's observation at ``now``; ``planned``: as one worker pass (current drift
    values loaded per feature family), else each monitor alone."""
    evaluator = evaluator or evaluator_of(mon, fresh=fresh)
    if not planned:
        return {s.name: evaluator.evaluate(mon.project_id, s, now) for s in specs()}
    cache = PassCache()
    evaluator.plan(cache, [(mon.project_id, s) for s in specs()])
    return {s.name: evaluator.evaluate(mon.project_id, s, now, cache) for s in specs()}


def test_a_family_scan_summarises_each_feature_as_its_own_scan(mon: MonitorApi) -> None:
    now = time.time_ns() // HOUR * HOUR
    fill(mon, now)
    engine = mon.services.engine
    loader = FeatureLoader(engine)
    reference = ReferenceSpec(start_ns=now - 3 * HOUR, end_ns=now - HOUR)
    for f in (MetricFilter(), MetricFilter(model="gpt-4o-mini")):
        service = DriftService(engine)  # empty caches: the first request scans the whole family
        for family in FAMILIES:
            for feature in family:
                req = FeatureRequest(feature, f)
                summary, _ = service.reference(mon.project_id, req, reference)
                alone = loader.load(mon.project_id, req, reference.start_ns or 0, reference.end_ns or 0)
                expected = (
                    summarise_numeric(np.asarray(alone, dtype=float))
                    if req.kind == "numeric"
                    else summarise_categorical(alone)
                ).to_json()
                assert summary == expected, (feature, f)
    with engine.connect() as conn:
        stored = conn.execute(
            select(drift_references.c.cache_key).where(drift_references.c.project_id == mon.project_id)
        ).all()
    assert len(stored) == 2 * sum(len(family) for family in FAMILIES)


def test_a_family_load_gives_each_feature_its_own_load(mon: MonitorApi) -> None:
    now = time.time_ns() // HOUR * HOUR
    fill(mon, now)
    loader = FeatureLoader(mon.services.engine)
    for f in (MetricFilter(), MetricFilter(model="gpt-4o-mini")):
        for family in FAMILIES:
            together = loader.load_many(mon.project_id, f, family, now - HOUR, now)
            for feature in family:
                alone = loader.load(mon.project_id, FeatureRequest(feature, f), now - HOUR, now)
                assert len(alone) > 0
                # the same values; their order is the plan's (neither query sorts), and a
                # planner may read one column through an index and several from the table
                assert sorted(together[feature]) == sorted(alone), (feature, f)


def test_cold_warm_and_restarted_passes_observe_the_same(mon: MonitorApi) -> None:
    now = time.time_ns() // HOUR * HOUR + 5 * NS
    fill(mon, now)
    evaluator = evaluator_of(mon, fresh=False)
    cold = observe(mon, now, fresh=False, evaluator=evaluator, planned=True)
    warm = observe(mon, now, fresh=False, evaluator=evaluator)  # closed buckets from memory
    with mon.services.engine.connect() as conn:
        stored = conn.execute(
            select(monitor_series_buckets.c.series_key).where(
                monitor_series_buckets.c.project_id == mon.project_id
            )
        ).all()
    assert len({key for (key,) in stored}) == len(FILTERS)  # one series per filter (10 min buckets)
    with reference_budget(0.0) as spent:
        spent.computed = 1  # any scan of a reference or of closed buckets would now be deferred
        restarted = observe(mon, now, fresh=True)  # ... so everything is read back from the store
    assert cold == warm == restarted
    drifted = [name for name, seen in cold.items() if name.startswith("drift-") and seen.value is not None]
    assert len(drifted) == len(FEATURES) * len(FILTERS)
    assert cold["drift-latency_ms-0"].level.value == "ALERT"  # the shift is seen, not just repeated
    anomalies = [seen for name, seen in cold.items() if name.startswith("anomaly-")]
    assert all(seen.value is not None for seen in anomalies)


def test_a_spent_budget_defers_drift_and_anomaly_monitors_until_later_passes(mon: MonitorApi) -> None:
    for spec in specs():
        mon.services.monitoring.monitors.upsert(mon.project_id, spec)
    now = time.time_ns() + NS  # every monitor due
    fill(mon, now)
    expected = observe(mon, now, fresh=True)  # an unbounded evaluation of the same store
    with mon.services.engine.begin() as conn:  # ... whose summaries the worker must not find
        conn.execute(delete(drift_references).where(drift_references.c.project_id == mon.project_id))
        conn.execute(
            delete(monitor_series_buckets).where(monitor_series_buckets.c.project_id == mon.project_id)
        )
    worker = build_monitoring(mon.services.engine, CollectorRegistry()).worker
    worker.reference_budget_s = 0.0  # one reference or series scan a pass
    passes: list[Any] = [worker.run_once(now)]  # (other tests' monitors on this store count too)
    while passes[-1].deferred and len(passes) < 50:
        passes.append(worker.run_once(now))
    first = passes[0]
    assert first.deferred > 0
    assert first.references_built == 1
    assert passes[-1].deferred == 0
    rows = mon.services.monitoring.monitors.all(mon.project_id)
    assert len(rows) == len(specs())
    for row in rows:  # each evaluated, at this ``now``, with the unbounded result
        assert row.last_evaluated_at_unix_nano == now, row.spec.name
        want = expected[row.spec.name].value  # PostgreSQL may sum the same floats in another order
        assert row.last_value == (want if want is None else pytest.approx(want, rel=1e-9)), row.spec.name
        assert row.last_message == expected[row.spec.name].message
