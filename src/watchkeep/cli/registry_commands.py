"""``watchkeep registry``: register model and prompt versions, move and roll back aliases,
read the alias history, diff versions, and export/import the registry as files.

Like ``datasets``, these commands work on the database directly (the operator's view), in
the project named by ``--project``, through ``RegistryRepository`` so the rules it enforces
(content-identical registrations reused, every alias move an appended event) hold here too.
The actor recorded on a move is ``--actor`` (``WATCHKEEP_ACTOR``, default ``cli``). ``--kind``
may be left out when the name is registered as one kind only. Errors (unknown name,
version or alias, no rollback target, a bad template or file) are one line on stderr and
exit code 1.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
import typer

from watchkeep.config import Settings

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy import Engine

    from watchkeep.evals.run_repository import RunRepository
    from watchkeep.registry.repository import Kind, RegistryRepository
    from watchkeep.registry.versions import ModelVersion, PromptVersion

registry_app = typer.Typer(help="Model and prompt versions, aliases and their history.", no_args_is_help=True)
models_app = typer.Typer(help="Model versions.", no_args_is_help=True)
prompts_app = typer.Typer(help="Prompt versions.", no_args_is_help=True)
registry_app.add_typer(models_app, name="models")
registry_app.add_typer(prompts_app, name="prompts")

KindName = Literal["model", "prompt"]
Project = Annotated[str, typer.Option("--project", envvar="WATCHKEEP_PROJECT", help="Project name.")]
KindOpt = Annotated[
    KindName | None, typer.Option("--kind", help="model or prompt (needed only when the name is both).")
]
Actor = Annotated[str, typer.Option("--actor", envvar="WATCHKEEP_ACTOR", help="Who is recorded as moving.")]
Message = Annotated[str | None, typer.Option("--message", "-m", help="What this version changes.")]
Name = Annotated[str, typer.Argument(help="Model or prompt name.")]
MAX_TEMPLATE_FILE_BYTES = 1 << 20
TEMPLATE_DATA_SUFFIXES = {".yaml", ".yml", ".json"}


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


@contextmanager
def _open(project: str, *, create: bool = False) -> Iterator[tuple[RegistryRepository, int]]:
    """The repository and project id; lookup and validation errors print one line and exit 1."""
    with open_store(project, create=create) as (_, repo, project_id):
        yield repo, project_id


def eval_runs(engine: Engine) -> RunRepository:
    """Evaluation results, opened with the settings' key (their outputs may be sealed)."""
    from watchkeep.evals.run_repository import RunRepository
    from watchkeep.security.crypto import keyring_from_settings

    return RunRepository(engine, sealer=keyring_from_settings(Settings()))


@contextmanager
def open_store(project: str, *, create: bool = False) -> Iterator[tuple[Engine, RegistryRepository, int]]:
    """``_open`` with the engine too (for services built over it, e.g. promotions)."""
    from watchkeep.registry.repository import RegistryRepository
    from watchkeep.store.engine import make_engine
    from watchkeep.store.migrate import upgrade
    from watchkeep.store.projects import ProjectRepository

    engine = make_engine(Settings().resolved_database_url())
    try:
        upgrade(engine)
        projects = ProjectRepository(engine)
        found = projects.get_or_create(project) if create else projects.find(project)
        if found is None:
            raise _fail(f"no project {project!r}")
        try:
            yield engine, RegistryRepository(engine), found.id
        except LookupError as exc:
            raise _fail(str(exc.args[0]) if exc.args else str(exc)) from exc  # no KeyError quotes
        except ValueError as exc:
            raise _fail(str(exc)) from exc
    finally:
        engine.dispose()


def parse_pairs(pairs: list[str] | None, what: str) -> dict[str, Any]:
    """``k=v`` options as a mapping; each value is read as YAML (``0.2`` a number, ``true`` a bool)."""
    from watchkeep.monitor.spec import safe_yaml

    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{what} {pair!r} must be KEY=VALUE")
        value = safe_yaml(raw) if raw.strip() else ""
        out[key.strip()] = value
    return out


