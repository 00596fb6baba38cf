"""The console's frame: login, sessions in cookies, CSRF, project access, security headers."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.support.apps import Api
from tests.support.console import PASSWORD, ConsoleUser, console_user, project_of
from watchkeep.ui.pages.auth import safe_next


def _login_form(client: TestClient) -> str:
    page = client.get("/login")
    assert page.status_code == 200
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match is not None
    return match.group(1)


@pytest.fixture
def member(api: Api) -> ConsoleUser:
    return console_user(api.database_url, project_of(api.database_url, api.key), "member")


def test_pages_need_a_session(api: Api) -> None:
    project = project_of(api.database_url, api.key)
    response = api.client.get(f"/p/{project}/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next=%2Fp%2F{project}%2F"
    htmx = api.client.get(f"/p/{project}/", headers={"HX-Request": "true"}, follow_redirects=False)
    assert htmx.headers["hx-redirect"].startswith("/login?next=")


def test_login_sets_a_hardened_session_cookie(api: Api, member: ConsoleUser) -> None:
    api.client.cookies.clear()
    token = _login_form(api.client)
    response = api.client.post(
        "/login",
        data={"csrf_token": token, "email": member.email.upper(), "password": PASSWORD, "next": "/account"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/account"
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and "wk_session=" in v)
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http on loopback (auto)
    account = api.client.get("/account")
    assert member.email in account.text


def test_secure_cookies_over_https(api: Api, member: ConsoleUser) -> None:
    client = TestClient(api.app, base_url="https://testserver")
    token = _login_form(client)
    login_cookie = client.cookies.get("__Host-wk_login_csrf")
    assert login_cookie == token
    response = client.post(
        "/login",
        data={"csrf_token": token, "email": member.email, "password": PASSWORD},
        follow_redirects=False,
    )
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and "wk_session=" in v)
    assert cookie.startswith("__Host-wk_session=")
    assert "Secure" in cookie


def test_login_refusals_say_the_same_thing(api: Api, member: ConsoleUser) -> None:
    api.client.cookies.clear()
    token = _login_form(api.client)
    wrong = api.client.post("/login", data={"csrf_token": token, "email": member.email, "password": "nope"})
    unknown = api.client.post(
        "/login", data={"csrf_token": token, "email": "nobody@example.com", "password": PASSWORD}
    )
    assert wrong.status_code == unknown.status_code == 401
    message = re.search(r'role="alert">([^<]+)<', wrong.text)
    assert message is not None
    assert message.group(1) in unknown.text
    assert "wk_session" not in api.client.cookies


def test_login_without_its_csrf_token_is_refused(api: Api, member: ConsoleUser) -> None:
    api.client.cookies.clear()
    response = api.client.post("/login", data={"email": member.email, "password": PASSWORD})
    assert response.status_code == 403
    assert "wk_session" not in response.headers.get("set-cookie", "")


def test_posts_need_the_csrf_token_and_this_origin(api: Api, member: ConsoleUser) -> None:
    no_token = member.use(api.client).post("/logout", follow_redirects=False)
    assert no_token.status_code == 403
    cross = member.use(api.client).post(
        "/logout",
        data={"csrf_token": member.csrf},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert cross.status_code == 403
    assert member.get(api.client, "/account").status_code == 200  # still logged in
    out = member.post(api.client, "/logout")
    assert out.status_code == 303
    assert member.get(api.client, "/account").status_code == 303  # the session is gone


def test_logout_everywhere_ends_every_session(api: Api, member: ConsoleUser) -> None:
    api.client.cookies.clear()
    token = _login_form(api.client)
    api.client.post("/login", data={"csrf_token": token, "email": member.email, "password": PASSWORD})
    assert api.client.get("/account", follow_redirects=False).status_code == 200
    assert member.post(api.client, "/logout-everywhere").status_code == 303
    api.client.cookies.clear()
    assert member.get(api.client, "/account").status_code == 303
    assert api.client.get("/account", follow_redirects=False).status_code == 303


def test_another_projects_pages_are_not_found(api: Api, member: ConsoleUser) -> None:
    other = project_of(api.database_url, api.key_for("admin"))
    response = member.get(api.client, f"/p/{other}/")
    assert response.status_code == 404
    assert other not in response.text.split("</title>")[1]  # the body does not confirm it exists
    assert member.get(api.client, "/p/no-such-project/").status_code == 404


def test_pages_carry_the_security_headers(api: Api, member: ConsoleUser) -> None:
    response = member.get(api.client, f"/p/{member.project}/")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    assert member.csrf in response.text  # the meta tag htmx reads
    assert re.search(r"<script>[^<]", response.text) is None  # no inline script
    assert ' style="' not in response.text


def test_home_opens_the_first_project(api: Api, member: ConsoleUser) -> None:
    response = member.get(api.client, "/")
    assert response.status_code == 303
    assert response.headers["location"] == f"/p/{member.project}/"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/p/x/traces?q=1", "/p/x/traces?q=1"),
        ("//evil.com", "/"),
        ("https://evil.com", "/"),
        ("/\\evil", "/"),
    ],
)
def test_next_never_leaves_the_server(target: str, expected: str) -> None:
    assert safe_next(target) == expected


def test_a_bad_query_value_on_a_page_is_an_error_page(api: Api, member: ConsoleUser) -> None:
    response = member.get(api.client, f"/p/{member.project}/traces?limit=abc")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "limit" in response.text
    api_error = api.client.get("/api/v1/traces?limit=abc", headers=api.auth)
    assert api_error.status_code == 422
    assert api_error.headers["content-type"].startswith("application/json")
