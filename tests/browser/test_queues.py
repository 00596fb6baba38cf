"""Annotation in a browser: open a queue, label three items with the keyboard, read the feed."""

from __future__ import annotations

import time

from playwright.sync_api import expect

from tests.support.browser import BrowserSession
from tests.support.console import PASSWORD, console_user, project_of
from tests.support.otlp_json import SEC
from tests.support.query_data import llm_trace, post_spans
from tests.support.servers import LiveServer


def test_label_three_items_with_the_keyboard(
    live_server: LiveServer, browser_session: BrowserSession
) -> None:
    t0 = (time.time_ns() // SEC - 300) * SEC
    post_spans(
        live_server.url, live_server.api_key, [s for n in (1, 2, 3) for s in llm_trace(n, t0 + n * SEC)]
    )
    project = project_of(live_server.database_url, live_server.api_key)
    user = console_user(live_server.database_url, project, role="member")
    browser_session.login(user.email, PASSWORD)

    page = browser_session.open(f"/p/{project}/queues")
    page.get_by_role("link", name="New queue").click()
    page.get_by_label("Name").first.fill("tone")
    page.get_by_label("Score name").fill("tone")
    page.get_by_label("Labels").fill("polite\nrude\nneutral")
    page.get_by_label("N (traces)").fill("3")
    browser_session.shot("queues-new")
    page.get_by_role("button", name="Create queue").click()
    expect(page.locator("main h1")).to_have_text("Queue tone")
    queue_url = page.url
    expect(page.locator("#items tbody tr")).to_have_count(3)
    expect(page.locator("#agreement")).to_contain_text(
        "Agreement shows once two annotators"
    )  # htmx loaded it
    browser_session.shot("queues-detail")

    page.get_by_role("link", name="Start annotating").click()
    progress = page.locator("#progress")
    expect(progress).to_contain_text("0 of 3 done by you")
    expect(page.locator("#conversation")).to_contain_text("question 3")
    expect(page.locator('button[data-key="1"]')).to_contain_text("polite")
    browser_session.shot("queues-annotate")
    page.locator("main h1").click()  # focus outside any field: shortcuts are live
    for n, key in enumerate(("1", "2", "1"), start=1):
        page.keyboard.press(key)
        expect(progress).to_contain_text(f"{n} of 3 done by you")
    expect(page.locator("#annotate-title")).to_have_text("Nothing left for you")
    browser_session.shot("queues-done")

    page.goto(queue_url)
    statuses = page.locator("#items tbody tr td:nth-child(4)")
    expect(statuses).to_have_text(["polite", "rude", "polite"])

    page = browser_session.open(f"/p/{project}/activity")
    expect(page.locator("main h1")).to_have_text("Activity")
    expect(page.locator("#feed tbody tr").first).to_contain_text(
        "created annotation queue tone with 3 traces"
    )
    browser_session.shot("activity")
