"""``watchkeep worker`` and ``watchkeep monitors``: the background loops alone, and YAML monitors."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer

from watchkeep.config import Settings

monitors_app = typer.Typer(help="Monitors declared in YAML.", no_args_is_help=True)


def worker(
    tick: Annotated[float | None, typer.Option(help="Seconds between passes.")] = None,
) -> None:
    """Run only the background work: the monitoring loop (monitors, alerts, online
    evaluation, resource samples) and the retention pass (every
    WATCHKEEP_RETENTION_CHECK_SECONDS, on its own thread).

    Any number of workers may run beside the servers: they share the monitor schedule
    through database leases, so each monitor is evaluated and alerted once per run; the
    retention pass deletes in idempotent batches, so two at once only repeat a batch.
    """
    from prometheus_client import CollectorRegistry

    from watchkeep.logs import configure_logging
    from watchkeep.monitor.wiring import build_monitoring
    from watchkeep.security.egress import AddressPolicy
    from watchkeep.security.retention import RetentionWorker
    from watchkeep.store.engine import make_engine
    from watchkeep.store.migrate import upgrade

    settings = Settings(process_role="worker")
    configure_logging(settings.log_level, settings.log_format)
    engine = make_engine(settings.resolved_database_url(), sqlite_synchronous=settings.sqlite_synchronous)
    if settings.upgrade_on_start:
        upgrade(engine)
    monitoring = build_monitoring(
        engine,
        CollectorRegistry(),
        role=settings.process_role,
        tick=tick or settings.worker_tick_seconds,
        resource_every=settings.resource_sample_seconds,
        egress=AddressPolicy.from_strings(settings.egress_allow_networks),
        smtp_verify_tls=settings.smtp_verify_tls,
        pass_budget_s=settings.monitor_pass_budget_s,
    )
    loop = monitoring.worker
    retention = RetentionWorker.from_settings(engine, settings)
    signal.signal(signal.SIGTERM, lambda *_: loop.stop(timeout=0))
    typer.echo(f"watchkeep worker {loop.owner} running (Ctrl-C to stop)", err=True)
    retention.start()
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        loop.stop(timeout=0)
        retention.stop()  # after its current batch: a batch is one short transaction
        engine.dispose()


@monitors_app.command("apply")
def apply(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="YAML file of monitors.")],
    project: Annotated[str, typer.Option(help="Project name.")],
) -> None:
    """Create or update the monitors and channels declared in a YAML file.

    The whole file is validated first (monitors, channel configs, their destinations against
    the egress policy); an invalid file is refused with its reason and changes nothing. The
    monitors are then written in one transaction, the channels after them.
    """
    from watchkeep.monitor.channels import validate_config
    from watchkeep.monitor.repository import ChannelRepository, MonitorRepository
    from watchkeep.monitor.spec import load_yaml
    from watchkeep.security.egress import AddressPolicy
    from watchkeep.store.engine import make_engine
    from watchkeep.store.migrate import upgrade
    from watchkeep.store.projects import ProjectRepository

    settings = Settings()
    egress = AddressPolicy.from_strings(settings.egress_allow_networks)
    try:
        declared = load_yaml(file.read_text(encoding="utf-8"))
        channels = [
            (c["name"], c["kind"], validate_config(c["kind"], c.get("config", {}), egress))
            for c in declared.channels
        ]
    except (ValueError, KeyError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
        typer.echo(f"error: invalid monitors file {file}: {exc}", err=True)
        raise typer.Exit(2) from None
    engine = make_engine(settings.resolved_database_url())
    try:
        upgrade(engine)
        project_id = ProjectRepository(engine).get_or_create(project).id
        monitors = MonitorRepository(engine)
        existing = {row.spec.name for row in monitors.all(project_id)}
        monitors.upsert_many(project_id, declared.monitors)
        for name, kind, config in channels:
            ChannelRepository(engine).upsert(project_id, name, kind, config)
            typer.echo(f"applied channel {name}")
        for spec in declared.monitors:
            typer.echo(f"{'updated' if spec.name in existing else 'created'} monitor {spec.name}")
    finally:
        engine.dispose()
