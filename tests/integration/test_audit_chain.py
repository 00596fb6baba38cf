"""The audit log's hash chain on both databases: concurrent writers never fork it, and
``verify`` names each entry edited, removed or inserted behind its back (SQL run directly
against the table, as an attacker with database access would)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from watchkeep.cli.main import app as cli
from watchkeep.devtools.postgres import TempPostgres
from watchkeep.security.audit import AuditLog, _content, entry_hash
from watchkeep.store.engine import make_engine
from watchkeep.store.migrate import upgrade
from watchkeep.store.privacy_tables import audit_events


@pytest.fixture
def engine(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Engine]:
    """A fresh migrated database of ``database_url``'s kind: tampering must not touch the
    session's shared audit log."""
    if database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path_factory.mktemp('audit') / 'audit.db'}"
    else:
        pg = request.getfixturevalue("postgres")
        if not isinstance(pg, TempPostgres):
            pytest.skip("a PostgreSQL given by URL cannot make a database of its own")
        url = pg.create_database(f"a_{uuid.uuid4().hex[:12]}")
    eng = make_engine(url)
    upgrade(eng)
    yield eng
    eng.dispose()


def _fill(log: AuditLog, n: int = 5) -> None:
    for i in range(n):
        log.record(
            actor="user:a@x", action="key.create", project_id=1, target=f"key:{i}", after={"role": "member"}
        )


def _sql(engine: Engine, statement: str, **params: object) -> None:
    with engine.begin() as conn:
        conn.execute(text(statement), params)


def test_a_fresh_chain_verifies_and_chains_each_entry(engine: Engine) -> None:
    log = AuditLog(engine)
    assert log.verify().ok
    assert log.verify().checked == 0
    _fill(log, 3)
    first, second, third = log.entries()
    assert first.prev_hash == "0" * 64
    assert second.prev_hash == first.hash
    assert third.prev_hash == second.hash
    assert [e.seq for e in (first, second, third)] == [1, 2, 3]
    assert third.after == {"role": "member"}
    verdict = log.verify()
    assert verdict.ok
    assert verdict.checked == 3
    assert verdict.problems == ()


def test_concurrent_writers_never_fork_the_chain(engine: Engine) -> None:
    log = AuditLog(engine)
    start = threading.Barrier(6)
    errors: list[BaseException] = []

    def write(who: int) -> None:
        start.wait()
        try:
            for i in range(10):
                log.record(actor=f"user:{who}", action="route.update", target=f"route:{i}", detail="x")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    verdict = log.verify()
    assert verdict.ok, verdict.problems
    assert verdict.checked == 60
    assert len({e.prev_hash for e in log.entries(limit=100)}) == 60


def test_an_edited_entry_is_named(engine: Engine) -> None:
    log = AuditLog(engine)
    _fill(log)
    _sql(engine, "UPDATE audit_events SET actor = 'user:mallory@x' WHERE seq = 3")
    verdict = log.verify()
    assert not verdict.ok
    assert verdict.problems == ("entry 3 was edited: its hash does not match its content",)


def test_a_removed_entry_is_named(engine: Engine) -> None:
    log = AuditLog(engine)
    _fill(log)
    _sql(engine, "DELETE FROM audit_events WHERE seq = 3")
    assert log.verify().problems == ("an entry between 2 and 4 was removed",)


def test_removed_first_entries_are_named(engine: Engine) -> None:
    log = AuditLog(engine)
    _fill(log)
    _sql(engine, "DELETE FROM audit_events WHERE seq <= 2")
    assert log.verify().problems == ("the entries before 3 were removed",)


def test_a_forged_entry_with_a_valid_looking_hash_is_named(engine: Engine) -> None:
    """The forger recomputes the hash of their row, chained on the entry before the slot
    they take (here: the removed entry 3's place, and one past the head with a gap)."""
    log = AuditLog(engine)
    _fill(log)
    entries = {e.seq: e for e in log.entries()}
    _sql(engine, "DELETE FROM audit_events WHERE seq = 3")
    forged = _content(entries[3]) | {"actor": "user:mallory@x"}
    _insert(engine, forged, prev_hash=entries[1].hash)  # chains on the wrong entry
    problems = log.verify().problems
    assert problems[0] == (
        "entry 3 was inserted: it does not chain on entry 2 (or entry 2 was rewritten together with its hash)"
    )
    assert problems[1:] == (
        "entry 4 was inserted: it does not chain on entry 3 (or entry 3 was rewritten together with its hash)",
    )


