"""The migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from watchkeep.store.engine import make_engine
from watchkeep.store.migrate import alembic_config, current_revision, head_revision
from watchkeep.store.tables import metadata


def test_migrated_schema_matches_the_tables(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert current_revision(engine) == head_revision()
        with engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), metadata)
        assert differences == []
    finally:
        engine.dispose()


def test_sqlite_traces_become_a_rowid_table_keeping_their_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'wk.db'}"
    engine = make_engine(url)
    cfg = alembic_config(url)

    def traces_ddl() -> str:
        with engine.connect() as conn:
            return str(conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'traces'").scalar())

    def trace_rows() -> list[tuple[object, ...]]:
        with engine.connect() as conn:
            return [
                tuple(r) for r in conn.exec_driver_sql("SELECT project_id, trace_id, user_id FROM traces")
            ]

    try:
        command.upgrade(cfg, "0003")
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO traces (project_id, trace_id, name, start_time_unix_nano, "
                "end_time_unix_nano, has_error, user_id) VALUES (1, 'ab', 'root', 1, 2, 0, 'u-1')"
            )
        assert "WITHOUT ROWID" in traces_ddl()
        command.upgrade(cfg, "head")
        assert "WITHOUT ROWID" not in traces_ddl()
        assert trace_rows() == [(1, "ab", "u-1")]
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT rowid FROM traces").scalar() == 1
        command.downgrade(cfg, "0003")
        assert "WITHOUT ROWID" in traces_ddl()
        assert trace_rows() == [(1, "ab", "u-1")]
    finally:
        engine.dispose()
