"""Model and prompt versions and the alias event log in the store, every lookup per project.

Contract (what the REST API, the CLI and the gateway build on):

- Every method takes ``project_id`` and every query is scoped by it: project B never sees,
  resolves or moves project A's names.
- ``register_model`` / ``register_prompt`` are one transaction each: the version is max+1
  under the unique (project, name, version), retried on a concurrent writer's conflict. A
  registration whose ``versions.content_digest`` equals an existing version of the name
  writes nothing and returns that (earliest) version with ``created`` False. A prompt's
  template (text, or ``[{"role", "content"}]``) is compiled in the sandbox first
  (``prompts.PromptContent.of`` + ``compile_prompt``) and its variables recorded; a bad one
  raises ``prompts.PromptError`` (a ``ValueError``), as do bad names and fields.
- Aliases change only by appending an ``alias_events`` row planned by the pure
  ``aliases.plan_move`` / ``plan_rollback`` from a fresh read of the log; a concurrent
  writer that took the same seq makes the insert fail on the unique constraint, and the
  move is re-read and re-planned (``MOVE_TRIES``), then ``RegistryConflict``. The current
  aliases are ``aliases.project`` of the log; a move the log forbids (no-op, never-held
  rollback target, nothing to roll back to) raises ``aliases.AliasError`` (a ``ValueError``).
- A missing name, version or alias raises ``NotRegistered`` (a ``LookupError``) saying which.
- ``model(..., version)`` / ``prompt(...)``: an ``int`` (or digit string) is that version, any
  other string an alias resolved through the projection (``"latest"``, unless an alias of
  that name exists, is the newest version), ``None`` the newest version.
- Listings: versions newest first; events oldest first (``aliases.history``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, get_args

from sqlalchemy import Connection, Engine, Table, func, insert, select
from sqlalchemy.exc import IntegrityError

from watchkeep.registry import aliases as alias_log
from watchkeep.registry.aliases import AliasEvent, EventKind
from watchkeep.registry.prompts import PromptContent, compile_prompt
from watchkeep.registry.versions import (
    ModelVersion,
    PromptVersion,
    content_digest,
    template_json,
    validate_alias,
    validate_name,
)
from watchkeep.store.clock import now_ns
from watchkeep.store.registry_tables import alias_events, model_versions, prompt_versions
from watchkeep.store.route_repository import bump_revision

Kind = Literal["model", "prompt"]
KINDS: tuple[str, ...] = get_args(Kind)
REGISTER_TRIES = 5  # a version number taken by a concurrent registration: number again
MOVE_TRIES = 5  # an alias seq taken by a concurrent move: re-read and re-plan
V = TypeVar("V", ModelVersion, PromptVersion)


class NotRegistered(LookupError):
    """No such name, version or alias in this project."""


class RegistryConflict(RuntimeError):
    """Concurrent writers kept taking the number or seq this write planned; try again later."""


@dataclass(frozen=True, slots=True)
class NameSummary:
    """A registered name: how many versions, the latest, and where its aliases point."""

    kind: Kind
    name: str
    versions: int
    latest: int
    aliases: dict[str, int]
    updated_at_ns: int


def _table(kind: str) -> Table:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    return model_versions if kind == "model" else prompt_versions


def _model(row: Any) -> ModelVersion:
    return ModelVersion(
        name=row.name,
        version=row.version,
        backend=row.backend,
        params=row.params,
        artifact_uri=row.artifact_uri,
        artifact_digest=row.artifact_digest,
        metadata=row.version_metadata,
        parent=row.parent,
        training_dataset=row.training_dataset,
        eval_runs=tuple(row.eval_runs),
        created_by=row.created_by or "",
        created_at_ns=row.created_at_unix_nano,
    )


def _prompt(row: Any) -> PromptVersion:
    return PromptVersion(
        name=row.name,
        version=row.version,
        template=row.template,
        variables=tuple(row.variables),
        model_settings=row.model_settings,
        message=row.message or "",
        parent=row.parent,
        created_by=row.created_by or "",
        created_at_ns=row.created_at_unix_nano,
    )


def _event(row: Any) -> AliasEvent:
    return AliasEvent(
        name=row.name,
        alias=row.alias,
        from_version=row.from_version,
        to_version=row.to_version,
        actor=row.actor,
        reason=row.reason,
        kind=row.event_kind,
        at_ns=row.at_unix_nano,
        seq=row.seq,
    )


class RegistryRepository:
    """Registers versions and moves aliases (as events) for one store."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # --- registration ----------------------------------------------------------------------

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
        validate_name(name, "model name")
        runs = tuple(eval_runs)
        if not all(isinstance(r, int) and not isinstance(r, bool) for r in runs):
            raise ValueError("eval_runs must be run ids (integers)")

        def build(number: int) -> ModelVersion:
            return ModelVersion(
                name=name,
                version=number,
                backend=backend,
                params=dict(params or {}),
                artifact_uri=artifact_uri,
                artifact_digest=artifact_digest,
                metadata=dict(metadata or {}),
                parent=parent,
                training_dataset=training_dataset,
                eval_runs=runs,
                created_by=created_by or "",
                created_at_ns=now_ns(),
            )

        def row(v: ModelVersion) -> dict[str, Any]:
            return {
                "backend": v.backend,
                "params": dict(v.params),
                "artifact_uri": v.artifact_uri,
                "artifact_digest": v.artifact_digest,
                "version_metadata": dict(v.metadata),
                "parent": v.parent,
                "training_dataset": v.training_dataset,
                "eval_runs": list(v.eval_runs),
            }

        return self._register(project_id, "model", name, build, row, _model)

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
        validate_name(name, "prompt name")
        content = PromptContent.of(template, model_settings)
        variables = compile_prompt(content).variables

        def build(number: int) -> PromptVersion:
            return PromptVersion(
                name=name,
                version=number,
                template=content.template,
                variables=variables,
                model_settings=content.model_settings,
                message=message or "",
                parent=parent,
                created_by=created_by or "",
                created_at_ns=now_ns(),
            )

        def row(v: PromptVersion) -> dict[str, Any]:
            return {
                "template": template_json(v.template),
                "variables": list(v.variables),
                "model_settings": dict(v.model_settings),
                "message": message or None,
                "parent": v.parent,
            }

        return self._register(project_id, "prompt", name, build, row, _prompt)

    def _register(
        self,
        project_id: int,
        kind: Kind,
        name: str,
        build: Callable[[int], V],
        row: Callable[[V], dict[str, Any]],
        read: Callable[[Any], V],
    ) -> tuple[V, bool]:
        """Number, dedupe and insert in one transaction; a number taken meanwhile is retried."""
        table = _table(kind)
        c = table.c
        for _ in range(REGISTER_TRIES):
            try:
                with self._engine.begin() as conn:
                    scope = (c.project_id == project_id, c.name == name)
                    highest = conn.execute(select(func.max(c.version)).where(*scope)).scalar() or 0
                    candidate = build(int(highest) + 1)
                    digest = content_digest(candidate)
                    same = conn.execute(
                        select(table).where(*scope, c.content_digest == digest).order_by(c.version).limit(1)
                    ).first()
                    if same is not None:
                        return read(same), False
                    conn.execute(
                        insert(table).values(
                            project_id=project_id,
                            name=name,
                            version=candidate.version,
                            content_digest=digest,
                            created_by=candidate.created_by or None,
                            created_at_unix_nano=candidate.created_at_ns,
                            **row(candidate),
                        )
                    )
                return candidate, True
            except IntegrityError:
                continue
        raise RegistryConflict(
            f"could not number a new version of {kind} {name!r}: too many concurrent writers"
        )

    # --- reading ---------------------------------------------------------------------------

    def names(self, project_id: int, kind: Kind) -> list[NameSummary]:
        """Every registered name of ``kind``, by name."""
        c = _table(kind).c
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(c.name, func.count(), func.max(c.version), func.max(c.created_at_unix_nano))
                .where(c.project_id == project_id)
                .group_by(c.name)
                .order_by(c.name)
            ).all()
            logs = self._all_events(conn, project_id, kind)
        summaries = []
        for name, count, latest, created in rows:
            log = logs.get(name, [])
            updated = max([int(created)] + [e.at_ns for e in log])
            summaries.append(
                NameSummary(kind, name, int(count), int(latest), alias_log.project(log), updated)
            )
        return summaries

    def model_versions(self, project_id: int, name: str) -> list[ModelVersion]:
        """Newest first; raises ``NotRegistered``."""
        return [_model(r) for r in self._version_rows(project_id, "model", name)]

    def prompt_versions(self, project_id: int, name: str) -> list[PromptVersion]:
        """Newest first; raises ``NotRegistered``."""
        return [_prompt(r) for r in self._version_rows(project_id, "prompt", name)]

    def model(self, project_id: int, name: str, version: int | str | None = None) -> ModelVersion:
        """A version by number, by alias (a string), or the latest (None)."""
        return _model(self._resolve(project_id, "model", name, version))

    def prompt(self, project_id: int, name: str, version: int | str | None = None) -> PromptVersion:
        """A version by number, by alias (a string), or the latest (None)."""
        return _prompt(self._resolve(project_id, "prompt", name, version))

    def events(self, project_id: int, kind: Kind, name: str, alias: str | None = None) -> list[AliasEvent]:
        """The alias events of ``name`` (one alias or all), oldest first."""
        if alias is not None:
            validate_alias(alias)
        with self._engine.connect() as conn:
            self._known_versions(conn, project_id, kind, name)
            log = self._events(conn, project_id, kind, name)
        return alias_log.history(log, alias)

    def aliases(self, project_id: int, kind: Kind, name: str) -> dict[str, int]:
        """Where each alias of ``name`` points now (the projection of its events)."""
        with self._engine.connect() as conn:
            self._known_versions(conn, project_id, kind, name)
            return alias_log.project(self._events(conn, project_id, kind, name))

    # --- alias moves -----------------------------------------------------------------------

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
        validate_alias(alias)
        if to_version is None and event_kind == "move":
            event_kind = "remove"

        def plan(log: list[AliasEvent], known: set[int]) -> AliasEvent:
            if to_version is not None and to_version not in known:
                raise NotRegistered(f"{kind} {name!r} has no version {to_version}")
            return alias_log.plan_move(
                log,
                alias,
                to_version,
                name=name,
                known_versions=known,
                actor=actor,
                reason=reason,
                kind=event_kind,
                at_ns=now_ns(),
            )

        return self._append(project_id, kind, name, plan)

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
        validate_alias(alias)

        def plan(log: list[AliasEvent], known: set[int]) -> AliasEvent:
            if not any(e.alias == alias for e in log):
                raise NotRegistered(f"{kind} {name!r} has no alias {alias!r}")
            return alias_log.plan_rollback(
                log, alias, name=name, actor=actor, reason=reason, at_ns=now_ns(), automatic=automatic
            )

        return self._append(project_id, kind, name, plan)

    def _append(
        self,
        project_id: int,
        kind: Kind,
        name: str,
        plan: Callable[[list[AliasEvent], set[int]], AliasEvent],
    ) -> AliasEvent:
        """Read the log, plan the event, insert it; a seq taken meanwhile means re-read and re-plan."""
        for _ in range(MOVE_TRIES):
            try:
                with self._engine.begin() as conn:
                    known = self._known_versions(conn, project_id, kind, name)
                    event = plan(self._events(conn, project_id, kind, name), known)
                    conn.execute(
                        insert(alias_events).values(
                            project_id=project_id,
                            kind=kind,
                            name=name,
                            alias=event.alias,
                            seq=event.seq,
                            from_version=event.from_version,
                            to_version=event.to_version,
                            event_kind=event.kind,
                            actor=event.actor,
                            reason=event.reason,
                            at_unix_nano=event.at_ns,
                        )
                    )
                    bump_revision(conn)  # gateway routes may name this model or prompt by alias
                return event
            except IntegrityError:
                continue
        raise RegistryConflict(f"{kind} {name!r}: the alias kept moving under this write; try again")

    # --- helpers ---------------------------------------------------------------------------

    def _version_rows(self, project_id: int, kind: Kind, name: str) -> list[Any]:
        c = _table(kind).c
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(_table(kind))
                .where(c.project_id == project_id, c.name == name)
                .order_by(c.version.desc())
            ).all()
        if not rows:
            raise NotRegistered(f"{kind} {name!r} is not registered in this project")
        return list(rows)

    def _resolve(self, project_id: int, kind: Kind, name: str, version: int | str | None) -> Any:
        if isinstance(version, bool):
            raise ValueError(f"version must be a number, an alias or None, not {version!r}")
        table = _table(kind)
        c = table.c
        with self._engine.connect() as conn:
            known = self._known_versions(conn, project_id, kind, name)
            number = self._number(conn, project_id, kind, name, version, known)
            row = conn.execute(
                select(table).where(c.project_id == project_id, c.name == name, c.version == number)
            ).first()
        if row is None:  # pragma: no cover - versions are never deleted
            raise NotRegistered(f"{kind} {name!r} has no version {number}")
        return row

    def _number(
        self,
        conn: Connection,
        project_id: int,
        kind: Kind,
        name: str,
        version: int | str | None,
        known: set[int],
    ) -> int:
        """The version number ``version`` (a number, an alias, or None: the latest) stands for."""
        if isinstance(version, str) and version.strip().isdigit():
            version = int(version.strip())
        if isinstance(version, int):
            if version not in known:
                raise NotRegistered(f"{kind} {name!r} has no version {version}")
            return version
        if version is None:
            return max(known)
        validate_alias(version)
        current = alias_log.project(self._events(conn, project_id, kind, name))
        if version in current:
            return current[version]
        if version == "latest":
            return max(known)
        raise NotRegistered(f"{kind} {name!r} has no alias {version!r}")

    def _known_versions(self, conn: Connection, project_id: int, kind: Kind, name: str) -> set[int]:
        c = _table(kind).c
        known = {
            int(v)
            for v in conn.execute(
                select(c.version).where(c.project_id == project_id, c.name == name)
            ).scalars()
        }
        if not known:
            raise NotRegistered(f"{kind} {name!r} is not registered in this project")
        return known

    def _events(self, conn: Connection, project_id: int, kind: Kind, name: str) -> list[AliasEvent]:
        e = alias_events.c
        rows = conn.execute(
            select(alias_events)
            .where(e.project_id == project_id, e.kind == kind, e.name == name)
            .order_by(e.alias, e.seq)
        ).all()
        return [_event(r) for r in rows]

    def _all_events(self, conn: Connection, project_id: int, kind: Kind) -> dict[str, list[AliasEvent]]:
        e = alias_events.c
        rows = conn.execute(
            select(alias_events)
            .where(e.project_id == project_id, e.kind == kind)
            .order_by(e.name, e.alias, e.seq)
        ).all()
        grouped: dict[str, list[AliasEvent]] = {}
        for r in rows:
            grouped.setdefault(r.name, []).append(_event(r))
        return grouped
