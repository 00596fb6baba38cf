"""Single sign-on in a real browser: the login page's "Sign in with SSO" button goes through
the test's OpenID Connect provider and back into the project, and no page on the way hits
a Content-Security-Policy violation."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import ConsoleMessage, expect

from tests.support.browser import BrowserSession
from tests.support.console import console_user, project_of
from tests.support.oidc_provider import Provider, oidc_provider, sso_settings
from tests.support.servers import LiveServer
from watchkeep.config import Settings

EMAIL = f"sso-browser-{uuid.uuid4().hex[:8]}@example.com"


@pytest.fixture
def provider() -> Iterator[Provider]:
    with oidc_provider(EMAIL) as running:
        yield running


@pytest.fixture
def settings(database_url: str, tmp_path: Path, provider: Provider) -> Settings:
    return sso_settings(database_url, tmp_path, provider)


def test_the_sso_button_signs_in_under_the_strict_policy(
    live_server: LiveServer, browser_session: BrowserSession
) -> None:
    project = project_of(live_server.database_url, live_server.api_key)
    console_user(live_server.database_url, project, email=EMAIL)
    violations: list[str] = []

    def watch(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            violations.append(message.text)

    page = browser_session.page
    page.on("console", watch)
    browser_session.open(f"/login?next=/p/{project}/")
    browser_session.shot("sso-login")
    page.get_by_role("link", name="Sign in with SSO").click()
    expect(page).to_have_url(re.compile(rf"/p/{re.escape(project)}/$"))
    expect(page.locator("main")).to_be_visible()
    browser_session.shot("sso-landed")
    assert violations == []
