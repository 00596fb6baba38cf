"""``watchkeep registry canary``: start, list, show and stop canary analyses.

The CLI works on the store directly, so ``start`` records the canary but does not write
the gateway route: point the route's deployments at ``NAME@BASELINE`` and
``NAME@CANDIDATE`` yourself, or start it through ``POST /api/v1/canaries``, which does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

import typer

from watchkeep.cli.registry_commands import Actor, Name, Project, _fail, _when, open_store

if TYPE_CHECKING:
    from watchkeep.registry.canary_repository import Canary

canary_app = typer.Typer(help="Canary analyses: a candidate alias against the baseline on a route.")
CanaryId = Annotated[int, typer.Argument(help="The canary's id.", min=1)]


def _line(c: Canary) -> str:
    return (
        f"{c.id}\t{c.status}\t{c.name} v{c.candidate_version} ({c.candidate_alias}) vs "
        f"v{c.baseline_version} ({c.baseline_alias})\troute {c.route}\t{c.mode}\tlooks {c.state.looks}"
        f"\t{_when(c.started_at_ns)}"
    )


@canary_app.command("start")
def start(
    name: Name,
    route: Annotated[str, typer.Option("--route", help="The gateway route whose calls are compared.")],
    baseline: Annotated[str, typer.Option("--baseline", help="The baseline alias.")] = "production",
    candidate: Annotated[str, typer.Option("--candidate", help="The candidate alias.")] = "canary",
    mode: Annotated[Literal["live", "shadow"], typer.Option("--mode")] = "live",
    share: Annotated[float, typer.Option("--share", help="The candidate's share of live traffic.")] = 0.1,
    metric: Annotated[
        list[str] | None,
        typer.Option("--metric", help="error_rate, latency_ms, ttft_ms, cost_usd or score:NAME (repeat)."),
    ] = None,
    alpha: Annotated[float, typer.Option("--alpha")] = 0.05,
    min_samples: Annotated[int, typer.Option("--min-samples")] = 200,
    max_samples: Annotated[int, typer.Option("--max-samples")] = 5000,
    project: Project = "default",
    actor: Actor = "cli",
) -> None:
    """Start a canary (the route is not written: see the module's note)."""
    from watchkeep.registry.canary import CanaryPolicy
    from watchkeep.registry.canary_figures import default_policy, metric_rule
    from watchkeep.registry.canary_repository import CanaryRepository

    with open_store(project) as (engine, _, project_id):
        rules = tuple(metric_rule(m) for m in metric) if metric else default_policy().metrics
        policy = CanaryPolicy(rules, alpha=alpha, min_samples=min_samples, max_samples=max_samples)
        c = CanaryRepository(engine).start(
            project_id,
            name=name,
            route=route,
            baseline_alias=baseline,
            candidate_alias=candidate,
            mode=mode,
            share=share,
            policy=policy,
            actor=actor,
        )
        typer.echo(
            f"started canary {c.id}: {name} v{c.candidate_version} vs v{c.baseline_version} on {route}"
        )


@canary_app.command("list")
def list_(
    status: Annotated[
        Literal["running", "promoted", "rolled_back", "stopped"] | None, typer.Option("--status")
    ] = None,
    name: Annotated[str | None, typer.Option("--name")] = None,
    project: Project = "default",
) -> None:
    """The project's canaries, newest first."""
    from watchkeep.registry.canary_repository import CanaryRepository

    with open_store(project) as (engine, _, project_id):
        for c in CanaryRepository(engine).list(project_id, name=name, status=status):
            typer.echo(_line(c))


@canary_app.command("show")
def show(canary_id: CanaryId, project: Project = "default") -> None:
    """One canary and its current comparison."""
    from watchkeep.registry.canary import decide
    from watchkeep.registry.canary_repository import CanaryRepository

    with open_store(project) as (engine, _, project_id):
        c = CanaryRepository(engine).get(project_id, canary_id)
        if c is None:
            raise _fail(f"no canary {canary_id}")
        typer.echo(_line(c))
        if c.reason:
            typer.echo(c.reason)
        decision = decide(c.state)
        for r in decision.metrics:
            typer.echo(
                f"  {r.name}: candidate {r.candidate:.4g} (n={r.n_candidate}) vs baseline {r.baseline:.4g} "
                f"(n={r.n_baseline}), worse by {r.worsening:.4g}, p_worse {r.p_worse:.3g}, p_within {r.p_within:.3g}"
            )
        typer.echo(decision.reason)


@canary_app.command("stop")
def stop(
    canary_id: CanaryId,
    reason: Annotated[str | None, typer.Option("--reason")] = None,
    project: Project = "default",
    actor: Actor = "cli",
) -> None:
    """End a running canary; the aliases stay as they are."""
    from watchkeep.registry.canary_repository import CanaryRepository

    with open_store(project) as (engine, _, project_id):
        c = CanaryRepository(engine).stop(project_id, canary_id, actor=actor, reason=reason)
        typer.echo(f"canary {c.id} stopped")
