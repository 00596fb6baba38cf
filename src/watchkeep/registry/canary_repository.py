"""Canary analyses as stored: which model, route and aliases, the test's state, the outcome.

The worker advances a canary with ``advance``: a compare-and-set on the watermark, so of
two workers (two replicas) looking at the same window only one counts it.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Engine, and_, insert, select, update
from sqlalchemy.exc import IntegrityError

from watchkeep.registry.canary import CanaryPolicy, CanaryState, start
from watchkeep.registry.repository import NotRegistered, RegistryRepository
from watchkeep.store.clock import now_ns
from watchkeep.store.registry_tables import canaries

CanaryMode = Literal["live", "shadow"]
CanaryStatus = Literal["running", "promoted", "rolled_back", "stopped"]
STATUSES: tuple[CanaryStatus, ...] = ("running", "promoted", "rolled_back", "stopped")


class CanaryError(ValueError):
    """A canary that cannot start or change: unknown aliases, the same version on both,
    one already running for the name and route (HTTP 409/422)."""


@dataclass(frozen=True, slots=True)
class Canary:
    """One canary analysis: the candidate alias's version against the baseline's on a route."""

    id: int
    project_id: int
    name: str
    route: str
    baseline_alias: str
    candidate_alias: str
    baseline_version: int
    candidate_version: int
    mode: CanaryMode
    share: float
    policy: CanaryPolicy
    state: CanaryState
    status: CanaryStatus
    reason: str | None
    watermark_ns: int
    started_by: str
    started_at_ns: int
    updated_at_ns: int
    ended_at_ns: int | None


class CanaryRepository:
    """Reads and writes ``canaries``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def start(
        self,
        project_id: int,
        *,
        name: str,
        route: str,
        baseline_alias: str,
        candidate_alias: str,
        mode: CanaryMode,
        share: float,
        policy: CanaryPolicy,
        actor: str,
    ) -> Canary:
        """A running canary from now on; ``CanaryError`` when it cannot start."""
        if mode not in ("live", "shadow"):
            raise CanaryError(f"mode must be live or shadow, not {mode!r}")
        if not 0 < share < 1:
            raise CanaryError("share must be between 0 and 1 (exclusive)")
        try:
            pointed = RegistryRepository(self._engine).aliases(project_id, "model", name)
        except NotRegistered as exc:
            raise CanaryError(str(exc)) from exc
        for alias in (baseline_alias, candidate_alias):
            if alias not in pointed:
                raise CanaryError(f"model {name!r} has no alias {alias!r}")
        base, cand = pointed[baseline_alias], pointed[candidate_alias]
        if base == cand:
            raise CanaryError(f"{baseline_alias!r} and {candidate_alias!r} both point at version {base}")
        now = now_ns()
        state = start(policy).to_json()
        row = {
            "project_id": project_id,
            "name": name,
            "route": route,
            "baseline_alias": baseline_alias,
            "candidate_alias": candidate_alias,
            "baseline_version": base,
            "candidate_version": cand,
            "mode": mode,
            "share": share,
            "policy": state["policy"],
            "state": state,
            "status": "running",
            "reason": None,
            "watermark_unix_nano": now,
            "started_by": actor,
            "started_at_unix_nano": now,
            "updated_at_unix_nano": now,
            "ended_at_unix_nano": None,
        }
        try:
            new_id = self._insert(row)
        except IntegrityError:  # another start won the race: one running canary per name and route
            raise CanaryError(f"a canary is already running for {name!r} on route {route!r}") from None
        found = self.get(project_id, new_id)
        assert found is not None
        return found

    def _insert(self, row: dict[str, Any]) -> int:
        c = canaries.c
        with self._engine.begin() as conn:
            running = conn.execute(
                select(c.id).where(
                    c.project_id == row["project_id"],
                    c.name == row["name"],
                    c.route == row["route"],
                    c.status == "running",
                )
            ).first()
            if running is not None:
                raise CanaryError(
                    f"canary {running.id} is already running for {row['name']!r} on route {row['route']!r}"
                )
            inserted = conn.execute(insert(canaries).values(**row)).inserted_primary_key
            assert inserted is not None
            return int(inserted[0])

    def get(self, project_id: int, canary_id: int) -> Canary | None:
        """The project's canary, None when it has none of that id."""
        c = canaries.c
        with self._engine.connect() as conn:
            row = conn.execute(select(canaries).where(c.project_id == project_id, c.id == canary_id)).first()
        return _canary(row) if row is not None else None

    def list(
        self,
        project_id: int,
        *,
        name: str | None = None,
        status: CanaryStatus | None = None,
        limit: int = 100,
    ) -> list[Canary]:
        """The project's canaries, newest first."""
        c = canaries.c
        query = select(canaries).where(c.project_id == project_id)
        if name is not None:
            query = query.where(c.name == name)
        if status is not None:
            query = query.where(c.status == status)
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(c.id.desc()).limit(max(1, min(limit, 1000)))).all()
        return [_canary(r) for r in rows]

    def running(self) -> builtins.list[Canary]:
        """Every project's running canaries (for the worker)."""
        c = canaries.c
        with self._engine.connect() as conn:
            rows = conn.execute(select(canaries).where(c.status == "running").order_by(c.id)).all()
        return [_canary(r) for r in rows]

    def advance(
        self,
        canary: Canary,
        *,
        state: CanaryState,
        watermark_ns: int,
        status: CanaryStatus = "running",
        reason: str | None = None,
    ) -> bool:
        """Store a look's state and new watermark if nobody advanced the canary since it was
        read (same watermark, still running); False: another worker counted this window."""
        c = canaries.c
        now = now_ns()
        values: dict[str, Any] = {
            "state": state.to_json(),
            "watermark_unix_nano": watermark_ns,
            "status": status,
            "updated_at_unix_nano": now,
        }
        if status != "running":
            values |= {"reason": reason, "ended_at_unix_nano": now}
        with self._engine.begin() as conn:
            done = conn.execute(
                update(canaries)
                .where(
                    and_(
                        c.id == canary.id,
                        c.project_id == canary.project_id,
                        c.status == "running",
                        c.watermark_unix_nano == canary.watermark_ns,
                    )
                )
                .values(**values)
            )
        return done.rowcount == 1

    def end(self, project_id: int, canary_id: int, status: CanaryStatus, reason: str | None) -> None:
        """Set the outcome of a canary that has ended (the worker, after acting)."""
        now = now_ns()
        c = canaries.c
        with self._engine.begin() as conn:
            conn.execute(
                update(canaries)
                .where(c.id == canary_id, c.project_id == project_id)
                .values(status=status, reason=reason, updated_at_unix_nano=now, ended_at_unix_nano=now)
            )

    def stop(self, project_id: int, canary_id: int, *, actor: str, reason: str | None = None) -> Canary:
        """End a running canary by hand, leaving the aliases as they are."""
        now = now_ns()
        c = canaries.c
        why = f"stopped by {actor}" + (f": {reason}" if reason else "")
        with self._engine.begin() as conn:
            done = conn.execute(
                update(canaries)
                .where(c.id == canary_id, c.project_id == project_id, c.status == "running")
                .values(status="stopped", reason=why, updated_at_unix_nano=now, ended_at_unix_nano=now)
            )
        found = self.get(project_id, canary_id)
        if found is None:
            raise LookupError(f"no canary {canary_id}")
        if done.rowcount != 1:
            raise CanaryError(f"canary {canary_id} is not running (it is {found.status})")
        return found


def _canary(row: Any) -> Canary:
    state = CanaryState.from_json(row.state)
    return Canary(
        id=int(row.id),
        project_id=int(row.project_id),
        name=row.name,
        route=row.route,
        baseline_alias=row.baseline_alias,
        candidate_alias=row.candidate_alias,
        baseline_version=int(row.baseline_version),
        candidate_version=int(row.candidate_version),
        mode=row.mode,
        share=float(row.share),
        policy=state.policy,
        state=state,
        status=row.status,
        reason=row.reason,
        watermark_ns=int(row.watermark_unix_nano),
        started_by=row.started_by,
        started_at_ns=int(row.started_at_unix_nano),
        updated_at_ns=int(row.updated_at_unix_nano),
        ended_at_ns=None if row.ended_at_unix_nano is None else int(row.ended_at_unix_nano),
    )
