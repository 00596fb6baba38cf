"""``watchkeep registry policy|promote|gate``: gated promotion from the command line.

Like the other registry commands these work on the database directly (the operator's view,
who holds the database and so may force, with a reason) through ``PromotionService``, so a
promotion here is judged by the same gates as one over HTTP. ``promote`` prints the decision
and the gates and exits 0 when the alias moved, 1 when it was refused.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from watchkeep.cli.registry_commands import Actor, KindOpt, Name, Project, _fail, _kind, eval_runs, open_store

if TYPE_CHECKING:
    from collections.abc import Iterator

    from watchkeep.registry.gate_evidence import GateEvidence
    from watchkeep.registry.policy import GateRequirement
    from watchkeep.registry.promotion import PromotionService
    from watchkeep.registry.repository import Kind

policy_app = typer.Typer(help="Promotion policies: the gates an alias move must pass.", no_args_is_help=True)
AliasOpt = Annotated[str, typer.Option("--alias", help="The gated alias.")]
ToOpt = Annotated[int, typer.Option("--to", min=1, help="The candidate version.")]


@contextmanager
def _promotions(project: str, name: str, kind: KindOpt) -> Iterator[tuple[PromotionService, int, Kind]]:
    """The service, the project id and the name's kind (errors: one line, exit 1)."""
    from watchkeep.registry.promotion import PromotionService

    with open_store(project) as (engine, repo, project_id):
        yield (
            PromotionService(engine, repo, eval_runs(engine)),
            project_id,
            _kind(repo, project_id, name, kind),
        )


def parse_gate(text: str, alpha: float, max_drop: float) -> GateRequirement:
    """``qa`` or ``qa:exact,judge`` (a dataset and the evaluators whose metrics the gate tests)."""
    from watchkeep.registry.policy import GateRequirement

    dataset, _, evaluators = text.partition(":")
    names = tuple(e.strip() for e in evaluators.split(",") if e.strip())
    return GateRequirement(dataset.strip(), names, alpha, max_drop)


def _gate_line(e: GateEvidence) -> str:
    o = e.outcome
    runs = f"run {o.candidate_run}" + ("" if o.baseline_run is None else f" vs {o.baseline_run}")
    runs = runs if o.candidate_run is not None else "no runs"
    detail = "; ".join(o.reasons)
    return f"  {o.dataset}: {o.verdict} ({runs}){': ' + detail if detail else ''}"


@policy_app.command("set")
def set_policy(
    name: Name,
    alias: AliasOpt = "production",
    gate: Annotated[list[str], typer.Option("--gate", help="DATASET[:EVALUATOR,...], repeatable.")] = [],  # noqa: B006
    alpha: Annotated[float, typer.Option("--alpha", help="The gates' false-alarm rate.")] = 0.05,
    max_drop: Annotated[float, typer.Option("--max-drop", help="The drop tolerated.")] = 0.0,
    kind: KindOpt = None,
    actor: Actor = "cli",
    project: Project = "default",
) -> None:
    """Create or replace an alias's promotion policy."""
    from watchkeep.registry.policy import PromotionPolicy

    with _promotions(project, name, kind) as (service, project_id, chosen):
        policy = PromotionPolicy(tuple(parse_gate(g, alpha, max_drop) for g in gate))
        service.set_policy(project_id, chosen, name, alias, policy, actor=actor)
    typer.echo(f"{name}@{alias}: {len(policy.required_gates)} gate(s)")


@policy_app.command("show")
def show_policy(
    name: Name,
    alias: Annotated[
        str | None, typer.Option("--alias", help="One alias (default: every gated one).")
    ] = None,
    kind: KindOpt = None,
    project: Project = "default",
) -> None:
    """Print an alias's promotion policy, or every gated alias's."""
    with _promotions(project, name, kind) as (service, project_id, chosen):
        if alias is None:
            found = service.policies(project_id, chosen, name)
        else:
            one = service.policy(project_id, chosen, name, alias)
            found = {} if one is None else {alias: one}
    if not found:
        raise _fail(f"{name}@{alias or '*'} has no promotion policy")
    for gated, policy in found.items():
        typer.echo(f"{name}@{gated} (force: {', '.join(policy.allow_force_roles) or 'nobody'})")
        for g in policy.required_gates:
            evaluators = ", ".join(g.evaluators) or "-"
            typer.echo(f"  {g.dataset}: evaluators {evaluators}, alpha {g.alpha:g}, max drop {g.max_drop:g}")


@policy_app.command("delete")
def delete_policy(
    name: Name, alias: AliasOpt = "production", kind: KindOpt = None, project: Project = "default"
) -> None:
    """Remove an alias's promotion policy (it moves freely again)."""
    with _promotions(project, name, kind) as (service, project_id, chosen):
        if not service.delete_policy(project_id, chosen, name, alias):
            raise _fail(f"{name}@{alias} has no promotion policy")
    typer.echo(f"{name}@{alias}: policy removed")


def promote(
    name: Name,
    to: ToOpt,
    alias: AliasOpt = "production",
    force: Annotated[bool, typer.Option("--force", help="Past unmet gates (needs --reason).")] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (recorded).")] = None,
    kind: KindOpt = None,
    actor: Actor = "cli",
    project: Project = "default",
) -> None:
    """Move an alias under its promotion policy; exit 1 when refused."""
    from watchkeep.registry.promotion import PromotionRefused

    with _promotions(project, name, kind) as (service, project_id, chosen):
        evidence = service.evidence(project_id, chosen, name, alias, to)
        for line in map(_gate_line, evidence):
            typer.echo(line)
        try:
            event, _ = service.promote(
                project_id, chosen, name, alias, to, actor=actor, can_force=True, force=force, reason=reason
            )
        except PromotionRefused as exc:
            typer.echo("refused:\n" + "\n".join(f"  {r}" for r in exc.reasons))
            raise typer.Exit(1) from exc
    before = "nothing" if event.from_version is None else f"v{event.from_version}"
    typer.echo(f"{event.kind}: {name}@{alias} {before} -> v{event.to_version} ({event.reason})")


def gate(
    name: Name,
    to: ToOpt,
    alias: AliasOpt = "production",
    kind: KindOpt = None,
    project: Project = "default",
) -> None:
    """Preview the gates a promotion of the alias to the --to version would be judged on."""
    with _promotions(project, name, kind) as (service, project_id, chosen):
        evidence = service.evidence(project_id, chosen, name, alias, to)
    if not evidence:
        typer.echo(f"{name}@{alias} is not gated")
    for line in map(_gate_line, evidence):
        typer.echo(line)


def install(app: typer.Typer) -> None:
    """Add ``policy``, ``promote`` and ``gate`` to ``watchkeep registry``."""
    if any(c.name == "promote" for c in app.registered_commands):
        return  # installed already (idempotent: the CLI and tests may both install)
    app.add_typer(policy_app, name="policy")
    app.command("promote")(promote)
    app.command("gate")(gate)
