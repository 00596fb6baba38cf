"""Traces in a browser: filter and search the list, open a trace, read it, comment on it."""

from __future__ import annotations

import json
import re
import time

from playwright.sync_api import expect

from tests.support.browser import BrowserSession
from tests.support.console import PASSWORD, console_user, project_of
from tests.support.otlp_json import SEC, attr
from tests.support.query_data import llm_trace, post_spans
from tests.support.servers import LiveServer

AGENT = "ab" * 16


def agent_trace(start: int) -> list[dict[str, object]]:
    """An agent whose planning step calls a model about zebras, then a failing tool."""
    messages = [
        {"role": "system", "content": "Count carefully."},
        {"role": "user", "content": "How many zebras?"},
    ]

    def span(
        sid: str, name: str, a: int, b: int, parent: str | None, attrs: list[dict[str, object]]
    ) -> dict[str, object]:
        out: dict[str, object] = {
            "traceId": AGENT,
            "spanId": sid * 16,
            "name": name,
            "startTimeUnixNano": str(start + a),
            "endTimeUnixNano": str(start + b),
            "attributes": attrs,
        }
        if parent:
            out["parentSpanId"] = parent * 16
        return out

    tool = span("4", "lookup", SEC // 2, SEC, "1", [])
    tool["status"] = {"code": 2, "message": "zoo closed"}
    return [
        span("1", "agent", 0, SEC, None, [attr("watchkeep.user.id", "ann")]),
        span("2", "plan", SEC // 10, SEC // 2, "1", []),
        span(
            "3",
            "chat",
            SEC // 5,
            SEC // 3,
            "2",
            [
                attr("gen_ai.operation.name", "chat"),
                attr("gen_ai.request.model", "gpt-4o"),
                attr("gen_ai.input.messages", json.dumps(messages)),
                attr(
                    "gen_ai.output.messages", json.dumps([{"role": "assistant", "content": "Seven zebras."}])
                ),
            ],
        ),
        tool,
    ]


def test_filter_search_open_and_comment(live_server: LiveServer, browser_session: BrowserSession) -> None:
    t0 = (time.time_ns() // SEC - 300) * SEC
    spans = [s for n in range(1, 5) for s in llm_trace(n, t0 + n * SEC)] + agent_trace(t0 + 10 * SEC)
    post_spans(live_server.url, live_server.api_key, spans)
    live_server.app.state.services.search.catch_up()
    project = project_of(live_server.database_url, live_server.api_key)
    user = console_user(live_server.database_url, project, role="member")
    browser_session.login(user.email, PASSWORD)

    page = browser_session.open(f"/p/{project}/traces")
    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(5)
    browser_session.shot("traces-list")

    page.get_by_label("Model").fill("gpt-4o")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"model=gpt-4o"))
    expect(rows).to_have_count(3)  # traces 1 and 3, and the agent
    page.keyboard.press("Escape")
    page.locator("main h1").click()
    page.keyboard.press("/")
    search = page.get_by_label("Search")
    expect(search).to_be_focused()
    search.fill("zebras")
    search.press("Enter")
    expect(page).to_have_url(re.compile(r"q=zebras"))
    expect(rows).to_have_count(1)
    browser_session.shot("traces-searched")

    rows.first.get_by_role("link", name="agent").click()
    expect(page).to_have_url(re.compile(f"/traces/{AGENT}"))
    waterfall = page.locator(".wk-waterfall tbody tr")
    expect(waterfall).to_have_count(4)
    expect(waterfall.locator(".wk-wf-name a")).to_have_text(["agent", "plan", "chat", "lookup"])
    expect(page.locator(".wk-waterfall rect.wk-wf-error")).to_have_count(1)
    messages = page.locator(".wk-conversation .wk-message")
    expect(messages).to_have_count(3)
    expect(messages.nth(1)).to_contain_text("How many zebras?")
    expect(messages.nth(2)).to_contain_text("Seven zebras.")
    browser_session.shot("trace-conversation")

    page.locator(".wk-waterfall").get_by_role("link", name="lookup").click()
    expect(page.locator("#span-detail h2")).to_contain_text("lookup")
    expect(page.locator("#span-detail")).to_contain_text("zoo closed")
    expect(page).to_have_url(re.compile(r"span=4{16}"))

    page.get_by_label("Add a comment").fill("The zoo tool fails here, see the lookup span.")
    page.get_by_role("button", name="Comment").click()
    expect(page.locator("#comments .wk-comment")).to_have_count(1)
    expect(page.locator("#comments .wk-comment")).to_contain_text("The zoo tool fails here")
    browser_session.shot("trace-commented")
