"""Driving the console in Debian's headless chromium through Playwright (no browser download).

``BrowserSession`` is one logged-in browser context on a live server; ``shot`` keeps a
screenshot of each page as a test artefact (``WATCHKEEP_TEST_ARTIFACTS``, default
``.artifacts/console``), so a reviewer can see what every browser test saw.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

CHROMIUM = os.environ.get("WATCHKEEP_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("WATCHKEEP_TEST_ARTIFACTS", ".artifacts/console"))


def chromium_path() -> str | None:
    """The chromium binary, or None when it is not installed."""
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


@dataclass
class BrowserSession:
    """A browser page on a live server's console."""

    page: Page
    base_url: str

    def open(self, path: str) -> Page:
        self.page.goto(self.base_url + path)
        return self.page

    def login(self, email: str, password: str) -> None:
        """Log in through the login form, as a person would."""
        self.open("/login")
        self.page.get_by_label("E-mail address").fill(email)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Log in").click()
        expect(self.page).not_to_have_url(re.compile(r"/login"))

    def shot(self, name: str) -> Path:
        """A full-page screenshot kept as an artefact."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def new_session(browser: Browser, base_url: str, *, dark: bool = False) -> BrowserSession:
    """A fresh browser context (its own cookies) at a laptop's screen size."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, color_scheme="dark" if dark else "light"
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    return BrowserSession(page, base_url)
