"""The console's people pages: members, invitations and their acceptance, API keys; the
attacks first (a member or another organisation posting, an admin minting an owner, a
token used twice), then the flows that must work (both databases)."""

from __future__ import annotations

import html
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.support.apps import Api
from tests.support.console import ConsoleUser, console_user, project_of
from tests.support.people import people_on
from watchkeep.api.wiring import Services
from watchkeep.cli.main import app as cli
from watchkeep.config import Settings

SCRIPT = "<script>alert(1)</script>"
NEW_PASSWORD = "a long enough passphrase"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Key verifications cached for an hour: a revocation must evict the key to take effect."""
    return Settings(
        home=tmp_path,
        database_url=database_url,
        ingest_decode_workers=0,
        log_format="text",
        key_cache_seconds=3600,
    )


def _project(api: Api) -> str:
    return project_of(api.database_url, api.key)


def _email() -> str:
    return f"new-{uuid.uuid4().hex[:8]}@example.com"


def _services(api: Api) -> Services:
    svc: Services = api.app.state.services
    return svc


def _project_id(api: Api, project: str) -> int:
    found = _services(api).people.repository.project_organisation(project)
    assert found is not None
    return found[0]


def _organisation_id(api: Api, project: str) -> int:
    found = _services(api).people.repository.project_organisation(project)
    assert found is not None
    return found[1]


def _pending_emails(api: Api, project: str) -> set[str]:
    pending = _services(api).people.repository.pending_invitations(_organisation_id(api, project))
    return {i.email for i in pending}


def _role_in(api: Api, user_id: int, project: str) -> str | None:
    access = _services(api).people.access(user_id, project)
    return None if access is None else str(access.role)


def _invite(api: Api, admin: ConsoleUser, email: str, role: str = "member") -> str:
    """Invite ``email`` from the console; the link the page shows once."""
    r = admin.post(api.client, f"/p/{admin.project}/settings/members/invite", {"email": email, "role": role})
    assert r.status_code == 200, r.text
    match = re.search(r'value="(http[^"]*/invite/[^"]+)"', r.text)
    assert match is not None
    return html.unescape(match.group(1)).removeprefix("http://testserver")


def _anonymous_csrf(client: TestClient, path: str) -> str:
    """Open ``path`` with no session; the double-submit token of its form."""
    client.cookies.clear()
    r = client.get(path)
    assert r.status_code == 200, r.text
    match = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
    assert match is not None
    return match.group(1)


def _accept_new(client: TestClient, path: str, name: str = "New Person", password: str = NEW_PASSWORD) -> Any:
    token = _anonymous_csrf(client, path)
    return client.post(
        path,
        data={"csrf_token": token, "display_name": name, "password": password, "password_again": password},
        follow_redirects=False,
    )


# --- attacks ------------------------------------------------------------------------------


def test_member_is_refused_every_change_and_nothing_changes(api: Api) -> None:
    project = _project(api)
    admin = console_user(api.database_url, project, role="admin")
    member = console_user(api.database_url, project, role="member")
    page = member.get(api.client, f"/p/{project}/settings/members")
    assert page.status_code == 200
    assert admin.email in page.text
    assert member.email in page.text
    assert "Create invitation" not in page.text
    assert "Change role" not in page.text
    victim = _email()
    base = f"/p/{project}/settings/members"
    assert member.post(api.client, f"{base}/invite", {"email": victim, "role": "viewer"}).status_code == 403
    assert member.post(api.client, f"{base}/{admin.user_id}/role", {"role": "viewer"}).status_code == 403
    assert member.post(api.client, f"{base}/{admin.user_id}/remove").status_code == 403
    assert victim not in _pending_emails(api, project)
    assert _role_in(api, admin.user_id, project) == "admin"


def test_admin_cannot_invite_an_owner_or_make_one(api: Api) -> None:
    project = _project(api)
    admin = console_user(api.database_url, project, role="admin")
    member = console_user(api.database_url, project, role="member")
    page = admin.get(api.client, f"/p/{project}/settings/members")
    assert '<option value="owner"' not in page.text  # the form offers only grantable roles
    email = _email()
    r = admin.post(api.client, f"/p/{project}/settings/members/invite", {"email": email, "role": "owner"})
    assert r.status_code == 403
    assert "cannot grant" in r.text
    assert email not in _pending_emails(api, project)
    r = admin.post(api.client, f"/p/{project}/settings/members/{member.user_id}/role", {"role": "owner"})
    assert r.status_code == 403
    assert _role_in(api, member.user_id, project) == "member"


def test_keys_page_is_for_admins_only(api: Api) -> None:
    project = _project(api)
    for role in ("viewer", "member"):
        user = console_user(api.database_url, project, role=role)
        assert user.get(api.client, f"/p/{project}/settings/keys").status_code == 403
        r = user.post(api.client, f"/p/{project}/settings/keys", {"name": "x", "role": "viewer"})
        assert r.status_code == 403
        prefix = api.key[:15]
        assert user.post(api.client, f"/p/{project}/settings/keys/{prefix}/revoke").status_code == 403
        assert "settings/keys" not in user.get(api.client, f"/p/{project}/settings/members").text
    assert api.client.get("/api/v1/traces", headers=api.auth).status_code == 200  # still works


def test_another_organisation_sees_nothing(api: Api) -> None:
    project = _project(api)
    admin = console_user(api.database_url, project, role="admin")
    with people_on(api.database_url) as people:
        other_project = people.project(people.organisation()).name
    stranger = console_user(api.database_url, other_project, role="owner")
    base = f"/p/{project}/settings"
    assert stranger.get(api.client, f"{base}/members").status_code == 404
    assert stranger.get(api.client, f"{base}/keys").status_code == 404
    assert (
        stranger.post(api.client, f"{base}/members/invite", {"email": _email(), "role": "viewer"}).status_code
        == 404
    )
    assert stranger.post(api.client, f"{base}/members/{admin.user_id}/remove").status_code == 404
    assert stranger.post(api.client, f"{base}/keys/{api.key[:15]}/revoke").status_code == 404
    # nor can an admin here reach a person of the other organisation by its id
    r = admin.post(api.client, f"{base}/members/{stranger.user_id}/role", {"role": "viewer"})
    assert r.status_code == 404
    assert _role_in(api, stranger.user_id, other_project) == "owner"
    assert _role_in(api, stranger.user_id, project) is None


def test_an_invitation_works_once(api: Api) -> None:
    project = _project(api)
    admin = console_user(api.database_url, project, role="admin")
    path = _invite(api, admin, _email())
    assert _accept_new(api.client, path).status_code == 303
    api.client.cookies.clear()
    again = api.client.get(path)
    assert again.status_code == 404
    assert "not valid" in again.text
    second = _accept_new_after_use(api.client, path)
    assert second.status_code == 404
    assert api.client.get("/invite/" + "x" * 43).status_code == 404  # unknown: the same page


def _accept_new_after_use(client: TestClient, path: str) -> Any:
    """Post the form of a used invitation (the CSRF token from the login page)."""
    token = _anonymous_csrf(client, "/login")
    data = {
        "csrf_token": token,
        "display_name": "Late",
        "password": NEW_PASSWORD,
        "password_again": NEW_PASSWORD,
    }
    return client.post(path, data=data, follow_redirects=False)


def test_a_revoked_invitation_is_not_valid(api: Api) -> None:
    project = _project(api)
    admin = console_user(api.database_url, project, role="admin")
    email = _email()
    path = _invite(api, admin, email)
    pending = _services(api).people.repository.pending_invitations(_organisation_id(api, project))
    invitation = next(i for i in pending if i.email == email)
    r = admin.post(api.client, f"/p/{project}/settings/members/invitations/{invitation.id}/revoke")
    assert r.status_code == 303
    api.client.cookies.clear()
    assert api.client.get(path).status_code == 404


def test_the_invitation_form_needs_its_csrf_token(api: Api) -> None:
    project = _project(api)
    admin = console_user(api.database_url, project, role="admin")
    path = _invite(api, admin, _email())
    api.client.cookies.clear()
    data = {"display_name": "X", "password": NEW_PASSWORD, "password_again": NEW_PASSWORD}
    r = api.client.post(path, data={**data, "csrf_token": "forged"}, follow_redirects=False)
    assert r.status_code == 403
    assert api.client.get(path).status_code == 200  # still usable


def test_a_revoked_key_stops_working_at_once(api: Api) -> None:
    project = _project(api)
    admin = console_user(api.database_url, project, role="admin")
    r = admin.post(
        api.client, f"/p/{project}/settings/keys", {"name": "ci", "role": "viewer", "expires": "30d"}
    )
    assert r.status_code == 200
    match = re.search(r'value="(wk_[^"]+)"', r.text)
    assert match is not None
    secret = match.group(1)
    bearer = {"Authorization": f"Bearer {secret}"}
    api.client.cookies.clear()
    assert api.client.get("/api/v1/traces", headers=bearer).status_code == 200  # now cached
    listing = admin.get(api.client, f"/p/{project}/settings/keys").text
    assert secret not in listing
    assert secret[:15] in listing
    r = admin.post(api.client, f"/p/{project}/settings/keys/{secret[:15]}/revoke")
    assert r.status_code == 303
    api.client.cookies.clear()
    assert api.client.get("/api/v1/traces", headers=bearer).status_code == 401
    verbs = {e.verb for e in _services(api).activity.list(_project_id(api, project)).items}
    assert {"key created", "key revoked"} <= verbs


def test_an_admin_cannot_create_a_key_with_a_bad_expiry(api: Api) -> None:
    project = _project(api)
    admin = console_user(api.database_url, project, role="admin")
    before = admin.get(api.client, f"/p/{project}/settings/keys").text.count("data-prefix=")
    r = admin.post(
        api.client, f"/p/{project}/settings/keys", {"name": "x", "role": "viewer", "expires": "yesterday"}
    )
    assert r.status_code == 400
    assert "neither a duration" in html.unescape(r.text)
    assert admin.get(api.client, f"/p/{project}/settings/keys").text.count("data-prefix=") == before


# --- flows that must work -------------------------------------------------------------------


def test_invite_then_accept_as_a_new_person(api: Api) -> None:
    project = _project(api)
    admin = console_user(api.database_url, project, role="admin")
    email = _email()
    path = _invite(api, admin, email, role="member")
    api.client.cookies.clear()
    shown = api.client.get(path)
    assert project in shown.text
    assert "member" in shown.text
    assert email in shown.text
    weak = _accept_new(api.client, path, password="short")
    assert weak.status_code == 400
    assert "at least 12 characters" in weak.text
    assert 'value="short"' not in weak.text  # a password is never sent back
    assert _services(api).people.repository.user_by_email(email) is None
    done = _accept_new(api.client, path, name=SCRIPT)
    assert done.status_code == 303
    assert done.headers["location"] == f"/p/{project}/"
    home = api.client.get(f"/p/{project}/settings/members", follow_redirects=False)
    assert home.status_code == 200  # the new person is logged in
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in home.text
    assert SCRIPT not in home.text
    user = _services(api).people.repository.user_by_email(email)
    assert user is not None
    assert _role_in(api, user.id, project) == "member"
    assert "Create invitation" not in home.text  # a member sees no controls


def test_an_existing_person_logs_in_then_accepts(api: Api) -> None:
    project = _project(api)
    admin = console_user(api.database_url, project, role="admin")
    with people_on(api.database_url) as people:
        elsewhere = people.project(people.organisation()).name
    someone = console_user(api.database_url, elsewhere, role="member")
    path = _invite(api, admin, someone.email, role="viewer")
    api.client.cookies.clear()
    anonymous = api.client.get(path)
    assert "Log in to accept" in anonymous.text
    assert f"/login?next={path}" in anonymous.text
    page = someone.get(api.client, path)
    assert "Accept the invitation" in page.text
    r = someone.post(api.client, path)
    assert r.status_code == 303
    assert r.headers["location"] == f"/p/{project}/"
    assert _role_in(api, someone.user_id, project) == "viewer"
    assert someone.get(api.client, f"/p/{project}/").status_code == 200
    assert _role_in(api, someone.user_id, elsewhere) == "member"


def test_an_admin_changes_a_role_and_removes_a_member(api: Api) -> None:
    project = _project(api)
    admin = console_user(api.database_url, project, role="admin")
    member = console_user(api.database_url, project, role="member")
    base = f"/p/{project}/settings/members"
    assert admin.post(api.client, f"{base}/{member.user_id}/role", {"role": "viewer"}).status_code == 303
    assert _role_in(api, member.user_id, project) == "viewer"
    bad = admin.post(api.client, f"{base}/{member.user_id}/role", {"role": "boss"})
    assert bad.status_code == 400
    assert _role_in(api, member.user_id, project) == "viewer"
    # the member has no organisation role, so an organisation-wide change is refused clearly
    org = admin.post(api.client, f"{base}/{member.user_id}/role", {"role": "member", "scope": "organisation"})
    assert org.status_code == 400
    assert "not in the organisation" in org.text
    assert admin.post(api.client, f"{base}/{member.user_id}/remove").status_code == 303
    assert _role_in(api, member.user_id, project) is None
    assert member.get(api.client, base).status_code == 404
    verbs = {e.verb for e in _services(api).activity.list(_project_id(api, project)).items}
    assert {"role changed", "removed"} <= verbs


def test_an_invitation_form_with_a_bad_address_is_refused(api: Api) -> None:
    project = _project(api)
    admin = console_user(api.database_url, project, role="admin")
    r = admin.post(
        api.client, f"/p/{project}/settings/members/invite", {"email": "not an address", "role": "viewer"}
    )
    assert r.status_code == 400
    assert "valid e-mail address" in r.text
    assert "/invite/" not in r.text


def test_projects_create_in_an_organisation(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHKEEP_DATABASE_URL", database_url)
    runner = CliRunner()
    with people_on(database_url) as people:
        organisation = people.organisation()
        name = f"cli-{uuid.uuid4().hex[:8]}"
        made = runner.invoke(cli, ["projects", "create", name, "--org", organisation.name])
        assert made.exit_code == 0, made.output
        found = people.repo.project_organisation(name)
        assert found is not None
        assert found[1] == organisation.id
        missing = runner.invoke(cli, ["projects", "create", f"{name}-x", "--org", "no-such-org-here"])
        assert missing.exit_code == 1
        assert "no organisation named" in missing.output
        assert people.repo.project_organisation(f"{name}-x") is None
