"""Gated promotion: the one policy check before an alias of a model or prompt moves.

SKELETON (lead): signatures are the contract; the promotion helper fills the bodies.

A promotion policy is stored per (project, kind, name, alias) in ``promotion_policies``.
With no policy an alias moves freely (event kind ``move``). With one, a move needs every
``GateRequirement`` met by evidence (evaluation runs of the candidate and of the current
version on the requirement's dataset, compared by ``evals.gate``): event kind
``promote``; or a force by a caller that may force, with a reason: kind ``forced``.
Rollbacks are never gated: they are the way back.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, delete, insert, select, update

from watchkeep.evals.run_repository import RunRepository
from watchkeep.registry.aliases import AliasEvent
from watchkeep.registry.gate_evidence import GateEvidence, GateEvidenceFinder, version_labels
from watchkeep.registry.policy import (
    GateOutcome,
    GateRequirement,
    PromotionDecision,
    PromotionPolicy,
    decide_promotion,
)
from watchkeep.registry.repository import Kind, RegistryRepository
from watchkeep.registry.versions import validate_alias
from watchkeep.store.clock import now_ns
from watchkeep.store.registry_tables import promotion_policies

MAX_REQUIREMENTS = 16  # gates one policy may require
MAX_EVALUATORS = 32  # evaluators one gate may name
MAX_EVENT_REASON = 2000  # characters of the reason recorded with the event


class PromotionRefused(Exception):
    """A gated move that is not allowed; ``reasons`` says what is unmet (HTTP 409)."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


def policy_to_json(policy: PromotionPolicy) -> dict[str, Any]:
    """The stored (and served) form of a policy."""
    return {
        "required_gates": [
            {"dataset": g.dataset, "evaluators": list(g.evaluators), "alpha": g.alpha, "max_drop": g.max_drop}
            for g in policy.required_gates
        ],
        "allow_force_roles": list(policy.allow_force_roles),
    }


def policy_from_json(data: dict[str, Any]) -> PromotionPolicy:
    """Inverse of ``policy_to_json``; ``ValueError`` for a policy over the bounds."""
    gates = data.get("required_gates") or []
    if len(gates) > MAX_REQUIREMENTS:
        raise ValueError(f"a policy may require at most {MAX_REQUIREMENTS} gates, not {len(gates)}")
    requirements = []
    for g in gates:
        evaluators = tuple(g.get("evaluators") or ())
        if len(evaluators) > MAX_EVALUATORS:
            raise ValueError(f"a gate may name at most {MAX_EVALUATORS} evaluators, not {len(evaluators)}")
        requirements.append(
            GateRequirement(
                dataset=str(g["dataset"]),
                evaluators=evaluators,
                alpha=float(g.get("alpha", 0.05)),
                max_drop=float(g.get("max_drop", 0.0)),
            )
        )
    roles = data.get("allow_force_roles")
    return PromotionPolicy(tuple(requirements), tuple(roles) if roles is not None else ("admin", "owner"))


def event_reason(decision: PromotionDecision, evidence: list[GateEvidence], reason: str | None) -> str:
    """What the event records: the gates' verdicts (``promote``) or what was forced past."""
    if decision.kind == "forced":
        text = "forced past: " + "; ".join(decision.reasons)
    else:
        gates = ", ".join(e.summary() for e in evidence)
        text = f"gates passed: {gates}" if gates else "no gate is required"
        if reason and reason.strip():
            text += f"; {reason.strip()}"
    return text[:MAX_EVENT_REASON]


