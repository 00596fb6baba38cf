"""The canary worker on both databases: the figures of a window of spans, rollback on a
regression, promotion of a null candidate, shadow mode, stopping, two workers counting a
window once, refusals and project isolation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError
from tests.support.canary_data import add_spans
from tests.support.tenant import unique

from watchkeep.registry.canary import CanaryPolicy, Counts, MetricRule, Moments
from watchkeep.registry.canary_figures import NS, SETTLE_NS, Window, default_policy, figures
from watchkeep.registry.canary_repository import Canary, CanaryError, CanaryRepository
from watchkeep.registry.canary_worker import CanaryWorker
from watchkeep.registry.repository import RegistryRepository
from watchkeep.store.engine import make_engine
from watchkeep.store.projects import ProjectRepository
from watchkeep.store.registry_tables import canaries


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def _project(engine: Engine) -> int:
    return ProjectRepository(engine).get_or_create(unique("canary")).id


def _setup(engine: Engine) -> tuple[int, RegistryRepository, CanaryRepository, CanaryWorker]:
    project = _project(engine)
    registry = RegistryRepository(engine)
    for i in range(2):
        registry.register_model(project, "m", backend="mock", params={"temperature": i / 10})
    registry.move_alias(project, "model", "m", "production", 1, actor="t")
    registry.move_alias(project, "model", "m", "canary", 2, actor="t")
    repo = CanaryRepository(engine)
    return project, registry, repo, CanaryWorker(engine, registry, repo, interval_s=0)


def _start(repo: CanaryRepository, project: int, policy: CanaryPolicy, mode: str = "live") -> Canary:
    return repo.start(
        project,
        name="m",
        route="chat",
        baseline_alias="production",
        candidate_alias="canary",
        mode=mode,  # type: ignore[arg-type]
        share=0.5,
        policy=policy,
        actor="alice",
    )


def test_figures_count_each_arm_of_the_window_only(engine: Engine) -> None:
    project, other = _project(engine), _project(engine)
    t0 = 10_000 * NS
    add_spans(engine, project, t0 + 1, 10, version="m@1", errors=2, latency=100.0, score=("helpful", 1.0))
    add_spans(engine, project, t0 + 2, 5, version="m@2", errors=1, latency=300.0, score=("helpful", 0.0))
    add_spans(engine, project, t0 + 3, 4, version="m@2", errors=4, shadow=True)  # a shadow copy: not live
    add_spans(engine, project, t0 + 4, 7, version="m@2", route="other")
    add_spans(engine, project, t0 + 5, 7, version="m@3")
    add_spans(engine, other, t0 + 6, 7, version="m@2")
    add_spans(engine, project, t0, 7, version="m@2")  # at the watermark: counted by the last look
    add_spans(engine, project, t0 + 100, 7, version="m@2")  # after the window
    policy = CanaryPolicy(
        (
            MetricRule("error_rate"),
            MetricRule("latency_ms", "mean", tolerance=100.0),
            MetricRule("score:helpful", "proportion", "higher_is_better", 0.05),
        )
    )
    window = Window(project, "chat", "m@1", "m@2", False, t0, t0 + 50)
    with engine.connect() as conn:
        batch = figures(conn, window, policy)
    assert batch["error_rate"] == (Counts(10, 2), Counts(5, 1))
    base, cand = batch["latency_ms"]
    assert isinstance(base, Moments)
    assert isinstance(cand, Moments)
    assert (base.n, base.mean, cand.n, cand.mean) == (10, 100.0, 5, 300.0)
    assert base.m2 == pytest.approx(0.0, abs=1e-6)
    assert batch["score:helpful"] == (Counts(10, 10), Counts(5, 0))

    shadow = Window(project, "chat", "m@1", "m@2", True, t0, t0 + 50)
    with engine.connect() as conn:
        shadow_batch = figures(conn, shadow, policy)
    assert shadow_batch["error_rate"] == (Counts(10, 2), Counts(4, 4))
    assert "score:helpful" in shadow_batch  # the baseline's scores are there; no candidate ones
    assert shadow_batch["score:helpful"][1] == Counts(0, 0)


def _looks(
    engine: Engine, worker: CanaryWorker, canary: Canary, project: int, looks: int, cand_errors: int
) -> list[str]:
    """Feed ``looks`` batches of 100 calls per arm (1 baseline error each) and run the worker."""
    actions: list[str] = []
    at = canary.watermark_ns
    for _ in range(looks):
        at += NS
        add_spans(engine, project, at, 100, version="m@1", errors=1)
        add_spans(engine, project, at, 100, version="m@2", errors=cand_errors)
        done = worker.run_once(now_ns=at + SETTLE_NS)
        mine = [look for look in done if look.canary_id == canary.id]
        if mine:
            actions.append(mine[0].decision.action)
            if mine[0].decision.action != "continue":
                break
    return actions


def test_a_regression_is_rolled_back_onto_the_baseline_version(engine: Engine) -> None:
    project, registry, repo, worker = _setup(engine)
    canary = _start(repo, project, CanaryPolicy((MetricRule("error_rate", tolerance=0.02),), min_samples=100))
    assert (canary.baseline_version, canary.candidate_version, canary.status) == (1, 2, "running")

    actions = _looks(engine, worker, canary, project, 30, cand_errors=20)
    assert actions[-1] == "rollback"
    assert all(a == "continue" for a in actions[:-1])
    ended = repo.get(project, canary.id)
    assert ended is not None
    assert ended.status == "rolled_back"
    assert ended.reason is not None
    assert "error_rate" in ended.reason
    assert registry.aliases(project, "model", "m") == {"production": 1, "canary": 1}
    event = registry.events(project, "model", "m", "canary")[-1]
    assert (event.kind, event.actor, event.from_version, event.to_version) == (
        "auto_rollback",
        "canary-worker",
        2,
        1,
    )
    assert event.reason is not None
    assert "error_rate" in event.reason
    later = worker.run_once(now_ns=ended.watermark_ns + 100 * NS)
    assert canary.id not in [look.canary_id for look in later]  # ended: no more looks


def test_a_null_candidate_is_promoted_at_max_samples(engine: Engine) -> None:
    project, registry, repo, worker = _setup(engine)
    policy = CanaryPolicy((MetricRule("error_rate", tolerance=0.001),), min_samples=100, max_samples=300)
    canary = _start(repo, project, policy)
    actions = _looks(engine, worker, canary, project, 10, cand_errors=1)
    assert actions == ["continue", "continue", "promote"]
    assert registry.aliases(project, "model", "m") == {"production": 2, "canary": 2}
    event = registry.events(project, "model", "m", "production")[-1]
    assert (event.kind, event.to_version) == ("promote", 2)
    assert event.reason is not None
    assert "max_samples" in event.reason
    ended = repo.get(project, canary.id)
    assert ended is not None
    assert ended.status == "promoted"


def test_shadow_mode_counts_the_shadow_copies_as_the_candidate(engine: Engine) -> None:
    project, _, repo, worker = _setup(engine)
    canary = _start(repo, project, default_policy(), mode="shadow")
    at = canary.watermark_ns + NS
    add_spans(engine, project, at, 30, version="m@1", errors=3)
    add_spans(engine, project, at, 20, version="m@2", errors=5, shadow=True)
    add_spans(engine, project, at, 50, version="m@2")  # served by the candidate: not this canary's arm
    worker.run_once(now_ns=at + SETTLE_NS)
    seen = repo.get(project, canary.id)
    assert seen is not None
    error_rate = seen.state.metrics["error_rate"]
    assert (error_rate.baseline, error_rate.candidate) == (Counts(30, 3), Counts(20, 5))
    assert seen.watermark_ns == at
    assert seen.state.looks == 1


def test_two_workers_count_a_window_once(engine: Engine) -> None:
    project, registry, repo, worker = _setup(engine)
    other = CanaryWorker(engine, registry, repo, interval_s=0)
    canary = _start(repo, project, default_policy())
    at = canary.watermark_ns + NS
    add_spans(engine, project, at, 40, version="m@1")
    add_spans(engine, project, at, 40, version="m@2")
    assert worker.look(canary, at + SETTLE_NS) is not None
    assert other.look(canary, at + SETTLE_NS) is None  # read the same watermark: loses, skips
    seen = repo.get(project, canary.id)
    assert seen is not None
    assert seen.state.metrics["error_rate"].candidate == Counts(40, 0)
    assert seen.state.looks == 1


def test_stop_refusals_moved_aliases_and_isolation(engine: Engine) -> None:
    project, registry, repo, worker = _setup(engine)
    stranger = _project(engine)
    policy = default_policy(("helpful",))
    assert [m.name for m in policy.metrics] == ["error_rate", "latency_ms", "score:helpful"]
    with pytest.raises(CanaryError, match="no alias"):
        repo.start(
            project,
            name="m",
            route="chat",
            baseline_alias="production",
            candidate_alias="nope",
            mode="live",
            share=0.1,
            policy=policy,
            actor="a",
        )
    with pytest.raises(CanaryError, match="both point"):
        repo.start(
            project,
            name="m",
            route="chat",
            baseline_alias="production",
            candidate_alias="production",
            mode="live",
            share=0.1,
            policy=policy,
            actor="a",
        )
    with pytest.raises(CanaryError):  # the model is not the stranger's
        _start(repo, stranger, policy)
    canary = _start(repo, project, policy)
    with pytest.raises(CanaryError, match="already running"):
        _start(repo, project, policy)
    assert repo.get(stranger, canary.id) is None
    assert repo.list(stranger) == []
    with pytest.raises(LookupError):
        repo.stop(stranger, canary.id, actor="mallory")
    assert [c.id for c in repo.list(project, name="m", status="running")] == [canary.id]

    stopped = repo.stop(project, canary.id, actor="alice", reason="enough")
    assert (stopped.status, stopped.reason) == ("stopped", "stopped by alice: enough")
    assert registry.aliases(project, "model", "m") == {"production": 1, "canary": 2}
    with pytest.raises(CanaryError, match="not running"):
        repo.stop(project, canary.id, actor="alice")

    again = _start(repo, project, policy)
    registry.move_alias(project, "model", "m", "canary", 1, actor="bob")
    looks = worker.run_once(now_ns=again.watermark_ns + 10 * NS)
    assert again.id not in [look.canary_id for look in looks]
    ended = repo.get(project, again.id)
    assert ended is not None
    assert ended.status == "stopped"
    assert ended.reason is not None
    assert "'canary' was moved" in ended.reason


def test_the_store_keeps_one_running_canary_per_model_and_route(engine: Engine) -> None:
    """Two starts that both passed the read check: the partial unique index refuses the second."""
    project, _, repo, _ = _setup(engine)
    first = _start(repo, project, default_policy())
    c = canaries.c
    with engine.connect() as conn:
        row = dict(conn.execute(select(canaries).where(c.id == first.id)).mappings().one())
    del row["id"]
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(canaries).values(**row))
    with engine.begin() as conn:  # an ended one beside it is fine
        conn.execute(insert(canaries).values(**{**row, "status": "stopped"}))
    repo.stop(project, first.id, actor="alice")
    assert _start(repo, project, default_policy()).status == "running"
