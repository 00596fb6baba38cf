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

from sqlalchemy import Engine

from watchkeep.evals.run_repository import RunRepository
from watchkeep.registry.aliases import AliasEvent
from watchkeep.registry.policy import GateOutcome, PromotionDecision, PromotionPolicy
from watchkeep.registry.repository import Kind, RegistryRepository


class PromotionRefused(Exception):
    """A gated move that is not allowed; ``reasons`` says what is unmet (HTTP 409)."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


class PromotionService:
    """Stores promotion policies and moves aliases under them."""

    def __init__(self, engine: Engine, registry: RegistryRepository, runs: RunRepository) -> None:
        self._engine = engine
        self._registry = registry
        self._runs = runs

    def policy(self, project_id: int, kind: Kind, name: str, alias: str) -> PromotionPolicy | None:
        """The alias's policy, None when it moves without gates."""
        raise NotImplementedError

    def policies(self, project_id: int, kind: Kind, name: str) -> dict[str, PromotionPolicy]:
        """Every gated alias of ``name`` and its policy."""
        raise NotImplementedError

    def set_policy(
        self, project_id: int, kind: Kind, name: str, alias: str, policy: PromotionPolicy, *, actor: str
    ) -> None:
        """Create or replace the alias's policy (``NotRegistered`` for an unknown name)."""
        raise NotImplementedError

    def delete_policy(self, project_id: int, kind: Kind, name: str, alias: str) -> bool:
        """Remove the alias's policy; whether there was one."""
        raise NotImplementedError

    def gate_results(
        self, project_id: int, kind: Kind, name: str, alias: str, to_version: int
    ) -> list[GateOutcome]:
        """The evidence a promotion of ``alias`` to ``to_version`` would be judged on, one
        outcome per requirement that has runs to compare (what the console previews)."""
        raise NotImplementedError

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
        raise NotImplementedError