class PromotionService:
    """Stores promotion policies and moves aliases under them."""

    def __init__(self, engine: Engine, registry: RegistryRepository, runs: RunRepository) -> None:
        self._engine = engine
        self._registry = registry
        self._runs = runs
        self._finder = GateEvidenceFinder(engine, runs)

    def _known(self, project_id: int, kind: Kind, name: str) -> dict[str, int]:
        """The name's aliases; ``NotRegistered`` when the project has no such name."""
        return self._registry.aliases(project_id, kind, name)

    def policy(self, project_id: int, kind: Kind, name: str, alias: str) -> PromotionPolicy | None:
        """The alias's policy, None when it moves without gates."""
        validate_alias(alias)
        self._known(project_id, kind, name)
        return self._policies(project_id, kind, name).get(alias)

    def policies(self, project_id: int, kind: Kind, name: str) -> dict[str, PromotionPolicy]:
        """Every gated alias of ``name`` and its policy."""
        self._known(project_id, kind, name)
        return self._policies(project_id, kind, name)

    def _policies(self, project_id: int, kind: Kind, name: str) -> dict[str, PromotionPolicy]:
        c = promotion_policies.c
        query = select(c.alias, c.policy).where(c.project_id == project_id, c.kind == kind, c.name == name)
        with self._engine.connect() as conn:
            return {row.alias: policy_from_json(row.policy) for row in conn.execute(query.order_by(c.alias))}

    def set_policy(
        self, project_id: int, kind: Kind, name: str, alias: str, policy: PromotionPolicy, *, actor: str
    ) -> None:
        """Create or replace the alias's policy (``NotRegistered`` for an unknown name)."""
        validate_alias(alias)
        data = policy_to_json(policy)
        policy_from_json(data)  # the bounds
        self._known(project_id, kind, name)
        c = promotion_policies.c
        key = (c.project_id == project_id, c.kind == kind, c.name == name, c.alias == alias)
        values = {"policy": data, "updated_by": actor, "updated_at_unix_nano": now_ns()}
        with self._engine.begin() as conn:
            if conn.execute(update(promotion_policies).where(*key).values(**values)).rowcount == 0:
                conn.execute(
                    insert(promotion_policies).values(
                        project_id=project_id, kind=kind, name=name, alias=alias, **values
                    )
                )

    def delete_policy(self, project_id: int, kind: Kind, name: str, alias: str) -> bool:
        """Remove the alias's policy; whether there was one."""
        validate_alias(alias)
        self._known(project_id, kind, name)
        c = promotion_policies.c
        key = (c.project_id == project_id, c.kind == kind, c.name == name, c.alias == alias)
        with self._engine.begin() as conn:
            return bool(conn.execute(delete(promotion_policies).where(*key)).rowcount)

    def evidence(
        self, project_id: int, kind: Kind, name: str, alias: str, to_version: int
    ) -> list[GateEvidence]:
        """Every requirement of the alias's policy with its outcome and the runs behind it
        (empty without a policy); missing evidence is an ``inconclusive`` outcome."""
        policy = self.policy(project_id, kind, name, alias)
        if policy is None:
            return []
        return self._evidence(project_id, kind, name, alias, to_version, policy)

    def _evidence(
        self, project_id: int, kind: Kind, name: str, alias: str, to_version: int, policy: PromotionPolicy
    ) -> list[GateEvidence]:
        current = self._known(project_id, kind, name).get(alias)
        candidate = self._side(project_id, kind, name, to_version)
        baseline = None if current is None else self._side(project_id, kind, name, current)
        return [
            self._finder.evaluate(project_id, req, candidate=candidate, baseline=baseline)
            for req in policy.required_gates
        ]

    def _side(
        self, project_id: int, kind: Kind, name: str, version: int
    ) -> tuple[str, tuple[str, ...], tuple[int, ...]]:
        """(display name, target labels, run ids) of one version; ``NotRegistered`` if unknown."""
        if kind == "model":
            run_ids = self._registry.model(project_id, name, version).eval_runs
        else:
            self._registry.prompt(project_id, name, version)
            run_ids = ()
        return f"{name}@{version}", version_labels(kind, name, version), tuple(run_ids)

    def gate_results(
        self, project_id: int, kind: Kind, name: str, alias: str, to_version: int
    ) -> list[GateOutcome]:
        """The evidence a promotion of ``alias`` to ``to_version`` would be judged on, one
        outcome per requirement that has runs to compare (what the console previews)."""
        return [e.outcome for e in self.evidence(project_id, kind, name, alias, to_version) if e.has_runs]

    def promote(
        self,
        project_id: int,
        kind: Kind,
        name: str,
        alias: str,
        to_version: int,
        *,
        actor: str,
        can_force: bool,
        force: bool = False,
        reason: str | None = None,
    ) -> tuple[AliasEvent, PromotionDecision]:
        """Move ``alias`` to ``to_version`` under its policy and append the event (``move``
        without a policy, ``promote`` when every gate passes, ``forced`` when ``force`` by a
        caller who ``can_force`` with a reason); ``PromotionRefused`` otherwise."""
        policy = self.policy(project_id, kind, name, alias)
        if policy is None:
            event = self._registry.move_alias(
                project_id, kind, name, alias, to_version, actor=actor, reason=reason
            )
            return event, PromotionDecision(True, "promote", ["no promotion policy: a plain move"])
        evidence = self._evidence(project_id, kind, name, alias, to_version, policy)
        decision = decide_promotion(
            policy,
            gate_results={e.requirement.dataset: e.outcome for e in evidence},
            actor_role="admin" if can_force else "member",
            force=force,
            reason=reason,
        )
        if not decision.allowed:
            raise PromotionRefused(decision.reasons)
        event = self._registry.move_alias(
            project_id,
            kind,
            name,
            alias,
            to_version,
            actor=actor,
            reason=event_reason(decision, evidence, reason),
            event_kind=decision.kind,
        )
        return event, decision

    def remove(
        self,
        project_id: int,
        kind: Kind,
        name: str,
        alias: str,
        *,
        actor: str,
        can_force: bool,
        force: bool = False,
        reason: str | None = None,
    ) -> AliasEvent:
        """Remove the alias; a gated alias only by a forced removal (else the next move would
        have no baseline to be judged against)."""
        policy = self.policy(project_id, kind, name, alias)
        if policy is not None:
            if not force:
                raise PromotionRefused([f"{alias} is gated: removing it needs force and a reason"])
            if not can_force or not (reason and reason.strip()):
                raise PromotionRefused(["a forced removal needs registry:admin and a reason"])
        return self._registry.move_alias(project_id, kind, name, alias, None, actor=actor, reason=reason)
