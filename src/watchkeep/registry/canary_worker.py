"""The canary worker: feeds each running canary its route's new spans and acts on the decision.

Each look counts the spans stored since the canary's watermark (``canary_figures``),
folds them into the state (``canary.observe``) and decides. State and watermark are
stored with a compare-and-set on the old watermark, so two workers (two replicas) never
count one window twice: the loser skips. Then the decision acts on the aliases:
``rollback`` moves the candidate alias back to the baseline's version (an
``auto_rollback`` event), ``promote`` moves the baseline alias to the candidate's. When
someone moved either alias meanwhile the canary stops and says so instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Engine

from watchkeep.periodic import PeriodicThread
from watchkeep.registry.aliases import EventKind
from watchkeep.registry.canary import Decision, decide, observe
from watchkeep.registry.canary_figures import Window, figures, window_end
from watchkeep.registry.canary_repository import Canary, CanaryRepository, CanaryStatus
from watchkeep.registry.repository import NotRegistered, RegistryConflict, RegistryRepository
from watchkeep.security.audit import AuditLog
from watchkeep.store.clock import now_ns as clock_ns

log = logging.getLogger(__name__)
ACTOR = "canary-worker"
_STATUS: dict[str, CanaryStatus] = {"continue": "running", "promote": "promoted", "rollback": "rolled_back"}


@dataclass(frozen=True, slots=True)
class CanaryLook:
    """What one look at one canary found and did (``action``: continue, promote, rollback)."""

    canary_id: int
    project_id: int
    decision: Decision


class CanaryWorker:
    """Looks at every running canary every ``interval_s`` seconds on a thread of its own."""

    def __init__(
        self,
        engine: Engine,
        registry: RegistryRepository,
        canaries: CanaryRepository,
        *,
        interval_s: float,
        audit: AuditLog | None = None,
    ) -> None:
        self._engine = engine
        self._audit = audit
        self._registry = registry
        self._canaries = canaries
        self._thread = PeriodicThread("watchkeep-canary-worker", interval_s, self.run_once)

    def start(self) -> None:
        """Start the thread (nothing when ``interval_s`` is 0)."""
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the thread after its current look."""
        self._thread.stop(timeout)

    def run_once(self, now_ns: int | None = None) -> list[CanaryLook]:
        """One look at every running canary of every project (tests call it directly)."""
        now = now_ns if now_ns is not None else clock_ns()
        looks: list[CanaryLook] = []
        for canary in self._canaries.running():
            try:
                look = self.look(canary, now)
            except Exception:
                log.exception("canary %s of project %s: look failed", canary.id, canary.project_id)
                continue
            if look is not None:
                looks.append(look)
        return looks

    def look(self, canary: Canary, now_ns: int) -> CanaryLook | None:
        """Count the canary's next window and act; None when another worker counted it first."""
        moved = self._moved(canary)
        if moved is not None:
            self._canaries.end(canary.project_id, canary.id, "stopped", moved)
            return None
        upto = window_end(canary.watermark_ns, now_ns)
        window = Window(
            project_id=canary.project_id,
            route=canary.route,
            baseline=f"{canary.name}@{canary.baseline_version}",
            candidate=f"{canary.name}@{canary.candidate_version}",
            shadow_mode=canary.mode == "shadow",
            after_ns=canary.watermark_ns,
            upto_ns=upto,
        )
        with self._engine.connect() as conn:
            batch = figures(conn, window, canary.policy)
        state = observe(canary.state, batch) if batch else canary.state
        decision = decide(state)
        status = _STATUS[decision.action]
        if not self._canaries.advance(
            canary, state=state, watermark_ns=upto, status=status, reason=decision.reason
        ):
            return None
        if decision.action != "continue":
            self._act(canary, decision)
        return CanaryLook(canary.id, canary.project_id, decision)

    def _moved(self, canary: Canary) -> str | None:
        """Why the canary can no longer act (its aliases moved), or None."""
        try:
            pointed = self._registry.aliases(canary.project_id, "model", canary.name)
        except NotRegistered:
            return f"model {canary.name!r} is gone"
        for alias, version in (
            (canary.baseline_alias, canary.baseline_version),
            (canary.candidate_alias, canary.candidate_version),
        ):
            if pointed.get(alias) != version:
                return (
                    f"Stopped: alias {alias!r} was moved to {pointed.get(alias)} by someone else "
                    f"(the canary compared version {version})."
                )
        return None

    def _act(self, canary: Canary, decision: Decision) -> None:
        kind: EventKind
        if decision.action == "rollback":
            alias, version, kind = canary.candidate_alias, canary.baseline_version, "auto_rollback"
        else:
            alias, version, kind = canary.baseline_alias, canary.candidate_version, "promote"
        try:
            self._registry.move_alias(
                canary.project_id,
                "model",
                canary.name,
                alias,
                version,
                actor=ACTOR,
                reason=decision.reason,
                event_kind=kind,
            )
        except (NotRegistered, RegistryConflict, ValueError) as exc:
            self._canaries.end(
                canary.project_id, canary.id, "stopped", f"{decision.reason} The alias move failed: {exc}"
            )
            return
        if self._audit is not None:
            self._audit.record(
                actor=ACTOR,
                action="alias.auto_rollback" if kind == "auto_rollback" else "alias.promote",
                project_id=canary.project_id,
                target=f"model:{canary.name}@{alias}",
                after={"version": version, "canary": canary.id},
                detail=decision.reason,
            )
