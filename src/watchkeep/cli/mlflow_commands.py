"""``watchkeep registry mlflow import|export``: move models, versions and aliases between a
project and an MLflow Model Registry (``registry.mlflow_interop`` says what maps to what).

The tracking URI is ``--uri`` (``MLFLOW_TRACKING_URI``) and a bearer token, when the server
wants one, ``MLFLOW_TRACKING_TOKEN``. The operator gives the URI, so it is trusted as is; the
tenant egress policy applies only to URLs a tenant gives through the API, which has no such
route. Errors (unreachable server, unknown name, MLflow refusing a call) are one line on
stderr and exit code 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from watchkeep.cli.registry_commands import Project, _fail, _open

if TYPE_CHECKING:
    from watchkeep.registry.mlflow_interop import MlflowReport

mlflow_app = typer.Typer(help="Import from and export to an MLflow Model Registry.", no_args_is_help=True)

Uri = Annotated[
    str,
    typer.Option("--uri", envvar="MLFLOW_TRACKING_URI", help="MLflow tracking server, http(s)://host:port."),
]
Token = Annotated[str | None, typer.Option("--token", envvar="MLFLOW_TRACKING_TOKEN", help="Bearer token.")]
OneName = Annotated[str | None, typer.Option("--name", help="Only this registered model.")]


def _echo(report: MlflowReport) -> None:
    typer.echo(
        f"versions: {report.versions_created} new, {report.versions_reused} already there; "
        f"aliases: {report.aliases_moved} moved, {report.aliases_unchanged} unchanged"
    )
    for skipped in report.skipped:
        typer.echo(f"skipped {skipped}", err=True)


@mlflow_app.command("import")
def import_(uri: Uri, token: Token = None, name: OneName = None, project: Project = "default") -> None:
    """Register MLflow's versions here and replay its aliases as alias events."""
    from watchkeep.registry.mlflow_client import MlflowError, MlflowRegistry
    from watchkeep.registry.mlflow_interop import import_from_mlflow

    try:
        with MlflowRegistry(uri, token=token) as mlflow, _open(project, create=True) as (repo, project_id):
            report = import_from_mlflow(repo, project_id, mlflow, name=name)
    except (MlflowError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    _echo(report)


@mlflow_app.command("export")
def export(uri: Uri, token: Token = None, name: OneName = None, project: Project = "default") -> None:
    """Create our versions in MLflow and set its aliases to ours (history goes in a tag)."""
    from watchkeep.registry.mlflow_client import MlflowError, MlflowRegistry
    from watchkeep.registry.mlflow_interop import export_to_mlflow

    try:
        with MlflowRegistry(uri, token=token) as mlflow, _open(project) as (repo, project_id):
            report = export_to_mlflow(repo, project_id, mlflow, name=name)
    except (MlflowError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    _echo(report)
