"""``watchkeep eval run|list|show|compare``: evaluation runs from a YAML config, on this database.

Like ``watchkeep keys`` they work on the database directly (Settings), as the operator.
``eval run`` exits 0 when the gate passes (or without ``--gate``), 1 on a quality
regression (the comparison with ``--baseline`` or a threshold), 2 on an infrastructure
error (config, dataset, evaluator name, database, an unreachable target), so a pipeline
can tell "the model got worse" from "the check could not run".
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
import typer

from watchkeep.config import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from watchkeep.evals.model import Executor
    from watchkeep.evals.run_repository import RunInfo

eval_app = typer.Typer(
    help="Evaluation runs: datasets x targets x evaluators, and release gates.", no_args_is_help=True
)
DEFAULT_PROJECT = "default"
EXIT_INFRA = 2

Project = Annotated[
    str | None, typer.Option("--project", help="Project name (default: the config's, else 'default').")
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _engine() -> tuple[Engine, Settings]:
    from watchkeep.store.engine import make_engine
    from watchkeep.store.migrate import upgrade

    settings = Settings()
    engine = make_engine(settings.resolved_database_url())
    upgrade(engine)
    return engine, settings


def _fail(message: str, code: int = EXIT_INFRA) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _project_id(engine: Engine, name: str, *, create: bool) -> int:
    from watchkeep.store.projects import ProjectRepository

    repo = ProjectRepository(engine)
    project = repo.get_or_create(name) if create else repo.find(name)
    if project is None:
        raise _fail(f"no project named {name!r}")
    return project.id


def _executor(kind: str, address: str | None, gateway_url: str) -> Executor | None:
    if kind == "ray":
        from watchkeep.evals.ray_executor import RayExecutor

        return RayExecutor(address, gateway_url=gateway_url)
    return None


def _point(node: Any) -> Any:
    return node.get("value") if isinstance(node, dict) else None


def _summary(run: RunInfo) -> dict[str, Any]:
    gate = run.gate or {}
    figures = run.aggregates or {}
    return {
        "id": run.id,
        "name": run.name,
        "status": run.status,
        "dataset": run.dataset_name,
        "dataset_version": run.dataset_version,
        "target_version": run.target_version,
        "cases": f"{run.cases_done}/{run.cases_total}",
        "failed": run.cases_failed,
        "pass_rate": _point(figures.get("pass_rate")),
        "attack_success_rate": _point((figures.get("adversarial") or {}).get("asr")),
        "verdict": gate.get("verdict"),
        "error": run.error,
    }


@eval_app.command("run")
def run(
    config_path: Annotated[Path, typer.Argument(metavar="CONFIG.yaml", help="The run's YAML config.")],
    baseline: Annotated[int | None, typer.Option("--baseline", help="Compare with this run id.")] = None,
    gate: Annotated[bool, typer.Option("--gate", help="Exit 1 on a regression or failed threshold.")] = False,
    output: Annotated[
        Path | None, typer.Option("--output", help="Write report.json, junit.xml, report.html here.")
    ] = None,
    executor: Annotated[
        Literal["local", "ray"], typer.Option("--executor", help="Where cases run.")
    ] = "local",
    ray_address: Annotated[
        str | None, typer.Option("--ray-address", help="A Ray cluster (default: local).")
    ] = None,
    resume: Annotated[int | None, typer.Option("--resume", help="Continue this interrupted run.")] = None,
    project: Project = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Call the target even when cached.")] = False,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")
    ] = sys.stderr.isatty(),
) -> None:
    """Run an evaluation config; print the run's summary and verdict (exit 0, 1 or 2)."""
    from sqlalchemy.exc import SQLAlchemyError

    from watchkeep.evals.config import ConfigError, load_config
    from watchkeep.evals.service import EvalService, InfrastructureError
    from watchkeep.security.crypto import EncryptionKeyError

    try:
        config = load_config(config_path)
        if config.target.kind == "python" or (config.judge is not None and config.judge.kind == "python"):
            # `module:function` next to the config or in the working directory, like `python -m`
            sys.path[:0] = [str(config_path.resolve().parent), str(Path.cwd())]
        if no_cache:
            config = config.model_copy(update={"cache": False})
        engine, settings = _engine()
        project_id = _project_id(engine, project or config.project or DEFAULT_PROJECT, create=True)
        service = EvalService(engine, settings)
        outcome = asyncio.run(
            service.run(
                config,
                project_id,
                baseline_run_id=baseline,
                resume_run_id=resume,
                executor=_executor(executor, ray_address, service.gateway_url()),
                gate=gate,
                output_dir=output,
                progress=progress,
                created_by="cli",
                base_dir=config_path.resolve().parent,
            )
        )
    except (ConfigError, InfrastructureError, SQLAlchemyError, EncryptionKeyError) as exc:
        raise _fail(str(exc)) from exc
    except KeyboardInterrupt:
        raise _fail("interrupted: continue with the same command (or --resume RUN)", 130) from None
    run_info = outcome.run
    typer.echo(orjson.dumps(_summary(run_info)).decode())
    if outcome.comparison is not None:
        _print_comparison(outcome.comparison.to_json())
    for failure in outcome.threshold_failures:
        typer.echo(f"threshold failed: {failure}", err=True)
    for path in outcome.reports:
        typer.echo(f"wrote {path}", err=True)
    if run_info.error:
        typer.echo(f"error: {run_info.error}", err=True)
    raise typer.Exit(outcome.exit_code)


