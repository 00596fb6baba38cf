"""Browser tests: a live server per test, one headless chromium per test module.

Per module, not per session: Playwright's sync API keeps an event loop running on the
thread until it stops, and later tests in the same process call ``asyncio.run``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.support.browser import BrowserSession, chromium_path, new_session
from tests.support.servers import LiveServer


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium, headless (``--no-sandbox``: CI runs as root)."""
    path = chromium_path()
    if path is None:
        pytest.fail("chromium is not installed: run scripts/install-system-deps.sh (make test does)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=path, headless=True, args=["--no-sandbox"])
        yield instance
        instance.close()


@pytest.fixture
def browser_session(browser: Browser, live_server: LiveServer) -> Iterator[BrowserSession]:
    """A browser context on the test's live server (log in with ``session.login``)."""
    session = new_session(browser, live_server.url)
    try:
        yield session
    finally:
        session.page.context.close()
