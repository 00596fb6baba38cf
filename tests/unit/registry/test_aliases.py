"""The alias event log: projection, history, rollback targets, planned moves and log checks."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.fuzz import examples
from watchkeep.registry.aliases import (
    AliasError,
    AliasEvent,
    AliasLogError,
    EventKind,
    NoRollbackTarget,
    history,
    plan_move,
    plan_rollback,
    project,
    rollback_target,
    version_at,
)

NAME = "bot"
KNOWN = frozenset(range(1, 7))


def move(
    log: list[AliasEvent],
    to: int | None,
    alias: str = "production",
    kind: EventKind = "move",
    at: int | None = None,
) -> AliasEvent:
    event = plan_move(
        log,
        alias,
        to,
        name=NAME,
        known_versions=KNOWN,
        actor="ann",
        reason="why",
        kind=kind,
        at_ns=len(log) if at is None else at,
    )
    log.append(event)
    return event


def rollback(log: list[AliasEvent], alias: str = "production", automatic: bool = False) -> AliasEvent:
    event = plan_rollback(
        log, alias, name=NAME, actor="worker", reason="regressed", at_ns=len(log), automatic=automatic
    )
    log.append(event)
    return event


def test_moves_record_from_to_and_seq() -> None:
    log: list[AliasEvent] = []
    first = move(log, 1)
    second = move(log, 2, kind="promote")
    assert (first.from_version, first.to_version, first.seq) == (None, 1, 1)
    assert (second.from_version, second.to_version, second.seq, second.kind) == (1, 2, 2, "promote")
    assert (second.actor, second.reason) == ("ann", "why")
    assert project(log) == {"production": 2}


def test_project_many_aliases_and_removal() -> None:
    log: list[AliasEvent] = []
    move(log, 1)
    move(log, 2, alias="staging")
    move(log, 3, alias="canary")
    move(log, None, alias="canary", kind="remove")
    assert project(log) == {"production": 1, "staging": 2}
    assert [e.seq for e in history(log, "canary")] == [1, 2]
    assert [e.alias for e in history(log)] == ["production", "staging", "canary", "canary"]
    assert history(log, "nothing") == []


def test_rollback_goes_back_and_does_not_bounce() -> None:
    log: list[AliasEvent] = []
    move(log, 1)
    move(log, 2)
    assert rollback_target(log, "production") == 1
    event = rollback(log)
    assert (event.kind, event.from_version, event.to_version, event.seq) == ("rollback", 2, 1, 3)
    assert project(log) == {"production": 1}
    with pytest.raises(NoRollbackTarget):
        rollback_target(log, "production")
    with pytest.raises(NoRollbackTarget):
        rollback(log)


def test_rollback_walks_back_through_the_stack_skipping_rolled_back_versions() -> None:
    log: list[AliasEvent] = []
    for v in (1, 2, 3):
        move(log, v)
    assert rollback(log).to_version == 2
    assert rollback(log, automatic=True).kind == "auto_rollback"
    assert project(log) == {"production": 1}
    move(log, 4)  # a new move after rollbacks: its undo goes to 1, never to 3 or 2
    assert rollback_target(log, "production") == 1


def test_version_moved_to_again_counts_again() -> None:
    log: list[AliasEvent] = []
    move(log, 1)
    move(log, 2)
    rollback(log)
    move(log, 2)  # re-promoted on purpose
    move(log, 3)
    assert rollback(log).to_version == 2
    assert rollback(log).to_version == 1


def test_rollback_after_removal_restores_it() -> None:
    log: list[AliasEvent] = []
    move(log, 1)
    move(log, None, kind="remove")
    assert project(log) == {}
    assert rollback(log).to_version == 1
    assert project(log) == {"production": 1}


def test_rollback_skips_the_current_version() -> None:
    log: list[AliasEvent] = []
    move(log, 1)
    move(log, None, kind="remove")
    move(log, 1)  # stack [1], current 1
    with pytest.raises(NoRollbackTarget):
        rollback_target(log, "production")


def test_explicit_rollback_to_an_older_version_pops_through_it() -> None:
    log: list[AliasEvent] = []
    for v in (1, 2, 3, 4):
        move(log, v)
    move(log, 1, kind="rollback")
    with pytest.raises(NoRollbackTarget):
        rollback_target(log, "production")


def test_matched_explicit_rollback_pops_and_unmatched_leaves_the_stack() -> None:
    log: list[AliasEvent] = []
    for v in (1, 2, 3):
        move(log, v)
    move(log, 2, kind="rollback")  # stack [1, 2] -> [1]
    move(log, 3, kind="rollback")  # 3 was held but is not on the stack: stack stays [1]
    assert rollback_target(log, "production") == 1
    move(log, 4)  # forward: pushes 3 -> [1, 3]
    assert rollback_target(log, "production") == 3


@pytest.mark.parametrize(
    ("to", "kind", "message"),
    [
        (1, "move", "already points at 1"),
        (9, "move", "no version 9"),
        (None, "move", "kind 'remove'"),
        (2, "remove", "kind 'remove'"),
        (3, "rollback", "never pointed at 3"),
    ],
)
def test_plan_move_refuses(to: int | None, kind: EventKind, message: str) -> None:
    log: list[AliasEvent] = []
    move(log, 1)
    move(log, 2)
    move(log, 1)
    with pytest.raises(AliasError, match=message):
        move(log, to, kind=kind)


def test_plan_move_refuses_removing_an_absent_alias_and_a_missing_actor() -> None:
    with pytest.raises(AliasError, match="does not exist"):
        move([], None, kind="remove")
    with pytest.raises(AliasError, match="actor"):
        plan_move([], "production", 1, name=NAME, known_versions=KNOWN, actor="", reason=None, at_ns=0)
    with pytest.raises(ValueError, match="alias"):
        move([], 1, alias="Prod")


def test_concurrent_plans_collide_on_seq() -> None:
    log: list[AliasEvent] = []
    move(log, 1)
    a = plan_move(log, "production", 2, name=NAME, known_versions=KNOWN, actor="a", reason=None, at_ns=5)
    b = plan_move(log, "production", 3, name=NAME, known_versions=KNOWN, actor="b", reason=None, at_ns=5)
    assert (a.name, a.alias, a.seq) == (b.name, b.alias, b.seq)
    with pytest.raises(AliasLogError, match="seq"):
        project([*log, a, b])


def test_plan_move_ignores_other_names_events() -> None:
    other = plan_move([], "production", 1, name="other", known_versions={1}, actor="a", reason=None, at_ns=0)
    event = plan_move(
        [other], "production", 1, name=NAME, known_versions={1}, actor="a", reason=None, at_ns=0
    )
    assert (event.from_version, event.seq) == (None, 1)


def event(
    seq: int, frm: int | None, to: int | None, kind: EventKind = "move", name: str = NAME
) -> AliasEvent:
    return AliasEvent(name, "production", frm, to, "ann", None, kind, seq, seq)


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ([event(1, None, 1), event(3, 1, 2)], "expected seq 2"),
        ([event(1, None, 1), event(1, None, 2)], "expected seq 2"),
        ([event(1, None, 1), event(2, 3, 2)], "was at 1"),
        ([event(2, None, 1)], "expected seq 1"),
        ([event(1, None, 1), event(2, 1, 2, name="x")], "one name"),
    ],
)
def test_inconsistent_logs_are_refused(events: list[AliasEvent], message: str) -> None:
    with pytest.raises(AliasLogError, match=message):
        project(events)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"to_version": None}, "remove"),
        ({"kind": "remove"}, "remove"),
        ({"kind": "jump"}, "kind must be"),
        ({"from_version": 1}, "must change"),
        ({"seq": 0}, "seq"),
    ],
)
def test_event_refuses_bad_fields(kw: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {
        "name": NAME,
        "alias": "production",
        "from_version": None,
        "to_version": 1,
        "actor": "a",
        "reason": None,
        "kind": "move",
        "at_ns": 0,
        "seq": 1,
    }
    fields.update(kw)
    with pytest.raises(AliasError, match=message):
        AliasEvent(**fields)  # type: ignore[arg-type]


def test_version_at_reads_the_timeline() -> None:
    log: list[AliasEvent] = []
    move(log, 1, at=10)
    move(log, 2, at=20)
    move(log, None, kind="remove", at=30)
    assert [version_at(log, "production", t) for t in (5, 10, 15, 20, 29, 30)] == [None, 1, 1, 2, 2, None]


# --- properties over random logs --------------------------------------------------------

ALIASES = ("production", "staging")
Op = tuple[str, str, int]  # (operation, alias, version)
ops = st.lists(
    st.tuples(st.sampled_from(("move", "remove", "rollback")), st.sampled_from(ALIASES), st.integers(1, 6)),
    max_size=40,
)


def build(operations: Sequence[Op]) -> tuple[list[AliasEvent], dict[str, int]]:
    """Apply what the planner accepts; return the log and a replayed reference state."""
    log: list[AliasEvent] = []
    state: dict[str, int] = {}
    for i, (op, alias, version) in enumerate(operations):
        try:
            if op == "rollback":
                e = plan_rollback(log, alias, name=NAME, actor="w", reason=None, at_ns=i)
            else:
                to = None if op == "remove" else version
                kind: EventKind = "remove" if op == "remove" else "move"
                e = plan_move(
                    log,
                    alias,
                    to,
                    name=NAME,
                    known_versions=KNOWN,
                    actor="a",
                    reason=None,
                    kind=kind,
                    at_ns=i,
                )
        except AliasError:
            continue
        log.append(e)
        if e.to_version is None:
            state.pop(alias)
        else:
            state[alias] = e.to_version
    return log, state


@settings(max_examples=examples(300), deadline=None)
@given(ops, st.randoms(use_true_random=False))
def test_projection_equals_replay_in_any_order(operations: list[Op], rnd: random.Random) -> None:
    log, state = build(operations)
    assert project(log) == state
    assert project(history(log)) == state
    shuffled = list(log)
    rnd.shuffle(shuffled)
    assert project(shuffled) == state
    assert history(shuffled) == history(log)
    for alias in ALIASES:
        assert [e.seq for e in history(log, alias)] == list(range(1, len(history(log, alias)) + 1))


@settings(max_examples=examples(300), deadline=None)
@given(ops)
def test_rollback_only_targets_versions_the_alias_held(operations: list[Op]) -> None:
    log, state = build(operations)
    for alias in ALIASES:
        held = {e.to_version for e in history(log, alias)} - {None}
        try:
            target = rollback_target(log, alias)
        except NoRollbackTarget:
            continue
        assert target in held
        assert target != state.get(alias)


@settings(max_examples=examples(200), deadline=None)
@given(ops, st.sampled_from(ALIASES), st.integers(1, 6))
def test_forward_move_is_undone_by_one_rollback(operations: list[Op], alias: str, to: int) -> None:
    log, state = build(operations)
    before = state.get(alias)
    try:
        move(log, to, alias=alias)
    except AliasError:
        return
    if before is None:
        return
    assert rollback_target(log, alias) == before
    rollback(log, alias)
    assert project(log).get(alias) == before
