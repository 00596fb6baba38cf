"""Releases in a browser: a member opens a model, reads the alias timeline, rolls production
back and sees the rollback at the top of the timeline."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.support.browser import BrowserSession
from tests.support.console import PASSWORD, console_user, project_of
from tests.support.people import project_of_key
from tests.support.servers import LiveServer
from watchkeep.registry.repository import RegistryRepository


def test_roll_back_production_from_the_timeline(
    live_server: LiveServer, browser_session: BrowserSession
) -> None:
    services = live_server.app.state.services
    pid = project_of_key(services.engine, live_server.api_key)[0]
    registry: RegistryRepository = services.registry_store
    for temperature in (0.0, 0.5):
        registry.register_model(pid, "clf", backend="mock", params={"temperature": temperature})
    registry.move_alias(pid, "model", "clf", "production", 1, actor="alice", reason="first release")
    registry.move_alias(pid, "model", "clf", "production", 2, actor="bob", reason="better recall")
    project = project_of(live_server.database_url, live_server.api_key)
    member = console_user(live_server.database_url, project, role="member")
    browser_session.login(member.email, PASSWORD)

    page = browser_session.open(f"/p/{project}/models")
    page.get_by_role("link", name="clf", exact=True).click()
    entries = page.locator("#timeline > li")
    expect(entries).to_have_count(2)
    expect(entries.first).to_contain_text("better recall")
    browser_session.shot("registry-model")

    row = page.locator("#aliases tr[data-alias='production']")
    row.get_by_label("Reason to roll back production").fill("latency regression")
    row.get_by_role("button", name="Roll back").click()
    expect(entries).to_have_count(3)
    expect(entries.first).to_have_attribute("data-kind", "rollback")
    expect(entries.first).to_contain_text("latency regression")
    expect(entries.first).to_contain_text("v2 → v1")
    expect(row).to_contain_text("v1")
    browser_session.shot("registry-rolled-back")
    assert registry.aliases(pid, "model", "clf") == {"production": 1}
