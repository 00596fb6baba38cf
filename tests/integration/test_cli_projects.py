"""``watchkeep projects list|create`` and ``watchkeep keys create --expires`` / ``keys list --json``."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from tests.support.tenant import unique
from watchkeep.cli.main import app as cli
from watchkeep.security.keys import key_prefix
from watchkeep.store.engine import make_engine
from watchkeep.store.projects import ProjectRepository


@pytest.fixture
def runner(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("WATCHKEEP_DATABASE_URL", database_url)
    return CliRunner()


def lookup(database_url: str, key: str) -> tuple[str, str, int | None] | None:
    engine = make_engine(database_url)
    try:
        stored = ProjectRepository(engine).lookup_key(key_prefix(key))
    finally:
        engine.dispose()
    return None if stored is None else (stored.project_name, stored.role, stored.expires_at_unix_nano)


def test_projects_create_with_a_first_key_and_list(runner: CliRunner, database_url: str) -> None:
    name = unique("cli-proj")
    made = runner.invoke(cli, ["projects", "create", name, "--with-key"])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[-1]
    assert key.startswith("wk_")
    assert lookup(database_url, key) == (name, "admin", None)
    again = runner.invoke(cli, ["projects", "create", name])
    assert again.exit_code == 1
    assert "exists" in again.output

    plain = unique("cli-bare")
    assert runner.invoke(cli, ["projects", "create", plain]).exit_code == 0
    assert runner.invoke(cli, ["keys", "create", "--project", name, "--role", "viewer"]).exit_code == 0

    listed = runner.invoke(cli, ["projects", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert (rows[name]["keys"], rows[name]["active_keys"]) == (2, 2)
    assert (rows[plain]["keys"], rows[plain]["active_keys"]) == (0, 0)
    assert rows[name]["id"] != rows[plain]["id"]
    text = runner.invoke(cli, ["projects", "list"]).stdout
    assert f"{name}  id={rows[name]['id']}" in text
    assert "keys 2/2 active" in text


def test_projects_create_with_a_chosen_role_and_expiry(runner: CliRunner, database_url: str) -> None:
    name = unique("cli-role")
    made = runner.invoke(
        cli, ["projects", "create", name, "--with-key", "--role", "member", "--expires", "7d"]
    )
    assert made.exit_code == 0, made.output
    project, role, expires = lookup(database_url, made.stdout.strip().splitlines()[-1]) or ("", "", None)
    assert (project, role) == (name, "member")
    assert expires is not None
    assert abs(expires - (time.time_ns() + 7 * 86400 * 10**9)) < 600 * 10**9


@pytest.mark.parametrize("bad", ["a/b", "-x", "", "x" * 129])
def test_projects_create_refuses_bad_names(runner: CliRunner, bad: str) -> None:
    assert runner.invoke(cli, ["projects", "create", bad]).exit_code != 0


def test_keys_create_with_expiry_and_list_states(runner: CliRunner, database_url: str) -> None:
    project = unique("cli-exp")
    dated = runner.invoke(
        cli, ["keys", "create", "--project", project, "--expires", "2030-01-31", "--name", "d"]
    )
    assert dated.exit_code == 0, dated.output
    dated_key = dated.stdout.strip().splitlines()[-1]
    want = int(datetime(2030, 1, 31, tzinfo=UTC).timestamp()) * 10**9
    assert lookup(database_url, dated_key) == (project, "member", want)
    assert "2030-01-31T00:00:00+00:00" in dated.output

    short = runner.invoke(cli, ["keys", "create", "--project", project, "--expires", "12h", "--name", "s"])
    assert short.exit_code == 0, short.output
    never = runner.invoke(cli, ["keys", "create", "--project", project, "--name", "n"])
    revoked_key = never.stdout.strip().splitlines()[-1]
    assert runner.invoke(cli, ["keys", "revoke", revoked_key]).exit_code == 0
    engine = make_engine(database_url)
    try:
        ProjectRepository(engine).create_key(project, "viewer", "e", time.time_ns() - 1)
    finally:
        engine.dispose()

    listed = runner.invoke(cli, ["keys", "list", "--project", project, "--json"])
    assert listed.exit_code == 0, listed.output
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert {n: r["state"] for n, r in rows.items()} == {
        "d": "active",
        "s": "active",
        "n": "revoked",
        "e": "expired",
    }
    assert rows["d"]["expires_at"] == "2030-01-31T00:00:00+00:00"
    assert rows["n"]["expires_at"] is None
    assert dated_key not in listed.stdout  # never the secret
    text = runner.invoke(cli, ["keys", "list", "--project", project]).stdout
    assert "expired" in text
    assert "expires 2030-01-31T00:00:00+00:00" in text


@pytest.mark.parametrize("bad", ["yesterday", "0d", "2020-01-01", "99999w", "30x"])
def test_keys_create_refuses_unusable_expiries(runner: CliRunner, database_url: str, bad: str) -> None:
    project = unique("cli-bad")
    result = runner.invoke(cli, ["keys", "create", "--project", project, "--expires", bad])
    assert result.exit_code != 0
    assert "wk_" not in result.stdout
