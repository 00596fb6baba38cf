"""The migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from watchkeep.store.engine import make_engine
from watchkeep.store.migrate import alembic_config, current_revision, head_revision, upgrade
from watchkeep.store.schema import metadata
from watchkeep.store.text_search import not_search_index


def test_migrated_schema_matches_the_tables(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert current_revision(engine) == head_revision()
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"include_name": not_search_index, "compare_type": True}
            )
            differences = compare_metadata(context, metadata)
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


def test_sqlite_ids_are_never_reused_after_0007_and_every_row_is_kept(tmp_path: Path) -> None:
    """The rebuild keeps projects, keys and monitors with everything that references them
    (nothing cascades), both ways, and afterwards a deleted newest id is not handed on."""
    url = f"sqlite:///{tmp_path / 'wk.db'}"
    engine = make_engine(url)  # foreign keys enforced, as the server runs
    referencing = ("api_keys", "monitors", "scores", "gateway_routes")

    def ddl(table: str) -> str:
        with engine.connect() as conn:
            return str(conn.exec_driver_sql(f"SELECT sql FROM sqlite_master WHERE name = '{table}'").scalar())

    def counts() -> dict[str, int]:
        with engine.connect() as conn:
            return {
                t: int(conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar_one())
                for t in ("projects", *referencing)
            }

    try:
        upgrade(engine, "0006")
        with engine.begin() as conn:
            for pid in (1, 2):
                conn.exec_driver_sql(
                    f"INSERT INTO projects (id, name, created_at_unix_nano) VALUES ({pid}, 'p{pid}', 0)"
                )
                conn.exec_driver_sql(
                    "INSERT INTO api_keys (project_id, prefix, key_hash, role, created_at_unix_nano) "
                    f"VALUES ({pid}, 'wk_{pid}', 'h', 'member', 0)"
                )
                conn.exec_driver_sql(
                    "INSERT INTO monitors (project_id, name, spec, enabled, state, state_since_unix_nano, "
                    "pending_count, next_run_at_unix_nano, created_at_unix_nano, updated_at_unix_nano) "
                    f"VALUES ({pid}, 'm', '{{}}', 1, 'ok', 0, 0, 0, 0, 0)"
                )
                conn.exec_driver_sql(
                    "INSERT INTO scores (project_id, trace_id, name, data_type, source, created_at_unix_nano) "
                    f"VALUES ({pid}, 't', 's', 'numeric', 'api', 0)"
                )
                conn.exec_driver_sql(
                    "INSERT INTO gateway_routes (project_id, name, spec, updated_at_unix_nano) "
                    f"VALUES ({pid}, 'r', '{{}}', 0)"
                )
        before = counts()
        assert before == dict.fromkeys(("projects", *referencing), 2)
        assert "AUTOINCREMENT" not in ddl("projects")
        upgrade(engine)
        for table in ("projects", "api_keys", "monitors"):
            assert "AUTOINCREMENT" in ddl(table)
        assert counts() == before
        with engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM projects WHERE id = 2")  # the newest, with its rows
            conn.exec_driver_sql("INSERT INTO projects (name, created_at_unix_nano) VALUES ('p3', 0)")
            assert conn.exec_driver_sql("SELECT id FROM projects WHERE name = 'p3'").scalar() == 3
        assert counts() == {"projects": 2, **dict.fromkeys(referencing, 1)}  # the cascade still works
        upgrade_to = counts()
        command.downgrade(alembic_config(url), "0006")
        assert "AUTOINCREMENT" not in ddl("projects")
        assert counts() == upgrade_to
    finally:
        engine.dispose()
