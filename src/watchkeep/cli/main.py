"""``watchkeep`` command line: server, database, keys and the local demo."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from watchkeep.cli import demo, monitoring, people_commands, query_commands
from watchkeep.cli.audit_commands import audit_app, record_cli
from watchkeep.cli.canary_commands import canary_app
from watchkeep.cli.dataset_commands import datasets_app
from watchkeep.cli.eval_commands import eval_app
from watchkeep.cli.mlflow_commands import mlflow_app
from watchkeep.cli.privacy_commands import privacy_app
from watchkeep.cli.promotion_commands import install as install_promotion
from watchkeep.cli.registry_commands import registry_app
from watchkeep.config import Settings
from watchkeep.gc_tuning import tune_for_throughput
from watchkeep.security.authz import Role

if TYPE_CHECKING:
    from fastapi import FastAPI
    from sqlalchemy import Engine

    from watchkeep.store.projects import ProjectRepository

app = typer.Typer(help="watchkeep: maintain and monitor LLMs in production.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
keys_app = typer.Typer(help="Project API keys.", no_args_is_help=True)
projects_app = typer.Typer(help="Projects.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(projects_app, name="projects")
app.command("up", help="Start the server with demo traffic (what `make up` runs).")(demo.up)
app.command("worker")(monitoring.worker)
app.add_typer(monitoring.monitors_app, name="monitors")
app.add_typer(query_commands.traces_app, name="traces")
app.add_typer(query_commands.scores_app, name="scores")
app.command("export")(query_commands.export)
app.add_typer(people_commands.users_app, name="users")
app.add_typer(people_commands.orgs_app, name="orgs")
app.add_typer(datasets_app, name="datasets")
app.add_typer(eval_app, name="eval")
app.add_typer(privacy_app, name="privacy")
app.add_typer(audit_app, name="audit")
install_promotion(registry_app)
app.add_typer(registry_app, name="registry")
registry_app.add_typer(mlflow_app, name="mlflow")
registry_app.add_typer(canary_app, name="canary")


@app.command()
def server(
    host: Annotated[str | None, typer.Option(envvar="WATCHKEEP_HOST", help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(envvar="WATCHKEEP_PORT", help="TCP port.")] = None,
) -> None:
    """Run the API, OTLP ingest (HTTP, and gRPC on WATCHKEEP_OTLP_GRPC_PORT) and metrics server."""
    import uvicorn

    from watchkeep.app import create_app
    from watchkeep.logs import configure_logging

    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    settings = Settings(**overrides)  # type: ignore[arg-type]
    configure_logging(settings.log_level, settings.log_format)
    server_app = create_app(settings, otlp_grpc=True)
    tune_for_throughput(settings.gc_young_threshold)
    uvicorn.run(
        server_app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


@app.command()
def gateway(
    host: Annotated[str | None, typer.Option(envvar="WATCHKEEP_HOST", help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(envvar="WATCHKEEP_GATEWAY_PORT", help="TCP port.")] = None,
    config: Annotated[
        Path | None, typer.Option(envvar="WATCHKEEP_GATEWAY_CONFIG", help="Routes YAML file.")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Processes (limits: use Redis).")] = 1,
) -> None:
    """Run the OpenAI-compatible gateway alone (traces go to the same database as the server)."""
    import os

    import uvicorn

    from watchkeep.logs import configure_logging

    # The monitor loop runs in `watchkeep server`; a gateway replica only serves and traces.
    # It serves no OTLP ingest either, so it needs no decode processes.
    os.environ.update(
        WATCHKEEP_GATEWAY_ENABLED="true",
        WATCHKEEP_WORKER_ENABLED="false",
        WATCHKEEP_PROCESS_ROLE="gateway",
        WATCHKEEP_INGEST_DECODE_WORKERS="0",
    )
    # About one span a call: a small writer cache keeps a replica's memory flat.
    os.environ.setdefault("WATCHKEEP_SQLITE_WRITER_CACHE_MIB", "16")
    if config is not None:
        os.environ["WATCHKEEP_GATEWAY_CONFIG"] = str(config)
    settings = Settings(**({"host": host} if host is not None else {}))  # type: ignore[arg-type]
    configure_logging(settings.log_level, settings.log_format)
    uvicorn.run(
        "watchkeep.cli.main:gateway_app",
        factory=True,
        workers=workers,
        host=settings.host,
        port=port if port is not None else settings.gateway_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


def gateway_app() -> FastAPI:
    """The gateway-only app from the environment (uvicorn's factory, once per worker)."""
    from watchkeep.app import create_app
    from watchkeep.logs import configure_logging

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    gateway = create_app(settings, gateway_only=True)
    tune_for_throughput(settings.gc_young_threshold)
    return gateway


def _upgraded_engine() -> Engine:
    from watchkeep.store.migrate import upgrade

    engine = _engine()
    upgrade(engine)
    return engine


def _engine() -> Engine:
    from watchkeep.store.engine import make_engine

    settings = Settings()
    return make_engine(settings.resolved_database_url())


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply the schema migrations."""
    from watchkeep.store.migrate import current_revision, upgrade

    engine = _engine()
    upgrade(engine, revision)
    typer.echo(f"database at revision {current_revision(engine)}")


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision of the database."""
    from watchkeep.store.migrate import current_revision, head_revision

    typer.echo(f"current: {current_revision(_engine())}  head: {head_revision()}")


def _projects() -> ProjectRepository:
    from watchkeep.store.projects import ProjectRepository

    return ProjectRepository(_upgraded_engine())


@keys_app.command("create")
def keys_create(
    project: Annotated[str, typer.Option(help="Project name; created when new.")],
    role: Annotated[Role, typer.Option(help="What the key may do.")] = Role.MEMBER,
    name: Annotated[str | None, typer.Option(help="A note to recognise the key by.")] = None,
    expires: Annotated[
        str | None, typer.Option(help="When it stops working: a duration (30d, 12h, 2w) or an ISO date.")
    ] = None,
) -> None:
    """Create a key; the key alone is printed on the last line (it is not shown again)."""
    from watchkeep.security.keys import key_prefix

    expires_at = _expiry(expires)
    repo = _projects()
    key = repo.create_key(project, role.value, name, expires_at)
    stored = repo.lookup_key(key_prefix(key))
    record_cli(
        "key.create",
        f"key:{key_prefix(key)}",
        None if stored is None else stored.project_id,
        after={"role": role.value, "name": name, "expires_at": expires_at},
    )
    until = f", expiring {_when(expires_at)}" if expires_at else ""
    typer.echo(f"created a {role.value} key for project {project!r}{until}; store it now:", err=True)
    typer.echo(key)


def _expiry(text: str | None) -> int | None:
    from watchkeep.security.keys import parse_expiry

    try:
        return None if text is None else parse_expiry(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--expires") from None


def _when(ns: int | None) -> str:
    from datetime import UTC, datetime

    return "never" if ns is None else datetime.fromtimestamp(ns // 10**9, tz=UTC).isoformat()


def _echo_json(rows: object) -> None:
    import json

    typer.echo(json.dumps(rows, indent=2))


@keys_app.command("list")
def keys_list(
    project: Annotated[str | None, typer.Option(help="Only this project.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of lines.")] = False,
) -> None:
    """List keys (prefixes only) with their state (active, revoked, expired) and expiry."""
    rows = [
        {
            "prefix": k.prefix,
            "project": k.project,
            "role": k.role,
            "state": k.state(),
            "created_at": _when(k.created_at_unix_nano),
            "expires_at": None if k.expires_at_unix_nano is None else _when(k.expires_at_unix_nano),
            "name": k.name,
        }
        for k in _projects().list_keys(project)
    ]
    if as_json:
        _echo_json(rows)
        return
    for r in rows:
        expiry = f"expires {r['expires_at']}" if r["expires_at"] else "no expiry"
        typer.echo(f"{r['prefix']}  {r['project']}  {r['role']}  {r['state']}  {expiry}  {r['name'] or ''}")


@keys_app.command("revoke")
def keys_revoke(prefix: Annotated[str, typer.Argument(help="The key or its prefix.")]) -> None:
    """Revoke a key (servers stop accepting it within the key cache time)."""
    from watchkeep.security.keys import key_prefix

    repo = _projects()
    stored = repo.lookup_key(key_prefix(prefix))
    if not repo.revoke_key(key_prefix(prefix)):
        typer.echo("no active key with that prefix", err=True)
        raise typer.Exit(1)
    record_cli("key.revoke", f"key:{key_prefix(prefix)}", None if stored is None else stored.project_id)
    typer.echo("revoked")


@keys_app.command("rotate-encryption")
def keys_rotate_encryption(
    batch: Annotated[int, typer.Option(min=1, help="Rows per transaction.")] = 1000,
) -> None:
    """Re-encrypt every stored value under the current encryption key (safe while servers run).

    Values sealed with WATCHKEEP_ENCRYPTION_PREVIOUS_KEYS are sealed again with
    WATCHKEEP_ENCRYPTION_KEY; interrupted, it resumes where it stopped when run again.
    """
    from watchkeep.config import Settings
    from watchkeep.security.crypto import EncryptionKeyError, keyring_from_settings
    from watchkeep.security.rotation import Rotation

    try:
        keyring = keyring_from_settings(Settings())
    except EncryptionKeyError as exc:
        raise typer.BadParameter(str(exc)) from None
    if keyring is None:
        typer.echo("no encryption key configured (WATCHKEEP_ENCRYPTION_KEY or _FILE)", err=True)
        raise typer.Exit(1)
    counts = Rotation(_upgraded_engine(), keyring, batch=batch).run()
    record_cli("keys.rotate_encryption", f"key:{keyring.current_id}", after=counts)
    for name, n in counts.items():
        typer.echo(f"{name}: {n} re-encrypted")
    typer.echo(f"all values now on key {keyring.current_id}; earlier keys may be removed")


@projects_app.command("list")
def projects_list(
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of lines.")] = False,
) -> None:
    """List projects: name, id, creation time and key counts (all keys, active ones)."""
    repo, after = _projects(), 0
    rows: list[dict[str, object]] = []
    while batch := repo.list_projects(1000, after_id=after):
        rows += [
            {
                "name": p.name,
                "id": p.id,
                "created_at": _when(p.created_at_unix_nano),
                "keys": p.keys,
                "active_keys": p.active_keys,
            }
            for p in batch
        ]
        after = batch[-1].id
    if as_json:
        _echo_json(rows)
        return
    for r in rows:
        typer.echo(
            f"{r['name']}  id={r['id']}  created {r['created_at']}  keys {r['active_keys']}/{r['keys']} active"
        )


@projects_app.command("create")
def projects_create(
    name: Annotated[str, typer.Argument(help="Letters, digits, '.', '_', '-' (at most 128).")],
    with_key: Annotated[bool, typer.Option("--with-key", help="Also create its first key.")] = False,
    role: Annotated[Role, typer.Option(help="The first key's role.")] = Role.ADMIN,
    expires: Annotated[str | None, typer.Option(help="The first key's expiry (30d, ISO date).")] = None,
    org: Annotated[str | None, typer.Option("--org", help="Its organisation (default: 'default').")] = None,
) -> None:
    """Create a project (an error if it exists); with --with-key its key is printed on the last line."""
    from watchkeep.store.projects import ProjectExists, valid_project_name

    if not valid_project_name(name):
        raise typer.BadParameter("use letters, digits, '.', '_', '-' (at most 128)", param_hint="NAME")
    repo = _projects()
    try:
        project = repo.create(name, organisation=org)
    except ProjectExists:
        typer.echo(f"a project named {name!r} exists", err=True)
        raise typer.Exit(1) from None
    except LookupError:
        typer.echo(f"no organisation named {org!r} (watchkeep orgs create {org})", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"created project {name!r} (id {project.id})", err=True)
    if with_key:
        key, _info = repo.issue_key(project, role.value, None, _expiry(expires))
        typer.echo(f"its first key ({role.value}); store it now:", err=True)
        typer.echo(key)


@projects_app.command("delete")
def projects_delete(
    name: Annotated[str, typer.Argument(help="The project to delete.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a project: its keys, scores, monitors and routes, and all its telemetry.

    Its keys stop working at once (servers that cached one may accept it for up to the
    key cache time); traces are deleted in batches, so a large project takes a while
    and other projects' ingest goes on meanwhile.
    """
    from watchkeep.store.migrate import upgrade
    from watchkeep.store.project_deletion import delete_project

    if not yes:
        typer.confirm(f"delete project {name!r} and everything it stored?", abort=True)
    engine = _engine()
    upgrade(engine)

    def progress(table: str, rows: int) -> None:
        typer.echo(f"  {table}: {rows:,} rows deleted so far", err=True)

    deleted = delete_project(engine, name, progress=progress)
    if deleted is None:
        typer.echo(f"no project named {name!r}", err=True)
        raise typer.Exit(1)
    counts = ", ".join(f"{rows:,} {table}" for table, rows in deleted.rows.items())
    record_cli("project.delete", f"project:{name}", after={"rows": dict(deleted.rows)})
    typer.echo(f"deleted project {name!r} (keys, scores, monitors, routes) and {counts}")


if __name__ == "__main__":
    app()