@eval_app.command("list")
def list_runs(
    project: Project = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many, newest first.")] = 50,
) -> None:
    """The project's runs, newest first, one JSON object a line."""
    from watchkeep.evals.run_repository import RunRepository

    engine, _ = _engine()
    project_id = _project_id(engine, project or DEFAULT_PROJECT, create=False)
    page = RunRepository(engine).list_runs(project_id, limit=limit)
    for info in page.items:
        typer.echo(orjson.dumps(_summary(info)).decode())


def _get_run(engine: Engine, project_id: int, run_id: int) -> RunInfo:
    from watchkeep.evals.run_repository import RunNotFound, RunRepository

    try:
        return RunRepository(engine).get_run(project_id, run_id)
    except RunNotFound:
        raise _fail(f"no run {run_id} in this project") from None


@eval_app.command("show")
def show(
    run_id: Annotated[int, typer.Argument(metavar="RUN", help="Run id.")],
    project: Project = None,
) -> None:
    """A run with its aggregates and gate verdict, as JSON."""
    from dataclasses import asdict

    engine, _ = _engine()
    info = _get_run(engine, _project_id(engine, project or DEFAULT_PROJECT, create=False), run_id)
    typer.echo(orjson.dumps(asdict(info), option=orjson.OPT_INDENT_2).decode())


def _fmt(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:+.{digits}f}" if isinstance(value, float) else str(value)


def _print_comparison(data: dict[str, Any]) -> None:
    typer.echo(f"{'metric':<24} {'baseline':>9} {'candidate':>9} {'delta':>8}  {'interval':<19} {'p':>7}")
    for m in data["metrics"]:
        delta = m["delta"]
        interval = f"[{_fmt(delta['low'])}, {_fmt(delta['high'])}]"
        base, cand = m["baseline"]["value"], m["candidate"]["value"]
        p = "-" if m["p_value"] is None else f"{m['p_value']:.4f}"
        flag = "  REGRESSION" if m["regression"] else ""
        typer.echo(
            f"{m['name']:<24} {_plain(base):>9} {_plain(cand):>9} {_fmt(delta['delta']):>8}  {interval:<19} {p:>7}{flag}"
        )
    mc = data["mcnemar"]
    typer.echo(f"McNemar exact (one-sided): b={mc['b']} c={mc['c']} p={mc['p_value']:.4f}")
    typer.echo(f"paired items: {data['n_paired']}  verdict: {data['verdict']}")
    for reason in data["reasons"]:
        typer.echo(f"  {reason}")


def _plain(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


@eval_app.command("compare")
def compare(
    baseline: Annotated[int, typer.Argument(metavar="BASELINE", help="Baseline run id.")],
    candidate: Annotated[int, typer.Argument(metavar="CANDIDATE", help="Candidate run id.")],
    project: Project = None,
    json_out: Json = False,
) -> None:
    """Compare two runs: metric deltas with paired bootstrap intervals, McNemar, the verdict.

    The candidate's gate settings apply; exit 1 on a regression."""
    from watchkeep.evals.config import GateSpec
    from watchkeep.evals.gate import GatePolicy, compare_runs
    from watchkeep.evals.run_repository import RunRepository
    from watchkeep.security.crypto import keyring_from_settings

    engine, settings = _engine()
    project_id = _project_id(engine, project or DEFAULT_PROJECT, create=False)
    base_info = _get_run(engine, project_id, baseline)
    cand_info = _get_run(engine, project_id, candidate)
    repo = RunRepository(engine, sealer=keyring_from_settings(settings))  # results may be sealed
    spec = GateSpec.model_validate(cand_info.config.get("gate") or {})
    comparison = compare_runs(
        repo.all_results(project_id, base_info.id),
        repo.all_results(project_id, cand_info.id),
        GatePolicy.from_spec(spec),
        seed=cand_info.seed,
    )
    if json_out:
        typer.echo(orjson.dumps(comparison.to_json()).decode())
    else:
        _print_comparison(comparison.to_json())
    raise typer.Exit(1 if comparison.verdict == "regression" else 0)
