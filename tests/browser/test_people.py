"""People in a browser: an admin invites someone, who accepts in a browser of their own and
lands in the project; the admin creates a key and revokes it."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import Browser, expect

from tests.support.browser import BrowserSession, new_session
from tests.support.console import PASSWORD, console_user, project_of
from tests.support.servers import LiveServer


def test_invite_accept_and_manage_keys(
    live_server: LiveServer, browser: Browser, browser_session: BrowserSession
) -> None:
    project = project_of(live_server.database_url, live_server.api_key)
    admin = console_user(live_server.database_url, project, role="admin")
    browser_session.login(admin.email, PASSWORD)
    email = f"guest-{uuid.uuid4().hex[:8]}@example.com"

    page = browser_session.open(f"/p/{project}/settings/members")
    page.locator("#f-email").fill(email)
    page.locator("#f-role").select_option("member")
    page.get_by_role("button", name="Create invitation").click()
    link = page.get_by_label("Invitation link")
    expect(link).to_have_value(re.compile(r"/invite/"))
    expect(page.locator("#invitations")).to_contain_text(email)
    browser_session.shot("people-invited")

    guest = new_session(browser, live_server.url)
    try:
        invite = guest.page
        invite.goto(link.input_value())
        expect(invite.locator("main")).to_contain_text(project)
        invite.locator("#f-display_name").fill("Guest Person")
        invite.locator("#f-password").fill("a long enough passphrase")
        invite.locator("#f-password_again").fill("a long enough passphrase")
        guest.shot("people-accept")
        invite.get_by_role("button", name="Create my account and join").click()
        expect(invite).to_have_url(re.compile(rf"/p/{project}/$"))
        expect(invite.locator(".wk-user-menu")).to_contain_text("Guest Person")
        expect(invite.locator(".wk-user-menu")).to_contain_text("member")
        guest.shot("people-guest-in-project")
    finally:
        guest.page.context.close()

    page = browser_session.open(f"/p/{project}/settings/keys")
    page.locator("#f-name").fill("ci pipeline")
    page.locator("#f-role").select_option("viewer")
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_label("The new key")
    expect(secret).to_have_value(re.compile(r"^wk_"))
    prefix = secret.input_value()[:15]
    row = page.locator(f"tr[data-prefix='{prefix}']")
    expect(row).to_contain_text("active")
    browser_session.shot("people-key-created")
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator(f"tr[data-prefix='{prefix}']")).to_contain_text("revoked")
    expect(page.get_by_label("The new key")).to_have_count(0)  # the secret is gone for good
    browser_session.shot("people-key-revoked")
