"""Authorisation of every console page: who gets what, for each route the console serves.

The REST matrix (test_authorization_matrix.py) covers key-authenticated routes; console
pages answer people with sessions. For every console route this checks, with placeholder
path values (the refusals come before any look-up):
- without a session: a GET is sent to the login page, a POST is refused (303 to login or
  403 for the missing CSRF token) — except the pages meant for strangers (``PUBLIC``);
- a user of another organisation gets 404 for every project page, GET or POST, as if the
  project did not exist;
- a viewer gets 403 for every POST inside a project except those any member may make
  (``ANY_MEMBER_MAY_POST``).
A new console route is checked without being listed, so none can slip through unguarded.
"""

from __future__ import annotations

import re

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from tests.support.apps import Api
from tests.support.console import console_user, project_of

# Pages for people not logged in (yet): the login form and invitation acceptance.
PUBLIC = {("GET", "/login"), ("POST", "/login"), ("GET", "/invite/{token}"), ("POST", "/invite/{token}")}
# Single sign-on's start and return (they answer with the login page when SSO is off).
PUBLIC |= {("GET", "/auth/oidc/login"), ("GET", "/auth/oidc/callback")}
# Posts inside a project that a viewer may make (they change only the viewer's own state).
ANY_MEMBER_MAY_POST: set[str] = {"/p/{project}/activity/mentions/read"}
PLACEHOLDERS = {"trace_id": "0" * 32, "token": "x" * 43, "name": "nope"}


def console_routes(api: Api) -> list[tuple[str, str]]:
    found = []
    for ctx in iter_route_contexts(api.app.routes):
        endpoint = getattr(ctx.original_route, "endpoint", None)
        if not str(getattr(endpoint, "__module__", "")).startswith("watchkeep.ui.pages."):
            continue
        for method in sorted(ctx.methods or ()):
            if method != "HEAD":
                found.append((method, str(ctx.path)))
    return found


def fill(path: str, project: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        return project if name == "project" else PLACEHOLDERS.get(name, "1")

    return re.sub(r"\{([a-z_]+)(?::[a-z]+)?\}", value, path)


@pytest.fixture
def routes(api: Api) -> list[tuple[str, str]]:
    found = console_routes(api)
    assert ("GET", "/p/{project}/") in found  # the walk sees the pages
    return found


def test_without_a_session_every_page_sends_to_login(api: Api, routes: list[tuple[str, str]]) -> None:
    project = project_of(api.database_url, api.key)
    client = TestClient(api.app)
    wrong = []
    for method, path in routes:
        if (method, path) in PUBLIC:
            continue
        response = client.request(method, fill(path, project), follow_redirects=False)
        if method == "GET":
            ok = response.status_code == 303 and response.headers["location"].startswith("/login")
        else:
            ok = response.status_code in (303, 403) and response.headers.get("location", "/login").startswith(
                "/login"
            )
        if not ok:
            wrong.append(f"{method} {path}: {response.status_code}")
    assert not wrong


def test_another_organisations_user_finds_no_project(api: Api, routes: list[tuple[str, str]]) -> None:
    project = project_of(api.database_url, api.key)
    outsider = console_user(api.database_url, project_of(api.database_url, api.key_for("admin")), "owner")
    wrong = []
    for method, path in routes:
        if not path.startswith("/p/{project}"):
            continue
        target = fill(path, project)
        response = outsider.get(api.client, target) if method == "GET" else outsider.post(api.client, target)
        if response.status_code != 404:
            wrong.append(f"{method} {path}: {response.status_code}")
    assert not wrong


def test_a_viewer_cannot_post_inside_a_project(api: Api, routes: list[tuple[str, str]]) -> None:
    viewer = console_user(api.database_url, project_of(api.database_url, api.key), "viewer")
    wrong = []
    for method, path in routes:
        if method == "GET" or not path.startswith("/p/{project}") or path in ANY_MEMBER_MAY_POST:
            continue
        response = viewer.post(api.client, fill(path, viewer.project))
        if response.status_code != 403:
            wrong.append(f"{method} {path}: {response.status_code}")
    assert not wrong
