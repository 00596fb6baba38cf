"""Canary analyses as stored: which model, route and aliases, the test's state, the outcome.

SKELETON (lead): signatures are the contract; the canary helper fills the bodies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Engine

from watchkeep.registry.canary import CanaryPolicy, CanaryState

CanaryMode = Literal["live", "shadow"]
CanaryStatus = Literal["running", "promoted", "rolled_back", "stopped"]


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
        raise NotImplementedError

    def get(self, project_id: int, canary_id: int) -> Canary | None:
        """The project's canary, None when it has none of that id."""
        raise NotImplementedError

    def list(
        self,
        project_id: int,
        *,
        name: str | None = None,
        status: CanaryStatus | None = None,
        limit: int = 100,
    ) -> list[Canary]:
        """The project's canaries, newest first."""
        raise NotImplementedError

    def stop(self, project_id: int, canary_id: int, *, actor: str, reason: str | None = None) -> Canary:
        """End a running canary by hand, leaving the aliases as they are."""
        raise NotImplementedError
