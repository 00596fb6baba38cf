"""The browser assets in a real browser: ``/docs`` offline under its CSP, and console.js's
behaviours (CSRF header, theme, charts, shortcuts, confirmation, local times) on a page
that uses them under the console's strict policy, with nothing fetched from another host."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, expect

from tests.support.browser import BrowserSession
from tests.support.servers import LiveServer

# The console's own policy (ui/frame.py): not even inline styles.
STRICT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'"
)
CHART = {
    "x": [1_764_000_000, 1_764_000_060, 1_764_000_120, 1_764_000_180],
    "series": [
        {"label": "p95", "values": [120, None, 140, 90], "unit": "ms", "kind": "line"},
        {"label": "threshold", "values": [130, 130, 130, 130], "unit": "ms", "kind": "threshold"},
    ],
    "y_label": "latency",
}
FRAGMENT = (
    '<div class="wk-chart" data-chart="c2" id="chart2"></div>'
    f'<script type="application/json" id="c2">{json.dumps(CHART)}</script>'
)
PAGE = f"""<!doctype html><html lang="en"><head>
<meta charset="utf-8"><meta name="csrf-token" content="tok-123">
<meta name="htmx-config" content='{{"includeIndicatorStyles": false, "allowEval": false}}'>
<link rel="stylesheet" href="/static/vendor/uPlot.min.css">
<link rel="stylesheet" href="/static/console.css">
<script src="/static/theme.js"></script>
<script src="/static/vendor/htmx.min.js" defer></script>
<script src="/static/vendor/uPlot.iife.min.js" defer></script>
<script src="/static/console.js" defer></script>
</head><body>
<button type="button" data-theme-toggle>theme</button>
<input type="search" data-search aria-label="Search">
<a href="#traces" data-nav-key="t">Traces</a>
<a href="#next" data-key="j">next</a>
<time datetime="2026-01-02T00:00:00+00:00" data-local id="t1">2026-01-02 00:00:00</time>
<div id="holder"><div class="wk-chart" data-chart="c1" id="chart1"></div></div>
<script type="application/json" id="c1">{json.dumps(CHART)}</script>
<button type="button" hx-post="/__echo" hx-target="#holder" id="swap">swap</button>
<form action="/__page" method="get" data-confirm="Really?"><button name="sent" value="1">send</button></form>
<dialog class="wk-dialog" id="wk-shortcuts"><p>Shortcuts</p></dialog>
<button type="button" data-key="?">help</button>
<form action="/__page" method="get"><select name="project" data-autosubmit aria-label="Project"><option value="a">a</option><option value="b">b</option></select></form>
</body></html>"""


class Recorder:
    """What a page did that a test must see: errors, requests to other hosts, echo headers."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.errors: list[str] = []
        self.foreign: list[str] = []
        self.echo_headers: list[dict[str, str]] = []
        self.base_url = base_url
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.route("**/*", self._route)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def _route(self, route: Route) -> None:
        url = route.request.url
        if not url.startswith(self.base_url):
            self.foreign.append(url)
            route.abort()
        elif "/__page" in url:
            route.fulfill(
                body=PAGE, content_type="text/html", headers={"Content-Security-Policy": STRICT_CSP}
            )
        elif "/__echo" in url:
            self.echo_headers.append(route.request.headers)
            route.fulfill(body=FRAGMENT, content_type="text/html")
        else:
            route.continue_()


@pytest.fixture
def tokyo(browser: Browser, live_server: LiveServer) -> Iterator[BrowserSession]:
    """A browser in Tokyo (UTC+9), so local times differ from UTC."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, timezone_id="Asia/Tokyo", locale="en-GB"
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        yield BrowserSession(page, live_server.url)
    finally:
        context.close()


def test_api_docs_work_offline_under_their_policy(browser_session: BrowserSession) -> None:
    recorder = Recorder(browser_session.page, browser_session.base_url)
    page = browser_session.open("/docs")
    expect(page.locator(".opblock").first).to_be_visible()
    page.locator(".opblock-summary").first.click()  # an operation's parameters and example responses
    expect(page.locator(".opblock-body").first).to_be_visible()
    expect(page.locator(".opblock-body .highlight-code").first).to_be_visible()
    expect(page.get_by_role("button", name="Authorize")).to_be_visible()
    page.get_by_role("button", name="Authorize").click()
    bearer = page.locator(".auth-container").first  # HTTPBearer: a project key
    bearer.locator("input").fill("wk_test_key")
    bearer.locator("button.authorize").click()
    expect(bearer.locator("button", has_text="Logout")).to_be_visible()
    page.locator(".modal-ux .close-modal").click()
    browser_session.shot("api-docs")
    stored = page.evaluate("() => localStorage.getItem('authorized') || ''")
    assert "wk_test_key" in stored  # persistAuthorization: the key survives a reload
    assert recorder.foreign == []
    assert recorder.errors == []


def test_console_script_under_a_strict_policy(tokyo: BrowserSession) -> None:
    page = tokyo.page
    recorder = Recorder(page, tokyo.base_url)
    tokyo.open("/__page")
    expect(page.locator("#chart1 .uplot canvas")).to_have_count(1)
    expect(page.locator("#chart1 .u-legend")).to_contain_text("threshold")
    expect(page.locator("#t1")).to_have_text("02/01/2026, 09:00:00")  # UTC midnight in Tokyo

    page.get_by_role("button", name="theme").click()
    assert page.evaluate("() => document.documentElement.dataset.theme") == "light"
    page.get_by_role("button", name="theme").click()
    assert page.evaluate("() => document.documentElement.dataset.theme") == "dark"
    page.reload()  # theme.js applies the stored choice before the deferred scripts
    assert page.evaluate("() => document.documentElement.dataset.theme") == "dark"
    tokyo.shot("console-assets-dark")
    page.get_by_role("button", name="theme").click()
    assert page.evaluate("() => document.documentElement.dataset.theme ?? 'system'") == "system"

    page.keyboard.press("/")
    expect(page.get_by_label("Search")).to_be_focused()
    page.keyboard.type("jg t")  # typed into the search box: no shortcut fires
    assert page.url.endswith("/__page")
    page.get_by_label("Search").blur()
    page.keyboard.press("j")
    expect(page).to_have_url(re.compile(r"#next$"))  # waits: a link's navigation is not synchronous
    page.keyboard.press("g")
    page.keyboard.press("t")
    expect(page).to_have_url(re.compile(r"#traces$"))
    page.keyboard.press("Control+j")  # modifiers are the browser's
    assert page.url.endswith("#traces")
    page.keyboard.press("?")
    expect(page.locator("#wk-shortcuts")).to_have_attribute("open", "")
    page.keyboard.press("Escape")
    expect(page.locator("#wk-shortcuts")).not_to_have_attribute("open", "")
    page.get_by_role("button", name="help").click()
    expect(page.locator("#wk-shortcuts")).to_have_attribute("open", "")
    page.keyboard.press("Escape")

    page.get_by_role("button", name="swap").click()  # htmx: the token rides along
    expect(page.locator("#chart2 .uplot canvas")).to_have_count(1)  # charts start after a swap
    assert recorder.echo_headers[0]["x-csrf-token"] == "tok-123"
    assert page.evaluate("() => document.querySelectorAll('.uplot').length") == 1  # the old one is gone

    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="send").click()
    assert "sent=1" not in page.url
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="send").click()
    page.wait_for_url("**/__page?sent=1")
    page.get_by_label("Project").select_option("b")  # the project switch submits itself
    page.wait_for_url("**/__page?project=b")
    assert recorder.foreign == []
    assert recorder.errors == []
