"""Validation in a browser: compare two runs and read the verdict; build a dataset from the
trace list's filter and land on its version."""

from __future__ import annotations

import re
import time

from playwright.sync_api import expect

from tests.support.browser import BrowserSession
from tests.support.console import PASSWORD, console_user, project_of
from tests.support.evals import store_run
from tests.support.otlp_json import SEC
from tests.support.people import project_of_key
from tests.support.query_data import llm_trace, post_spans
from tests.support.servers import LiveServer

KEYS = [f"q{k}" for k in range(1, 31)]


def test_compare_two_runs_and_see_the_verdict(
    live_server: LiveServer, browser_session: BrowserSession
) -> None:
    pid = project_of_key(live_server.app.state.services.engine, live_server.api_key)[0]
    base = store_run(live_server.database_url, pid, dict.fromkeys(KEYS, True), name="baseline")
    cand = store_run(
        live_server.database_url, pid, {k: int(k[1:]) > 10 for k in KEYS}, name="candidate", seed=1
    )
    project = project_of(live_server.database_url, live_server.api_key)
    user = console_user(live_server.database_url, project, role="viewer")
    browser_session.login(user.email, PASSWORD)

    page = browser_session.open(f"/p/{project}/evals")
    expect(page.locator("#runs tbody tr")).to_have_count(2)
    page.get_by_role("link", name="Compare two runs").click()
    page.get_by_label("Baseline").select_option(str(base.id))
    page.get_by_label("Candidate").select_option(str(cand.id))
    page.get_by_role("button", name="Compare").click()
    expect(page).to_have_url(re.compile(rf"baseline={base.id}&candidate={cand.id}"))
    verdict = page.locator("#verdict")
    expect(verdict).to_have_class(re.compile("wk-verdict-regression"))
    expect(verdict).to_contain_text("10 broken, 0 fixed")
    broken = page.locator('#item-diffs tr[data-change="broken"]')
    expect(broken).to_have_count(10)
    expect(broken.first).to_contain_text("wrong q")
    browser_session.shot("evals-compare")

    page.get_by_role("link", name=f"#{cand.id} candidate").click()
    expect(page.locator("main h1")).to_contain_text("candidate")
    page.get_by_label("Failed only").check()  # htmx swaps the items
    expect(page.locator("#items tbody tr")).to_have_count(10)
    browser_session.shot("evals-run")


def test_build_a_dataset_from_the_trace_filter(
    live_server: LiveServer, browser_session: BrowserSession
) -> None:
    t0 = (time.time_ns() // SEC - 300) * SEC
    post_spans(
        live_server.url, live_server.api_key, [s for n in (1, 2, 3, 4) for s in llm_trace(n, t0 + n * SEC)]
    )
    project = project_of(live_server.database_url, live_server.api_key)
    user = console_user(live_server.database_url, project, role="member")
    browser_session.login(user.email, PASSWORD)

    page = browser_session.open(f"/p/{project}/traces")
    page.get_by_label("Model").fill("gpt-4o")
    page.get_by_role("button", name="Apply").click()  # htmx swaps the list and the form
    expect(page.locator("table.wk-trace-list tbody tr")).to_have_count(2)
    page.get_by_text("Build a dataset").click()
    page.get_by_label("Dataset name").fill("gpt4o-questions")
    page.get_by_label("Message").fill("from the console")
    browser_session.shot("evals-build-dataset")
    page.get_by_role("button", name="Build the dataset").click()

    expect(page).to_have_url(re.compile(rf"/p/{project}/datasets/gpt4o-questions/versions/1$"))
    rows = page.locator("#items tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("main")).to_contain_text("from the console")
    expect(rows.first.get_by_role("link")).to_have_attribute("href", re.compile(r"/traces/0{31}3$"))
    browser_session.shot("evals-dataset-version")
