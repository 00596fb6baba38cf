"""A comment written in the console is PII-redacted under the project's policy, as the API's
score comments are; a mention by handle still works."""

from __future__ import annotations

import time

from tests.integration.test_console_traces import DEEP, seed, stored_comments
from tests.support.apps import Api
from tests.support.console import console_user, project_of


def test_console_comments_are_stored_redacted(api: Api) -> None:
    seed(api)
    project = project_of(api.database_url, api.key)
    viewer = console_user(api.database_url, project, role="viewer", email=f"pia-{time.time_ns()}@example.com")
    member = console_user(api.database_url, project, role="member")
    handle = viewer.email.split("@")[0]
    body = f"@{handle} the customer wrote from bob@example.com, card 4111 1111 1111 1111"
    path = f"/p/{project}/traces/{DEEP}"
    assert member.post(api.client, path + "/comments", {"body": body}).status_code == 303
    assert stored_comments(api)[-1] == f"@{handle} the customer wrote from [EMAIL], card [CARD]"
    section = viewer.get(api.client, path).text
    assert f'<mark class="wk-mention">@{handle}</mark>' in section
    assert "bob@example.com" not in section
