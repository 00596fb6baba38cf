"""The console's audit page and its call sites (both databases): admins see the project's
entries, members are refused, key changes made in the console and failed logins are
recorded (a failed login server-wide, never on a project's page)."""

from __future__ import annotations

import re

from tests.support.apps import Api
from tests.support.console import console_user, project_of
from watchkeep.security.audit import AuditLog


def test_members_are_refused_and_admins_see_console_key_changes(api: Api) -> None:
    project = project_of(api.database_url, api.key)
    member = console_user(api.database_url, project, role="member")
    assert member.get(api.client, f"/p/{project}/audit").status_code == 403
    admin = console_user(api.database_url, project, role="admin")
    made = admin.post(
        api.client, f"/p/{project}/settings/keys", {"role": "viewer", "name": "ci", "expires": ""}
    )
    assert made.status_code == 200, made.text
    page = admin.get(api.client, f"/p/{project}/audit")
    assert page.status_code == 200
    assert "key.create" in page.text
    assert f"user:{admin.email}" in page.text
    secret = re.search(r"wk_[A-Za-z0-9_-]{20,}", made.text)
    assert secret is not None
    assert secret.group(0) not in page.text
    filtered = admin.get(api.client, f"/p/{project}/audit?action=key.revoke")
    assert "key.create" not in filtered.text.split('id="audit-title"')[1]


def test_a_failed_login_is_recorded_server_wide(api: Api) -> None:
    log = AuditLog(api.app.state.services.engine)
    head = log.head()
    api.client.cookies.clear()
    form = api.client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    refused = api.client.post(
        "/login",
        data={
            "email": "nobody-audit@example.com",
            "password": "wrong-password",
            "csrf_token": token.group(1),
        },
        follow_redirects=False,
    )
    assert refused.status_code == 401, refused.status_code
    entries = log.entries(action="login.failed", after_seq=None if head is None else head.seq, limit=1000)
    mine = [e for e in entries if e.actor == "user:nobody-audit@example.com"]
    assert len(mine) == 1
    assert mine[0].project_id is None
    assert "wrong-password" not in str(mine[0])
