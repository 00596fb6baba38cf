"""``watchkeep audit``: check the audit log's hash chain and read it, on the server.

``verify`` exits 1 naming each entry edited, inserted or removed behind the log's back,
and prints the head (seq and hash): keep it somewhere the database's writers cannot reach
and pass it back as ``--anchor`` later, so cutting off the tail shows too (a hash chain
alone cannot see it). ``list`` is the one reader of server-wide entries (logins, user
accounts, project deletions), which no project key sees. ``record_cli`` is how other
commands put their own changes in the log.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from watchkeep.config import Settings

if TYPE_CHECKING:
    from watchkeep.security.audit import AuditEntry, AuditLog

audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
CLI_ACTOR = "cli"


def _log() -> AuditLog:
    from watchkeep.security.audit import AuditLog
    from watchkeep.store.engine import make_engine
    from watchkeep.store.migrate import upgrade

    engine = make_engine(Settings().resolved_database_url())
    upgrade(engine)
    return AuditLog(engine)


def record_cli(action: str, target: str, project_id: int | None = None, **fields: Any) -> None:
    """An audit entry for a change made on the command line (actor ``cli``)."""
    _log().record(actor=CLI_ACTOR, action=action, project_id=project_id, target=target, **fields)


def _anchor_problem(log: AuditLog, anchor: str) -> str | None:
    """Why the chain no longer holds the anchored ``SEQ:HASH``, if it does not."""
    seq_text, _, digest = anchor.partition(":")
    if not seq_text.isdigit() or len(digest) != 64:
        raise typer.BadParameter("expected SEQ:HASH as printed by an earlier verify", param_hint="--anchor")
    seq = int(seq_text)
    found = log.entries(after_seq=seq - 1, limit=1)
    if not found or found[0].seq != seq:
        return f"the anchored entry {seq} is gone: the log was cut off or entries were removed"
    if found[0].hash != digest:
        return f"the anchored entry {seq} has another hash now: the log was rewritten from there on"
    return None


@audit_app.command("verify")
def verify(
    anchor: Annotated[
        str | None, typer.Option(help="SEQ:HASH of a head printed earlier; it must still be in the chain.")
    ] = None,
) -> None:
    """Walk the whole chain; exit 1 naming each entry that was edited, inserted or removed."""
    log = _log()
    verdict = log.verify()
    problems = list(verdict.problems)
    if anchor is not None and (problem := _anchor_problem(log, anchor)) is not None:
        problems.append(problem)
    for problem in problems:
        typer.echo(problem, err=True)
    head = log.head()
    typer.echo(f"checked {verdict.checked} entries: {'TAMPERED' if problems else 'intact'}")
    if head is not None:
        typer.echo(f"head {head.seq}:{head.hash} (keep it elsewhere; pass it as --anchor later)")
    if problems:
        raise typer.Exit(1)


def _row(e: AuditEntry) -> dict[str, Any]:
    from datetime import UTC, datetime

    at = datetime.fromtimestamp(e.at_ns / 1e9, tz=UTC).isoformat()
    return {
        "seq": e.seq,
        "at": at,
        "project_id": e.project_id,
        "actor": e.actor,
        "action": e.action,
        "target": e.target,
        "before": e.before,
        "after": e.after,
        "detail": e.detail,
        "hash": e.hash,
    }


@audit_app.command("list")
def list_entries(
    project: Annotated[str | None, typer.Option(help="Only this project's entries (by name).")] = None,
    action: Annotated[
        str | None, typer.Option(help="Only this action (key.create, login.failed ...).")
    ] = None,
    after_seq: Annotated[int | None, typer.Option(help="Entries after this seq.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of lines.")] = False,
) -> None:
    """Entries oldest first, every project's and the server-wide ones."""
    from watchkeep.store.projects import ProjectRepository

    log = _log()
    project_id = None
    if project is not None:
        found = ProjectRepository(log.engine).find(project)
        if found is None:
            typer.echo(f"no project named {project!r}", err=True)
            raise typer.Exit(1)
        project_id = found.id
    rows = [
        _row(e) for e in log.entries(project_id=project_id, action=action, after_seq=after_seq, limit=limit)
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        where = "server" if r["project_id"] is None else f"project {r['project_id']}"
        typer.echo(
            f"{r['seq']}  {r['at']}  {where}  {r['actor']}  {r['action']}  {r['target'] or ''}  {r['detail'] or ''}"
        )
