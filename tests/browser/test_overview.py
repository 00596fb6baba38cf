"""Reading the overview in a browser: stat cards, uPlot charts, and a filter change."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.support.browser import BrowserSession
from tests.support.console import PASSWORD, console_user, project_of
from tests.support.query_data import send_traces
from tests.support.servers import LiveServer


def test_read_and_filter_the_overview(live_server: LiveServer, browser_session: BrowserSession) -> None:
    send_traces(live_server.url, live_server.api_key, range(1, 21))  # 20 calls, 10 on gpt-4o
    project = project_of(live_server.database_url, live_server.api_key)
    user = console_user(live_server.database_url, project, role="viewer")
    browser_session.login(user.email, PASSWORD)

    page = browser_session.open(f"/p/{project}/?range=1h")
    calls = page.locator(".wk-stat", has_text="Calls").locator(".wk-stat-value")
    expect(calls).to_have_text("20")
    expect(page.locator(".wk-stat", has_text="Cost").locator(".wk-stat-value")).to_have_text("$0.21")
    expect(page.locator(".wk-chart canvas")).to_have_count(4)  # uPlot drew every chart
    browser_session.shot("overview-all")

    page.get_by_label("Model").fill("gpt-4o")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"model=gpt-4o"))
    expect(calls).to_have_text("10")
    expect(page.locator(".wk-chart canvas")).to_have_count(4)  # redrawn after the swap
    browser_session.shot("overview-filtered")
