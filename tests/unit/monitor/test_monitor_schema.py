"""Revision 0002 creates exactly the monitoring tables of ``tables.py``, and goes back down."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from watchkeep.store.engine import make_engine
from watchkeep.store.migrate import downgrade, upgrade
from watchkeep.store.tables import metadata

MONITORING_TABLES = {
    "monitors",
    "alert_channels",
    "alert_events",
    "drift_references",
    "online_evaluators",
    "resource_samples",
}


def test_migrations_match_the_tables_and_downgrade(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata) == []
    assert set(inspect(engine).get_table_names()) >= MONITORING_TABLES
    downgrade(engine, "0001")
    assert not MONITORING_TABLES & set(inspect(engine).get_table_names())
    engine.dispose()
