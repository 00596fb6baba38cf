"""Monitors in a browser: a firing monitor's page with its chart, then silencing it for an hour."""

from __future__ import annotations

import time

from playwright.sync_api import expect

from tests.support.browser import BrowserSession
from tests.support.console import PASSWORD, console_user, project_of
from tests.support.query_data import send_traces
from tests.support.servers import LiveServer


def firing_monitor(server: LiveServer) -> int:
    """A monitor that alerts (fewer than a million calls), evaluated now through the API."""
    spec = {
        "name": "too-quiet",
        "kind": "metric",
        "metric": "requests",
        "min_samples": 0,
        "severity": "critical",
        "condition": {"op": "<", "alert": 1_000_000, "warning": 2_000_000},
    }
    with server.client as client:
        created = client.post("/api/v1/monitors", json=spec)
        assert created.status_code == 201, created.text
        monitor_id = int(created.json()["id"])
        for _ in range(50):  # the server's own worker may hold it for a moment
            evaluated = client.post(f"/api/v1/monitors/{monitor_id}/evaluate")
            if evaluated.status_code != 409:
                break
            time.sleep(0.1)
        assert evaluated.status_code == 200, evaluated.text
        assert evaluated.json()["state"] == "ALERT"
    return monitor_id


def test_silence_a_firing_monitor(live_server: LiveServer, browser_session: BrowserSession) -> None:
    send_traces(live_server.url, live_server.api_key, range(1, 6))
    monitor_id = firing_monitor(live_server)
    project = project_of(live_server.database_url, live_server.api_key)
    user = console_user(live_server.database_url, project, role="member")
    browser_session.login(user.email, PASSWORD)

    page = browser_session.open(f"/p/{project}/monitors")
    row = page.locator(f"tr[data-monitor='{monitor_id}']")
    expect(row).to_contain_text("ALERT")
    expect(page.locator("#history")).to_contain_text("firing")
    browser_session.shot("monitors-list")

    row.get_by_role("link", name="too-quiet").click()
    expect(page.locator(".wk-stat", has_text="State").locator(".wk-stat-value")).to_have_text("ALERT")
    expect(page.locator("#signal .uplot canvas")).to_have_count(1)  # uPlot drew the signal
    expect(page.locator("#signal")).to_contain_text("alert < 1,000,000")
    browser_session.shot("monitors-detail-firing")

    page.get_by_label("For").fill("1h")
    page.get_by_label("Reason").fill("deploy window")
    page.get_by_role("button", name="Silence", exact=True).click()
    silenced = page.locator(".wk-stat", has_text="Silenced until")
    expect(silenced).to_contain_text("UTC")
    expect(silenced).to_contain_text("deploy window")
    expect(page.get_by_role("button", name="End silence")).to_be_visible()
    browser_session.shot("monitors-silenced")