def read_template(path: Path) -> str | list[dict[str, Any]]:
    """A template file: text, or (``.yaml``/``.yml``/``.json``) a list of chat messages."""
    from watchkeep.monitor.spec import safe_yaml

    if path.stat().st_size > MAX_TEMPLATE_FILE_BYTES:
        raise ValueError(f"{path} is larger than {MAX_TEMPLATE_FILE_BYTES} bytes")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() not in TEMPLATE_DATA_SUFFIXES:
        return text
    data = safe_yaml(text)
    if not isinstance(data, list):
        raise ValueError(f"{path}: a YAML or JSON template is a list of {{role, content}} messages")
    return data


def _kind(repo: RegistryRepository, project_id: int, name: str, kind: KindName | None) -> Kind:
    """``kind`` when given, else the one kind ``name`` is registered as."""
    from watchkeep.registry.repository import NotRegistered

    if kind is not None:
        return kind
    found: list[Kind] = []
    for candidate, lookup in (("model", repo.model_versions), ("prompt", repo.prompt_versions)):
        try:
            lookup(project_id, name)
        except NotRegistered:
            continue
        found.append(candidate)  # type: ignore[arg-type]
    if not found:
        raise LookupError(f"no model or prompt named {name!r}")
    if len(found) > 1:
        raise ValueError(f"{name!r} is both a model and a prompt: pass --kind")
    return found[0]


def _version(repo: RegistryRepository, project_id: int, kind: Kind, name: str, ref: str | None) -> Any:
    """A model or prompt version by number, alias or (None) the latest."""
    wanted: int | str | None = int(ref) if ref is not None and ref.isdigit() else ref
    if kind == "model":
        return repo.model(project_id, name, wanted)
    return repo.prompt(project_id, name, wanted)


