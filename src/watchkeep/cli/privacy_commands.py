"""``watchkeep privacy ...``: retention periods, and erasure and export of a data subject.

They work on the database of the settings as the operator (like ``keys`` and
``projects``); erasure and export are recorded in the audit log with the actor ``cli``
and the subject as a keyed hash, never in clear.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from watchkeep.config import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

privacy_app = typer.Typer(
    help="Retention periods; erasure and export of an end user's data.", no_args_is_help=True
)
retention_app = typer.Typer(help="How long each kind of data is kept.", no_args_is_help=True)
privacy_app.add_typer(retention_app, name="retention")

ProjectName = Annotated[str, typer.Option("--project", "-p", help="Project name.")]
UserId = Annotated[str, typer.Argument(help="The end user's id, as on their traces.")]
DaysOpt = Annotated[str | None, typer.Option(help="Days, or 'none' to keep forever (default: unchanged).")]
ACTOR = "cli"


def _engine() -> tuple[Settings, Engine]:
    from watchkeep.store.engine import make_engine
    from watchkeep.store.migrate import upgrade

    settings = Settings()
    engine = make_engine(settings.resolved_database_url())
    upgrade(engine)
    return settings, engine


def _project_id(engine: Engine, name: str) -> int:
    from watchkeep.store.projects import ProjectRepository

    project = ProjectRepository(engine).find(name)
    if project is None:
        typer.echo(f"no project {name!r}", err=True)
        raise typer.Exit(1)
    return project.id


def _days(value: str) -> int | None:
    if value.strip().lower() in ("none", "null", "forever"):
        return None
    try:
        return int(value)
    except ValueError:
        typer.echo(f"days must be a whole number or 'none', not {value!r}", err=True)
        raise typer.Exit(2) from None


@retention_app.command("show")
def show(project: ProjectName) -> None:
    """Print the project's retention periods as JSON (null: kept forever)."""
    from watchkeep.security.retention import validate_retention
    from watchkeep.store.privacy_repository import PrivacySettingsRepository
    from watchkeep.store.retention_queries import KINDS

    _, engine = _engine()
    stored = PrivacySettingsRepository(engine).get(_project_id(engine, project)).retention
    typer.echo(json.dumps(validate_retention({k: v for k, v in stored.items() if k in KINDS})))


@retention_app.command("set")
def set_retention(
    project: ProjectName,
    spans: DaysOpt = None,
    payloads: DaysOpt = None,
    scores: DaysOpt = None,
    eval_items: DaysOpt = None,
    alerts: DaysOpt = None,
) -> None:
    """Change the given periods (others keep theirs) and print the result."""
    from watchkeep.security.audit import AuditLog
    from watchkeep.security.retention import InvalidRetention, validate_retention
    from watchkeep.store.privacy_repository import PrivacySettingsRepository

    _, engine = _engine()
    project_id = _project_id(engine, project)
    repo = PrivacySettingsRepository(engine)
    before = repo.get(project_id).retention
    given = {
        "spans": spans,
        "payloads": payloads,
        "scores": scores,
        "eval_items": eval_items,
        "alerts": alerts,
    }
    wanted = {**before, **{k: _days(v) for k, v in given.items() if v is not None}}
    try:
        periods = validate_retention(wanted)
    except InvalidRetention as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    repo.put(project_id, actor=ACTOR, retention=dict(periods))
    AuditLog(engine).record(
        actor=ACTOR,
        action="retention.update",
        project_id=project_id,
        target="retention",
        before=before,
        after=periods,
    )
    typer.echo(json.dumps(periods))


@privacy_app.command("erase")
def erase(
    user_id: UserId,
    project: ProjectName,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete every row of the project tied to the end user; prints the rows per table."""
    from watchkeep.security.audit import AuditLog
    from watchkeep.security.erasure import subject_service

    settings, engine = _engine()
    project_id = _project_id(engine, project)
    if not yes and not typer.confirm(f"Erase all data of user {user_id!r} in project {project!r}?"):
        raise typer.Exit(1)
    done = subject_service(settings, engine, AuditLog(engine)).erase(project_id, user_id, actor=ACTOR)
    typer.echo(json.dumps({"subject": done.subject, "rows": done.rows, "total": done.total}))


@privacy_app.command("export")
def export(
    user_id: UserId,
    project: ProjectName,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
) -> None:
    """Write the end user's data in the project as JSON lines."""
    import orjson

    from watchkeep.security.audit import AuditLog
    from watchkeep.security.erasure import subject_service

    settings, engine = _engine()
    project_id = _project_id(engine, project)
    subjects = subject_service(settings, engine, AuditLog(engine))
    subjects.audit_export(project_id, user_id, actor=ACTOR)
    rows = (orjson.dumps(r, option=orjson.OPT_NON_STR_KEYS) for r in subjects.export(project_id, user_id))
    if output is None:
        for line in rows:
            typer.echo(line.decode())
        return
    count = 0
    with output.open("wb") as out:
        for line in rows:
            out.write(line + b"\n")
            count += 1
    typer.echo(f"{count} lines written to {output}", err=True)
