"""The alias event log: every alias move is an appended event; the current aliases are a projection.

Contract (pure; a later session stores events in a table with a unique (name, alias, seq)):

- An ``AliasEvent`` moves one alias of one name from ``from_version`` to ``to_version``
  (``None`` on either side: the alias did not exist / was removed). ``seq`` counts that
  alias's events from 1, so two writers planning from the same state produce the same seq
  and the second append fails on the unique constraint instead of silently overwriting.
- A log is consistent when, per alias, seqs run 1, 2, 3... and each event's ``from_version``
  is the previous event's ``to_version`` (``None`` before the first). Every reader checks
  this (``AliasLogError``), so a projection can never silently disagree with its history.
- ``project(events)`` is the fold of the log: alias -> version, removed aliases absent.
- ``history(events, alias=None)`` is the log in order: one alias by seq, or all by
  (at_ns, alias, seq).
- Rollback is an undo stack per alias. A forward event (move, promote, forced, remove) pushes
  the version it left; a rollback or auto_rollback to version t pops through the topmost t
  (if t is not on the stack, the stack is left alone). ``rollback_target`` is the top of the
  stack, skipping entries equal to the current version. So v1 -> v2 -> rollback (to v1)
  leaves nothing to roll back to: a second rollback refuses rather than bouncing back to
  v2, and v1 -> v2 -> v3, rollback, rollback gives v2 then v1. A version moved to again
  after being rolled back from counts again (that move was deliberate). The target is
  always a version the alias pointed at before.
- ``plan_move`` builds (never appends) the next event after validation: a no-op move, an
  unknown version, a removal of an absent alias, or a rollback to a version the alias never
  held is refused with ``AliasError``. The policy check (``registry.policy``) decides
  ``promote`` versus ``forced`` before this is called.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from watchkeep.registry.versions import validate_alias, validate_name

EventKind = Literal["move", "rollback", "forced", "remove", "promote", "auto_rollback"]
EVENT_KINDS: tuple[str, ...] = get_args(EventKind)
ROLLBACK_KINDS = frozenset({"rollback", "auto_rollback"})


class AliasError(ValueError):
    """A move that may not be made (the message says why)."""


class NoRollbackTarget(AliasError):
    """The alias has no earlier version to go back to."""


class AliasLogError(ValueError):
    """The events do not form a consistent log (a gap, a repeat or a broken chain)."""


@dataclass(frozen=True, slots=True)
class AliasEvent:
    """One append-only record: who moved which alias from where to where, why, and when."""

    name: str
    alias: str
    from_version: int | None
    to_version: int | None  # None: the alias was removed
    actor: str
    reason: str | None
    kind: EventKind
    at_ns: int
    seq: int

    def __post_init__(self) -> None:
        validate_name(self.name)
        validate_alias(self.alias)
        if self.kind not in EVENT_KINDS:
            raise AliasError(f"kind must be one of {', '.join(EVENT_KINDS)}, not {self.kind!r}")
        if (self.kind == "remove") != (self.to_version is None):
            raise AliasError("a 'remove' event, and only it, has no to_version")
        if self.from_version == self.to_version:
            raise AliasError(f"{self.alias} already points at {self.to_version}: a move must change it")
        if self.seq < 1:
            raise AliasError(f"seq counts from 1, not {self.seq}")


def _by_alias(events: Iterable[AliasEvent]) -> dict[str, list[AliasEvent]]:
    """The events of each alias in seq order, after checking the log is consistent."""
    grouped: dict[str, list[AliasEvent]] = {}
    names = set()
    for event in events:
        names.add(event.name)
        grouped.setdefault(event.alias, []).append(event)
    if len(names) > 1:
        raise AliasLogError(f"one log holds one name's events, not {sorted(names)}")
    for alias, chain in grouped.items():
        chain.sort(key=lambda e: e.seq)
        previous: int | None = None
        for expected_seq, event in enumerate(chain, start=1):
            if event.seq != expected_seq:
                raise AliasLogError(f"{alias}: expected seq {expected_seq}, found {event.seq}")
            if event.from_version != previous:
                raise AliasLogError(
                    f"{alias} seq {event.seq}: moves from {event.from_version} but the alias "
                    f"was at {previous}"
                )
            previous = event.to_version
    return grouped


def project(events: Iterable[AliasEvent]) -> dict[str, int]:
    """The current state: each existing alias and the version it points at."""
    current = {alias: chain[-1].to_version for alias, chain in _by_alias(events).items()}
    return {alias: v for alias, v in sorted(current.items()) if v is not None}


def history(events: Iterable[AliasEvent], alias: str | None = None) -> list[AliasEvent]:
    """Oldest first: one alias's events by seq, or every alias's by (at_ns, alias, seq)."""
    grouped = _by_alias(events)
    if alias is not None:
        return list(grouped.get(alias, []))
    merged = [e for chain in grouped.values() for e in chain]
    return sorted(merged, key=lambda e: (e.at_ns, e.alias, e.seq))


def _undo_stack(chain: Sequence[AliasEvent]) -> list[int]:
    stack: list[int] = []
    for event in chain:
        if event.kind in ROLLBACK_KINDS:
            if event.to_version in stack:
                top = len(stack) - 1 - stack[::-1].index(event.to_version)
                del stack[top:]
        elif event.from_version is not None:
            stack.append(event.from_version)
    return stack


def rollback_target(events: Iterable[AliasEvent], alias: str) -> int:
    """The version a rollback of ``alias`` moves to (module docstring); ``NoRollbackTarget`` if none."""
    chain = _by_alias(events).get(alias, [])
    current = chain[-1].to_version if chain else None
    stack = [v for v in _undo_stack(chain) if v != current]
    if not stack:
        raise NoRollbackTarget(f"{alias} has no earlier version to roll back to")
    return stack[-1]


def version_at(events: Iterable[AliasEvent], alias: str, at_ns: int) -> int | None:
    """The version ``alias`` pointed at just after time ``at_ns`` (None: it did not exist)."""
    version: int | None = None
    for event in _by_alias(events).get(alias, []):
        if event.at_ns > at_ns:
            break
        version = event.to_version
    return version


def plan_move(
    events: Iterable[AliasEvent],
    alias: str,
    to_version: int | None,
    *,
    name: str,
    known_versions: Collection[int],
    actor: str,
    reason: str | None,
    kind: EventKind = "move",
    at_ns: int,
) -> AliasEvent:
    """The event that moves ``alias`` of ``name`` to ``to_version``, validated; the caller appends it."""
    validate_alias(alias)
    chain = _by_alias(e for e in events if e.name == name).get(alias, [])
    current = chain[-1].to_version if chain else None
    if kind == "remove" or to_version is None:
        if kind != "remove" or to_version is not None:
            raise AliasError("removing an alias is kind 'remove' with no to_version")
        if current is None:
            raise AliasError(f"{name}@{alias} does not exist, so it cannot be removed")
    elif to_version not in known_versions:
        raise AliasError(f"{name} has no version {to_version}")
    if to_version == current:
        raise AliasError(f"{name}@{alias} already points at {current}")
    # A canary's automatic rollback moves the candidate alias to the baseline's version,
    # which that alias may never have held; a person's rollback goes back in its own history.
    if kind == "rollback" and to_version not in {e.to_version for e in chain}:
        raise AliasError(f"{name}@{alias} never pointed at {to_version}, so it cannot roll back to it")
    if not actor:
        raise AliasError("every move names its actor")
    return AliasEvent(
        name=name,
        alias=alias,
        from_version=current,
        to_version=to_version,
        actor=actor,
        reason=reason or None,
        kind=kind,
        at_ns=at_ns,
        seq=len(chain) + 1,
    )


def plan_rollback(
    events: Iterable[AliasEvent],
    alias: str,
    *,
    name: str,
    actor: str,
    reason: str | None,
    at_ns: int,
    automatic: bool = False,
) -> AliasEvent:
    """The event that rolls ``alias`` back to ``rollback_target`` (``auto_rollback`` when ``automatic``)."""
    own = [e for e in events if e.name == name]
    target = rollback_target(own, alias)
    return plan_move(
        own,
        alias,
        target,
        name=name,
        known_versions={target},
        actor=actor,
        reason=reason,
        kind="auto_rollback" if automatic else "rollback",
        at_ns=at_ns,
    )
