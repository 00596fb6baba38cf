"""``watchkeep datasets``: import, list, show, export and diff dataset versions, and build
one from production traces.

Like ``projects``, these commands work on the database directly (the operator's view), in
the project named by ``--project``. Errors are one line on stderr and exit code 1.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from watchkeep.cli.query_commands import with_trace_filters
from watchkeep.config import Settings

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy import Engine

    from watchkeep.evals.dataset_repository import DatasetRepository, DatasetVersionInfo
    from watchkeep.security.crypto import Keyring

datasets_app = typer.Typer(help="Evaluation datasets and their versions.", no_args_is_help=True)

Project = Annotated[str, typer.Option("--project", envvar="WATCHKEEP_PROJECT", help="Project name.")]
Version = Annotated[str, typer.Option("--version", help="latest, a number or a hash prefix.")]
FormatOpt = Annotated[str, typer.Option("--format", help="auto (from the file name), jsonl, csv or parquet.")]
Message = Annotated[str | None, typer.Option("--message", "-m", help="What this version changes.")]
MAX_IMPORT_BYTES = 2 << 30


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _sealer() -> Keyring | None:
    """The settings' encryption keyring: items and payloads are encrypted at rest with it."""
    from watchkeep.security.crypto import keyring_from_settings

    return keyring_from_settings(Settings())


def _engine() -> Engine:
    from watchkeep.store.engine import make_engine
    from watchkeep.store.migrate import upgrade

    engine = make_engine(Settings().resolved_database_url())
    upgrade(engine)
    return engine


@contextmanager
def _errors_only() -> Iterator[None]:
    """Parse and validation errors as the CLI prints them (no database needed)."""
    from watchkeep.evals.datasets import DatasetParseError

    try:
        yield
    except DatasetParseError as exc:
        for error in exc.errors:
            typer.echo(f"row {error.row}: {error.message}", err=True)
        raise _fail(str(exc)) from exc
    except ValueError as exc:
        raise _fail(str(exc)) from exc


@contextmanager
def _open(project: str, *, create: bool = False) -> Iterator[tuple[Engine, DatasetRepository, int]]:
    """The engine, repository and project id; a missing project fails (unless ``create``);
    a lookup, parse or validation error is printed and exits 1."""
    from watchkeep.evals.dataset_repository import DatasetNotFound, DatasetRepository
    from watchkeep.store.projects import ProjectRepository

    engine = _engine()
    try:
        projects = ProjectRepository(engine)
        found = projects.get_or_create(project) if create else projects.find(project)
        if found is None:
            raise _fail(f"no project {project!r}")
        with _errors_only():
            try:
                yield engine, DatasetRepository(engine, sealer=_sealer()), found.id
            except DatasetNotFound as exc:
                raise _fail(str(exc).strip("'\"")) from exc
    finally:
        engine.dispose()


def _describe(info: DatasetVersionInfo, created: bool | None = None) -> str:
    splits = ", ".join(f"{k}={v}" for k, v in sorted(info.splits.items()))
    state = "" if created is None else (" (new)" if created else " (unchanged: same content)")
    return (
        f"{info.dataset_name} v{info.version}{state}  {info.item_count} items  "
        f"{info.content_hash[:12]}" + (f"  [{splits}]" if splits else "")
    )


def _redacted(engine: Engine, project_id: int, items: list[Any]) -> list[Any]:
    """Items with PII redacted under the project's policy, as the API stores them."""
    from watchkeep.security.pii import PiiService
    from watchkeep.store.privacy_repository import PrivacySettingsRepository

    return PiiService(PrivacySettingsRepository(engine), Settings()).redact_items(project_id, items)


def _store(project: str, name: str, items: list[Any], source: dict[str, Any], message: str | None) -> None:
    with _open(project, create=True) as (engine, repo, project_id):
        info, created = repo.create_version(
            project_id,
            name,
            _redacted(engine, project_id, items),
            source=source,
            message=message,
            created_by="cli",
        )
        typer.echo(_describe(info, created))


@datasets_app.command("import")
def import_(
    name: Annotated[str, typer.Argument(help="Dataset name (created on first import).")],
    file: Annotated[Path, typer.Argument(help="A JSONL, CSV or Parquet file.", exists=True, dir_okay=False)],
    fmt: FormatOpt = "auto",
    split_by: Annotated[
        str | None, typer.Option("--split-by", help="Assign splits, e.g. train=0.8,test=0.2.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split assignment.")] = 0,
    message: Message = None,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Leave bad rows out (reported) instead of failing.")
    ] = False,
    project: Project = "default",
) -> None:
    """Import a file as the next version of a dataset (unchanged content: no new version)."""
    from watchkeep.evals.datasets import assign_splits, detect_format, parse_items, parse_ratios

    with _errors_only():
        chosen = detect_format(file.name) if fmt == "auto" else fmt
        if file.stat().st_size > MAX_IMPORT_BYTES:
            raise ValueError(f"{file} is larger than {MAX_IMPORT_BYTES} bytes")
        parsed = parse_items(file.read_bytes(), chosen, skip_invalid=skip_invalid)
        for error in parsed.skipped[:20]:
            typer.echo(f"skipped row {error.row}: {error.message}", err=True)
        if parsed.skipped:
            typer.echo(f"skipped {len(parsed.skipped)} invalid rows", err=True)
        items = parsed.items
        if split_by:
            items = assign_splits(items, parse_ratios(split_by), seed)
    source = {"kind": "file", "file": file.name, "format": chosen, "skipped": len(parsed.skipped)}
    if split_by:
        source["split_by"], source["seed"] = split_by, seed
    _store(project, name, items, source, message)