def _when(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _state(created: bool) -> str:
    return "(new)" if created else "(unchanged: same content as this version)"


@models_app.command("register")
def register_model(
    name: Name,
    backend: Annotated[str, typer.Option("--backend", help="Gateway provider kind, e.g. openai.")],
    param: Annotated[list[str] | None, typer.Option("--param", help="KEY=VALUE, repeatable.")] = None,
    artifact_uri: Annotated[str | None, typer.Option("--artifact-uri", help="Where the weights are.")] = None,
    artifact_digest: Annotated[str | None, typer.Option("--artifact-digest", help="sha256:<hex>.")] = None,
    parent: Annotated[int | None, typer.Option("--parent", help="Version this one derives from.")] = None,
    training_dataset: Annotated[
        str | None, typer.Option("--training-dataset", help="Dataset reference, e.g. qa@3.")
    ] = None,
    message: Message = None,
    actor: Actor = "cli",
    project: Project = "default",
) -> None:
    """Register the next version of a model (content-identical: the existing version)."""
    with _open(project, create=True) as (repo, project_id):
        version, created = repo.register_model(
            project_id,
            name,
            backend=backend,
            params=parse_pairs(param, "--param"),
            artifact_uri=artifact_uri,
            artifact_digest=artifact_digest,
            metadata={"message": message} if message else None,
            parent=parent,
            training_dataset=training_dataset,
            created_by=actor,
        )
    typer.echo(f"model {name} v{version.version} {_state(created)}")


@prompts_app.command("register")
def register_prompt(
    name: Name,
    template: Annotated[
        Path,
        typer.Option(
            "--template", exists=True, dir_okay=False, help="Text, or a YAML/JSON list of messages."
        ),
    ],
    setting: Annotated[list[str] | None, typer.Option("--setting", help="Model setting KEY=VALUE.")] = None,
    parent: Annotated[int | None, typer.Option("--parent", help="Version this one derives from.")] = None,
    message: Message = None,
    actor: Actor = "cli",
    project: Project = "default",
) -> None:
    """Register the next version of a prompt; the template is checked in the sandbox first."""
    with _open(project, create=True) as (repo, project_id):
        version, created = repo.register_prompt(
            project_id,
            name,
            template=read_template(template),
            model_settings=parse_pairs(setting, "--setting"),
            message=message,
            parent=parent,
            created_by=actor,
        )
    variables = ", ".join(version.variables) or "none"
    typer.echo(f"prompt {name} v{version.version} {_state(created)}  variables: {variables}")


@registry_app.command("list")
def list_(kind: KindOpt = None, project: Project = "default") -> None:
    """Registered names with their version count, latest version and aliases."""
    kinds: tuple[Kind, ...] = (kind,) if kind else ("model", "prompt")
    with _open(project) as (repo, project_id):
        for each in kinds:
            for summary in repo.names(project_id, each):
                aliases = " ".join(f"{a}={v}" for a, v in sorted(summary.aliases.items())) or "-"
                typer.echo(
                    f"{each:<6} {summary.name}  versions={summary.versions}  latest=v{summary.latest}  "
                    f"aliases: {aliases}"
                )


def _describe_version(version: ModelVersion | PromptVersion, aliases: list[str]) -> str:
    from watchkeep.registry.versions import ModelVersion

    where = f"  [{', '.join(aliases)}]" if aliases else ""
    head = f"v{version.version}  {_when(version.created_at_ns)}  by {version.created_by or '-'}{where}"
    if isinstance(version, ModelVersion):
        params = orjson.dumps(dict(version.params), option=orjson.OPT_SORT_KEYS).decode()
        note = version.metadata.get("message")
        return f"{head}  {version.backend} {params}" + (f"  {note}" if note else "")
    variables = ",".join(version.variables) or "-"
    return f"{head}  variables={variables}" + (f"  {version.message}" if version.message else "")


@registry_app.command("versions")
def versions(name: Name, kind: KindOpt = None, project: Project = "default") -> None:
    """Every version of a name, newest first, with the aliases pointing at it."""
    with _open(project) as (repo, project_id):
        chosen = _kind(repo, project_id, name, kind)
        found = (
            repo.model_versions(project_id, name)
            if chosen == "model"
            else repo.prompt_versions(project_id, name)
        )
        pointing: dict[int, list[str]] = {}
        for alias, at in repo.aliases(project_id, chosen, name).items():
            pointing.setdefault(at, []).append(alias)
        for version in found:
            typer.echo(_describe_version(version, sorted(pointing.get(version.version, []))))


@registry_app.command("history")
def history(
    name: Name,
    kind: KindOpt = None,
    alias: Annotated[str | None, typer.Option("--alias", help="One alias only.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON list instead of a table.")] = False,
    project: Project = "default",
) -> None:
    """Every alias move, oldest first: when, which alias, from, to, who, why and what kind."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from watchkeep.registry.registry_files import event_record

    with _open(project) as (repo, project_id):
        chosen = _kind(repo, project_id, name, kind)
        events = repo.events(project_id, chosen, name, alias)
    if as_json:
        typer.echo(orjson.dumps([event_record(e) for e in events]).decode())
        return
    if not events:
        typer.echo(f"{name}: no alias events" + (f" for {alias}" if alias else ""))
        return
    table = Table(title=f"{chosen} {name}: alias history")
    for column in ("when (UTC)", "alias", "kind", "from", "to", "who", "why"):
        table.add_column(column)
    for e in events:
        table.add_row(
            _when(e.at_ns),
            e.alias,
            e.kind,
            "-" if e.from_version is None else f"v{e.from_version}",
            "removed" if e.to_version is None else f"v{e.to_version}",
            escape(e.actor),
            escape(e.reason or ""),
        )
    Console(width=160).print(table)


@registry_app.command("move")
def move(
    name: Name,
    alias: Annotated[str, typer.Argument(help="Alias to move, e.g. production.")],
    version: Annotated[str, typer.Argument(help="Version number, or an alias to copy.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded with the move).")],
    kind: KindOpt = None,
    actor: Actor = "cli",
    project: Project = "default",
) -> None:
    """Point an alias at a version (an appended event); a gated alias moves by ``promote``."""
    from watchkeep.registry.promotion import PromotionService

    with open_store(project) as (engine, repo, project_id):
        chosen = _kind(repo, project_id, name, kind)
        if PromotionService(engine, repo, eval_runs(engine)).policy(project_id, chosen, name, alias):
            typer.echo(
                f"error: {name}@{alias} is gated by a promotion policy; move it with "
                f"`watchkeep registry promote {name} --alias {alias} --to VERSION`",
                err=True,
            )
            raise typer.Exit(1)
        target = _version(repo, project_id, chosen, name, version).version
        event = repo.move_alias(project_id, chosen, name, alias, target, actor=actor, reason=reason)
    before = "nothing" if event.from_version is None else f"v{event.from_version}"
    typer.echo(f"{name}@{alias}: {before} -> v{event.to_version}")


@registry_app.command("rollback")
def rollback(
    name: Name,
    alias: Annotated[str, typer.Option("--alias", help="Alias to roll back.")] = "production",
    reason: Annotated[str | None, typer.Option("--reason", help="Why (recorded).")] = None,
    kind: KindOpt = None,
    actor: Actor = "cli",
    project: Project = "default",
) -> None:
    """Move an alias back to the version it pointed at before (itself an event)."""
    with _open(project) as (repo, project_id):
        chosen = _kind(repo, project_id, name, kind)
        event = repo.rollback(project_id, chosen, name, alias, actor=actor, reason=reason)
    typer.echo(f"{name}@{alias}: rolled back v{event.from_version} -> v{event.to_version}")


def _model_changes(old: ModelVersion, new: ModelVersion) -> list[str]:
    fields = ("backend", "params", "artifact_uri", "artifact_digest", "training_dataset", "metadata")
    lines = []
    for field in fields:
        before, after = getattr(old, field), getattr(new, field)
        if field in {"params", "metadata"}:
            before, after = dict(before), dict(after)
        if before != after:
            lines.append(f"~ {field}: {before!r} -> {after!r}")
    return lines


def _prompt_changes(old: PromptVersion, new: PromptVersion) -> list[str]:
    from watchkeep.registry.prompts import PromptContent, diff_prompts
    from watchkeep.registry.versions import template_json

    def content(v: PromptVersion) -> PromptContent:
        return PromptContent.of(template_json(v.template), v.model_settings)

    result = diff_prompts(
        content(old), content(new), f"{new.name}@{old.version}", f"{new.name}@{new.version}"
    )
    lines = [result.text.rstrip("\n")] if result.text else []
    lines += [f"+ variable {v}" for v in result.variables_added]
    lines += [f"- variable {v}" for v in result.variables_removed]
    lines += [f"~ setting {s.key} ({s.change}): {s.old!r} -> {s.new!r}" for s in result.settings]
    return lines


@registry_app.command("diff")
def diff(
    name: Name,
    old: Annotated[str, typer.Argument(help="From version (number or alias).")],
    new: Annotated[str, typer.Argument(help="To version (number or alias).")],
    kind: KindOpt = None,
    project: Project = "default",
) -> None:
    """Prompts: the unified template diff, variables and settings changed; models: fields changed."""
    with _open(project) as (repo, project_id):
        chosen = _kind(repo, project_id, name, kind)
        before = _version(repo, project_id, chosen, name, old)
        after = _version(repo, project_id, chosen, name, new)
    lines = _model_changes(before, after) if chosen == "model" else _prompt_changes(before, after)
    typer.echo(f"{name} v{before.version} -> v{after.version}: " + ("changed" if lines else "no change"))
    for line in lines:
        typer.echo(line)


@registry_app.command("export")
def export(
    directory: Annotated[Path, typer.Argument(help="Folder to write (models/, prompts/).", file_okay=False)],
    project: Project = "default",
) -> None:
    """One YAML file per name (versions and alias events), so the registry can live in git."""
    from watchkeep.registry.registry_files import export_registry

    with _open(project) as (repo, project_id):
        written = export_registry(repo, project_id, directory)
    typer.echo(f"wrote {len(written)} files to {directory}")


@registry_app.command("import")
def import_(
    directory: Annotated[Path, typer.Argument(help="Folder an export wrote.", exists=True, file_okay=False)],
    actor: Actor = "import",
    project: Project = "default",
) -> None:
    """Replay an export into a project: identical versions reused, aliases it has left alone."""
    from watchkeep.registry.registry_files import import_registry

    with _open(project, create=True) as (repo, project_id):
        report = import_registry(repo, project_id, directory, actor)
    typer.echo(
        f"versions: {report.versions_created} new, {report.versions_reused} already there; "
        f"alias events appended: {report.events_appended}"
    )
    for kept in report.aliases_kept:
        typer.echo(f"kept {kept} (the project already has it)", err=True)
