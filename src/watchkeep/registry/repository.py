"""Model and prompt versions and the alias event log in the store, every lookup per project.

SKELETON (groundwork): the signatures are the contract; the storage helper implements them.
It stores what the pure modules define (``versions``, ``aliases``): registrations are
deduplicated by ``content_digest``, and an alias changes only by appending an event planned
with ``aliases.plan_move`` / ``plan_rollback`` (a seq conflict from a concurrent writer is
retried on a fresh read, at most a few times).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Engine

from watchkeep.registry.aliases import AliasEvent, EventKind
from watchkeep.registry.versions import ModelVersion, PromptVersion

Kind = Literal["model", "prompt"]


class NotRegistered(LookupError):
    """No such name, version or alias in this project."""


@dataclass(frozen=True, slots=True)
class NameSummary:
    """A registered name: how many versions, the latest, and where its aliases point."""

    kind: Kind
    name: str
    versions: int
    latest: int
    aliases: dict[str, int]
    updated_at_ns: int


class RegistryRepository:
    """Registers versions and moves aliases (as events) for one store."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def register_model(
        self,
        project_id: int,
        name: str,
        *,
        backend: str,
        params: Mapping[str, Any] | None = None,
        artifact_uri: str | None = None,
        artifact_digest: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        parent: int | None = None,
        training_dataset: str | None = None,
        eval_runs: Sequence[int] = (),
        created_by: str | None = None,
    ) -> tuple[ModelVersion, bool]:
        """The next version of ``name`` (1 for a new name), or the existing content-identical
        version and False (nothing written)."""
        raise NotImplementedError

    def register_prompt(
        self,
        project_id: int,
        name: str,
        *,
        template: str | Sequence[Mapping[str, str]],
        model_settings: Mapping[str, Any] | None = None,
        message: str | None = None,
        parent: int | None = None,
        created_by: str | None = None,
    ) -> tuple[PromptVersion, bool]:
        """As ``register_model``; the template is validated (compiled in the sandbox) first and
        its variables recorded."""
        raise NotImplementedError

    def names(self, project_id: int, kind: Kind) -> list[NameSummary]:
        """Every registered name of ``kind``, by name."""
        raise NotImplementedError

    def model_versions(self, project_id: int, name: str) -> list[ModelVersion]:
        """Newest first; raises ``NotRegistered``."""
        raise NotImplementedError

    def prompt_versions(self, project_id: int, name: str) -> list[PromptVersion]:
        """Newest first; raises ``NotRegistered``."""
        raise NotImplementedError

    def model(self, project_id: int, name: str, version: int | str | None = None) -> ModelVersion:
        """A version by number, by alias (a string), or the latest (None)."""
        raise NotImplementedError

    def prompt(self, project_id: int, name: str, version: int | str | None = None) -> PromptVersion:
        """A version by number, by alias (a string), or the latest (None)."""
        raise NotImplementedError

    def events(self, project_id: int, kind: Kind, name: str, alias: str | None = None) -> list[AliasEvent]:
        """The alias events of ``name`` (one alias or all), oldest first."""
        raise NotImplementedError

    def aliases(self, project_id: int, kind: Kind, name: str) -> dict[str, int]:
        """Where each alias of ``name`` points now (the projection of its events)."""
        raise NotImplementedError

    def move_alias(
        self,
        project_id: int,
        kind: Kind,
        name: str,
        alias: str,
        to_version: int | None,
        *,
        actor: str,
        reason: str | None = None,
        event_kind: EventKind = "move",
    ) -> AliasEvent:
        """Append a move (``to_version`` None removes the alias); refuses an unknown version."""
        raise NotImplementedError

    def rollback(
        self,
        project_id: int,
        kind: Kind,
        name: str,
        alias: str,
        *,
        actor: str,
        reason: str | None = None,
        automatic: bool = False,
    ) -> AliasEvent:
        """Append a rollback to the alias's previous version (``aliases.rollback_target``)."""
        raise NotImplementedError
