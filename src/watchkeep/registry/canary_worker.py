"""The canary worker: feeds each running canary its route's new spans and acts on the decision.

SKELETON (lead): signatures are the contract; the canary helper fills the bodies.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from watchkeep.registry.canary import Decision
from watchkeep.registry.canary_repository import CanaryRepository
from watchkeep.registry.repository import RegistryRepository


@dataclass(frozen=True, slots=True)
class CanaryLook:
    """What one look at one canary found and did (``action``: continue, promote, rollback)."""

    canary_id: int
    project_id: int
    decision: Decision


class CanaryWorker:
    """Looks at every running canary every ``interval_s`` seconds on a thread of its own."""

    def __init__(
        self, engine: Engine, registry: RegistryRepository, canaries: CanaryRepository, *, interval_s: float
    ) -> None:
        self._engine = engine
        self._registry = registry
        self._canaries = canaries
        self._interval_s = interval_s

    def start(self) -> None:
        """Start the thread (nothing when ``interval_s`` is 0)."""

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the thread after its current look."""

    def run_once(self, now_ns: int | None = None) -> list[CanaryLook]:
        """One look at every running canary of every project (tests call it directly)."""
        raise NotImplementedError