@datasets_app.command("list")
def list_(project: Project = "default") -> None:
    """The project's datasets with their latest version."""
    with _open(project) as (_, repo, project_id):
        cursor: str | None = None
        while True:
            page = repo.list_datasets(project_id, limit=200, cursor=cursor)
            for summary in page.items:
                latest = _describe(summary.latest) if summary.latest else f"{summary.name} (no versions)"
                typer.echo(f"{latest}  versions={summary.versions}")
            if page.next_cursor is None:
                return
            cursor = page.next_cursor


@datasets_app.command("versions")
def versions(
    name: Annotated[str, typer.Argument(help="Dataset name.")], project: Project = "default"
) -> None:
    """Every version of a dataset, newest first."""
    with _open(project) as (_, repo, project_id):
        for info in repo.versions(project_id, name):
            note = f"  {info.message}" if info.message else ""
            typer.echo(f"{_describe(info)}  by {info.created_by or '-'}{note}")


@datasets_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    version: Version = "latest",
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="Items to print.")] = 10,
    project: Project = "default",
) -> None:
    """A version's summary and its first items (one JSON object a line)."""
    from watchkeep.evals.datasets import item_record

    with _open(project) as (_, repo, project_id):
        info = repo.resolve(project_id, name, version)
        typer.echo(_describe(info))
        for item in repo.items(project_id, info.id, limit=limit):
            typer.echo(orjson.dumps(item_record(item)).decode())


@datasets_app.command("export")
def export(
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.", dir_okay=False)],
    version: Version = "latest",
    fmt: FormatOpt = "auto",
    project: Project = "default",
) -> None:
    """Write a version to a file that ``import`` reads back to the same content."""
    from watchkeep.evals.datasets import detect_format, export_items

    with _open(project) as (_, repo, project_id):
        chosen = detect_format(output.name) if fmt == "auto" else fmt
        info = repo.resolve(project_id, name, version)
        output.write_bytes(export_items(repo.items(project_id, info.id), chosen))
    typer.echo(f"wrote {info.item_count} items of {_describe(info)} to {output}", err=True)


@datasets_app.command("diff")
def diff(
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    old: Annotated[str, typer.Argument(help="From version (number, latest or hash prefix).")],
    new: Annotated[str, typer.Argument(help="To version.")],
    limit: Annotated[int, typer.Option("--limit", min=1, max=100_000, help="Items to list.")] = 50,
    project: Project = "default",
) -> None:
    """Items added, removed and changed between two versions (paired by item key)."""
    from watchkeep.evals.datasets import diff_items

    with _open(project) as (_, repo, project_id):
        before, after = repo.resolve(project_id, name, old), repo.resolve(project_id, name, new)
        result = diff_items(repo.items(project_id, before.id), repo.items(project_id, after.id), limit=limit)
    typer.echo(
        f"v{before.version} -> v{after.version}: {result.added_total} added, {result.removed_total} "
        f"removed, {result.changed_total} changed, {result.unchanged} unchanged"
    )
    for item in result.added:
        typer.echo(f"+ {item.key}")
    for item in result.removed:
        typer.echo(f"- {item.key}")
    for change in result.changed:
        typer.echo(f"~ {change.key}  ({', '.join(change.fields)})")
    if result.truncated:
        typer.echo(f"(only the first {limit} listed)")


@datasets_app.command("from-traces")
@with_trace_filters()
def from_traces(
    dataset: Annotated[str, typer.Argument(metavar="NAME", help="Dataset name (created on first use).")],
    filters: dict[str, Any],
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=100_000, help="At most this many items.")
    ] = 1000,
    no_expected: Annotated[
        bool, typer.Option("--no-expected", help="Leave the expected output empty.")
    ] = False,
    message: Message = None,
    project: Project = "default",
) -> None:
    """A new version from the LLM calls of the traces matching the filters."""
    from watchkeep.evals.dataset_sources import items_from_traces
    from watchkeep.store.trace_queries import TraceQueries

    filt = trace_filter(filters)
    with _open(project) as (engine, _, project_id):
        items = items_from_traces(
            TraceQueries(engine, sealer=_sealer()),
            project_id,
            filt,
            limit=limit,
            with_expected=not no_expected,
        )
    if not items:
        raise _fail("no trace matched with an LLM call that kept its input")
    source = {"kind": "traces", "filter": {k: str(v) for k, v in filters.items() if v is not None}}
    _store(project, dataset, items, source, message)


def trace_filter(filters: dict[str, Any]) -> Any:
    """The store's ``TraceFilter`` from the CLI's filter keywords (``trace_filters``)."""
    from watchkeep.store.trace_queries import TraceFilter

    def ns(key: str) -> int | None:
        when = filters.get(key)
        return None if when is None else int(when.timestamp() * 1_000_000_000)

    return TraceFilter(
        start_from_ns=ns("start_from"),
        start_to_ns=ns("start_to"),
        model=filters.get("model"),
        user_id=filters.get("user_id"),
        session_id=filters.get("session_id"),
        environment=filters.get("environment"),
        release=filters.get("release"),
        status=filters.get("status"),
        name=filters.get("name"),
        q=filters.get("q"),
        tags=tuple(filters.get("tags") or ()),
        metadata=tuple((filters.get("metadata") or {}).items()),
    )