def test_a_forged_entry_past_a_gap_is_named(engine: Engine) -> None:
    log = AuditLog(engine)
    _fill(log)
    head = log.entries()[-1]
    forged = _content(head) | {"seq": 9, "action": "key.revoke"}
    _insert(engine, forged, prev_hash=head.hash)
    assert log.verify().problems == (
        "entry 9 was inserted: it chains on entry 5 but its seq does not follow it",
    )


def _insert(engine: Engine, content: dict[str, object], *, prev_hash: str) -> None:
    digest = entry_hash(prev_hash, content)
    row = {k: v for k, v in content.items() if k != "at_ns"}
    with engine.begin() as conn:
        conn.execute(
            audit_events.insert().values(
                **row, at_unix_nano=content["at_ns"], prev_hash=prev_hash, hash=digest
            )
        )


def test_entries_filter_by_project_action_and_cursor(engine: Engine) -> None:
    log = AuditLog(engine)
    log.record(actor="cli", action="project.delete", target="project:7")
    log.record(
        actor="user:a@x", action="key.create", project_id=1, before=None, after={"name": "ci", 3: "int key"}
    )
    log.record(actor="user:b@x", action="key.revoke", project_id=2)
    log.record(actor="user:a@x", action="key.revoke", project_id=1)
    assert [e.seq for e in log.entries(project_id=1)] == [2, 4]
    assert [e.seq for e in log.entries(action="key.revoke")] == [3, 4]
    assert [e.seq for e in log.entries(after_seq=2, limit=1)] == [3]
    assert log.entries(project_id=1)[0].after == {"name": "ci", "3": "int key"}
    head = log.head()
    assert head is not None
    assert head.seq == 4
    assert log.verify().ok


def test_cli_verify_names_tampering_and_a_cut_tail_through_its_anchor(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHKEEP_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    runner = CliRunner()
    log = AuditLog(engine)
    _fill(log)
    intact = runner.invoke(cli, ["audit", "verify"])
    assert intact.exit_code == 0, intact.output
    head = log.entries()[-1]
    assert f"head 5:{head.hash}" in intact.stdout
    _sql(engine, "DELETE FROM audit_events WHERE seq = 5")
    assert runner.invoke(cli, ["audit", "verify"]).exit_code == 0  # a chain alone cannot see a cut tail
    cut = runner.invoke(cli, ["audit", "verify", "--anchor", f"5:{head.hash}"])
    assert cut.exit_code == 1
    assert "the anchored entry 5 is gone" in cut.stderr
    _sql(engine, "UPDATE audit_events SET detail = 'x' WHERE seq = 2")
    edited = runner.invoke(cli, ["audit", "verify"])
    assert edited.exit_code == 1
    assert "entry 2 was edited" in edited.stderr


def test_cli_records_key_changes_and_lists_every_entry(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHKEEP_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    runner = CliRunner()
    made = runner.invoke(cli, ["keys", "create", "--project", "acme", "--role", "viewer"])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[-1]
    assert runner.invoke(cli, ["keys", "revoke", key]).exit_code == 0
    AuditLog(engine).record(actor="user:a@x", action="login.failed", detail="from 10.0.0.1")
    listed = runner.invoke(cli, ["audit", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [(r["actor"], r["action"], r["project_id"] is None) for r in rows] == [
        ("cli", "key.create", False),
        ("cli", "key.revoke", False),
        ("user:a@x", "login.failed", True),
    ]
    assert key not in listed.stdout
    only = json.loads(runner.invoke(cli, ["audit", "list", "--project", "acme", "--json"]).stdout)
    assert [r["action"] for r in only] == ["key.create", "key.revoke"]
    assert runner.invoke(cli, ["audit", "list", "--project", "nope"]).exit_code == 1
