"""``watchkeep users ...`` and ``watchkeep orgs ...`` through the command line."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from tests.support.people import PASSWORD, People, people_on
from watchkeep.cli.main import app as cli
from watchkeep.security.people import LoginRefused


@pytest.fixture
def runner(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("WATCHKEEP_DATABASE_URL", database_url)
    return CliRunner()


@pytest.fixture
def people(database_url: str) -> Iterator[People]:
    with people_on(database_url) as made:
        yield made


def email(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"


def test_orgs_create_list_and_the_first_user_is_owner(runner: CliRunner, people: People) -> None:
    name = f"acme-{uuid.uuid4().hex[:8]}"
    made = runner.invoke(cli, ["orgs", "create", name])
    assert made.exit_code == 0, made.output
    assert runner.invoke(cli, ["orgs", "create", name]).exit_code == 1
    first, second = email("first"), email("second")
    done = runner.invoke(
        cli, ["users", "create", first, "--org", name, "--password-stdin"], input=PASSWORD + "\n"
    )
    assert done.exit_code == 0, done.output
    assert "owner" in done.output
    done = runner.invoke(
        cli,
        ["users", "create", second, "--org", name, "--name", "Sam", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert done.exit_code == 0, done.output
    listed = runner.invoke(cli, ["users", "list", "--org", name, "--json"])
    rows = {r["email"]: r for r in json.loads(listed.stdout)}
    assert (rows[first]["role"], rows[second]["role"], rows[second]["name"]) == ("owner", "member", "Sam")
    orgs = {o["name"]: o for o in json.loads(runner.invoke(cli, ["orgs", "list", "--json"]).stdout)}
    assert orgs[name]["members"] == 2
    people.service.login(first, PASSWORD, user_agent=None, address=None)
    again = runner.invoke(cli, ["users", "create", first.upper(), "--password-stdin"], input=PASSWORD + "\n")
    assert again.exit_code == 1
    assert "exists" in again.output


def test_create_generates_a_password_without_a_terminal_and_checks_the_policy(
    runner: CliRunner, people: People
) -> None:
    address = email("gen")
    made = runner.invoke(cli, ["users", "create", address, "--role", "viewer"])
    assert made.exit_code == 0, made.output
    generated = made.stdout.strip().splitlines()[-1]
    people.service.login(address, generated, user_agent=None, address=None)
    weak = runner.invoke(cli, ["users", "create", email("weak"), "--password-stdin"], input="short\n")
    assert weak.exit_code == 1
    assert "at least 12 characters" in weak.output
    bad = runner.invoke(cli, ["users", "create", "not-an-address", "--password-stdin"], input=PASSWORD + "\n")
    assert bad.exit_code == 1
    assert "valid e-mail" in bad.output


def test_project_role_set_password_logout_and_disable(runner: CliRunner, people: People) -> None:
    org = people.organisation()
    project = people.project(org)
    address = email("proj")
    made = runner.invoke(
        cli,
        ["users", "create", address, "--project", project.name, "--role", "admin", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert made.exit_code == 0, made.output
    user = people.repo.user_by_email(address)
    assert user is not None
    assert [(p.project_name, p.role) for p in people.service.projects_for(user.id)] == [
        (project.name, "admin")
    ]

    token, _ = people.service.login(address, PASSWORD, user_agent=None, address=None)
    out = runner.invoke(cli, ["users", "logout", address])
    assert out.exit_code == 0
    assert "ended 1 session" in out.output
    assert people.service.session_user(token) is None

    token, _ = people.service.login(address, PASSWORD, user_agent=None, address=None)
    changed = runner.invoke(
        cli, ["users", "set-password", address, "--password-stdin"], input="another fine passphrase\n"
    )
    assert changed.exit_code == 0, changed.output
    assert people.service.session_user(token) is None
    with pytest.raises(LoginRefused):
        people.service.login(address, PASSWORD, user_agent=None, address=None)
    people.service.login(address, "another fine passphrase", user_agent=None, address=None)

    assert runner.invoke(cli, ["users", "disable", address]).exit_code == 0
    with pytest.raises(LoginRefused):
        people.service.login(address, "another fine passphrase", user_agent=None, address=None)
    listed = json.loads(runner.invoke(cli, ["users", "list", "--json"]).stdout)
    assert {r["email"]: r["state"] for r in listed}[address] == "disabled"
    assert runner.invoke(cli, ["users", "disable", email("nobody")]).exit_code == 1


def test_invite_prints_a_single_use_link(runner: CliRunner, people: People) -> None:
    org = people.organisation()
    project = people.project(org)
    address = email("inv")
    out = runner.invoke(
        cli,
        [
            "users",
            "invite",
            address,
            "--org",
            org.name,
            "--project",
            project.name,
            "--role",
            "member",
            "--base-url",
            "https://console.example.com/",
        ],
    )
    assert out.exit_code == 0, out.output
    link = out.stdout.strip().splitlines()[-1]
    assert link.startswith("https://console.example.com/invite/")
    token = link.rsplit("/", 1)[1]
    user = people.service.accept_invitation(token, display_name="Invited", password=PASSWORD)
    assert people.service.access(user.id, project.name).role == "member"  # type: ignore[union-attr]
    elsewhere = runner.invoke(
        cli, ["users", "invite", address, "--org", "default", "--project", project.name, "--role", "viewer"]
    )
    assert elsewhere.exit_code == 1
    assert "no project" in elsewhere.output
