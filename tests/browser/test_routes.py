"""Gateway routes in a browser: an admin moves a canary's weight; a viewer is refused the editor."""

from __future__ import annotations

import httpx
from playwright.sync_api import expect

from tests.support.browser import BrowserSession
from tests.support.console import PASSWORD, console_user, project_of
from tests.support.keys import new_key
from tests.support.servers import LiveServer

CANARY = {
    "deployments": [
        {"name": "stable", "backend": "mock", "weight": 9, "mock": {"reply": "stable"}},
        {"name": "canary", "backend": "mock", "weight": 1, "mock": {"reply": "canary"}},
    ]
}


def test_admin_edits_a_canary_weight_and_a_viewer_is_refused(
    live_server: LiveServer, browser_session: BrowserSession
) -> None:
    project = project_of(live_server.database_url, live_server.api_key)
    admin_key = new_key(live_server.database_url, "admin", project)
    with httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {admin_key}"}) as api:
        assert api.put("/api/v1/routes/chat", json=CANARY).status_code == 200
        admin = console_user(live_server.database_url, project, role="admin")
        browser_session.login(admin.email, PASSWORD)

        page = browser_session.open(f"/p/{project}/routes")
        card = page.locator("section[data-route='chat']")
        expect(card.locator("tr[data-deployment='canary']")).to_contain_text("10.0%")
        browser_session.shot("routes-list")

        card.get_by_role("link", name="Edit").click()
        page.get_by_label("Weight of canary").fill("3")
        browser_session.shot("routes-edit")
        page.get_by_role("button", name="Save deployments").click()
        expect(card.locator("tr[data-deployment='canary']")).to_contain_text("25.0%")
        browser_session.shot("routes-saved")
        weights = {d["name"]: d["weight"] for d in api.get("/api/v1/routes/chat").json()["deployments"]}
        assert weights == {"stable": 9.0, "canary": 3.0}

    page.context.clear_cookies()
    viewer = console_user(live_server.database_url, project, role="viewer")
    browser_session.login(viewer.email, PASSWORD)
    page = browser_session.open(f"/p/{project}/routes")
    expect(page.locator("section[data-route='chat']")).to_contain_text("25.0%")
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    response = page.goto(f"{live_server.url}/p/{project}/routes/chat/edit")
    assert response is not None
    assert response.status == 403
    browser_session.shot("routes-viewer-refused")
