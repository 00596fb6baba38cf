"""Revision 0002 creates the monitoring tables of ``tables.py``, and goes back down.

That the migrated schema matches ``tables.py`` as a whole is tested in
tests/integration/test_migrations.py, on both databases."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect

from watchkeep.store.engine import make_engine
from watchkeep.store.migrate import downgrade, upgrade

MONITORING_TABLES = {
    "monitors",
    "alert_channels",
    "alert_events",
    "drift_references",
    "online_evaluators",
    "resource_samples",
}


def test_monitoring_tables_come_with_0002_and_go_with_its_downgrade(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine)
    assert set(inspect(engine).get_table_names()) >= MONITORING_TABLES
    downgrade(engine, "0001")
    assert not MONITORING_TABLES & set(inspect(engine).get_table_names())
    engine.dispose()
