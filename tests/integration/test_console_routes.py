"""The console's gateway route pages: the route table with weights and breakers, edits made
with the routes API's validation and operator policy, and who may do what (both databases)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from tests.support.apps import Api
from tests.support.console import ConsoleUser, console_user, project_of
from tests.support.people import people_on
from watchkeep.app import create_app
from watchkeep.config import Settings
from watchkeep.store.projects import ProjectRepository

SCRIPT = "<script>alert(1)</script>"
EXAMPLE = "https://llm.example.com"
FILE = {
    "routes": [
        {
            "name": "shared-chat",
            "deployments": [{"name": "main", "backend": "mock", "mock": {"reply": "shared"}}],
        },
        {
            "name": "flaky",
            "deployments": [{"name": "broken", "backend": "mock", "mock": {"fault": "status"}}],
            "retry": {"attempts": 0},
            "breaker": {"failure_threshold": 1, "reset_timeout_s": 3600},
        },
    ],
    "allowed_upstream_origins": [EXAMPLE],
}
CANARY = {
    "deployments": [
        {"name": "stable", "backend": "mock", "weight": 3, "mock": {"reply": "stable"}},
        {"name": "canary", "backend": "mock", "weight": 1, "mock": {"reply": "canary"}},
    ],
    "fallbacks": [{"name": "spare", "backend": "mock", "mock": {"reply": "spare"}}],
}


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """The usual test settings with a gateway file of shared routes."""
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(FILE), "utf-8")
    return Settings(
        home=tmp_path,
        database_url=database_url,
        ingest_decode_workers=0,
        log_format="text",
        key_cache_seconds=0,
        gateway_config=path,
    )


def admin_key(api: Api) -> dict[str, str]:
    key = api.key_for("admin", project_of(api.database_url, api.key))
    return {"Authorization": f"Bearer {key}"}


def put(api: Api, name: str, body: dict[str, Any]) -> Any:
    return api.client.put(f"/api/v1/routes/{name}", json=body, headers=admin_key(api))


def route(api: Api, name: str) -> Any:
    return api.client.get(f"/api/v1/routes/{name}", headers=api.auth)


def answer(api: Api, model: str) -> Any:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    return api.client.post("/v1/chat/completions", json=body, headers=api.auth)


def user_of(api: Api, role: str) -> ConsoleUser:
    return console_user(api.database_url, project_of(api.database_url, api.key), role=role)


def section(page: str, name: str) -> str:
    """The list's card of route ``name``."""
    found = re.search(rf'<section class="wk-card" id="route-{re.escape(name)}".*?</section>', page, re.S)
    assert found, f"no route {name} on the page"
    return found.group(0)


def row(card: str, deployment: str) -> str:
    found = re.search(rf'<tr data-deployment="{re.escape(deployment)}">.*?</tr>', card, re.S)
    assert found, f"no deployment {deployment}"
    return found.group(0)


def field_error(page: str, name: str) -> str:
    found = re.search(rf'<div class="wk-error" id="e-{re.escape(name)}">([^<]*)</div>', page)
    assert found, f"no error shown for {name}"
    return html.unescape(found.group(1))


def summary(page: str) -> str:
    found = re.search(r'<div class="wk-form-errors" role="alert">(.*?)</div>', page, re.S)
    assert found, "no error summary"
    return html.unescape(found.group(1))


def verbs(api: Api, user: ConsoleUser) -> list[str]:
    """The verbs of the project's route activity by ``user``, oldest first."""
    project_id = ProjectRepository(api.app.state.services.engine).get_or_create(user.project).id
    page = api.app.state.services.activity.list(project_id, actor_user_id=user.user_id)
    return [e.verb for e in reversed(page.items) if e.target_kind == "route"]


def test_list_shows_scope_weights_fallbacks_and_breakers(api: Api) -> None:
    assert put(api, "canary-chat", CANARY).status_code == 200
    assert put(api, "shared-chat", {"deployments": [{"name": "mine", "backend": "mock"}]}).status_code == 200
    assert answer(api, "flaky").status_code >= 500  # the real path: one failure opens its breaker
    assert route(api, "flaky").json()["breakers"] == {"broken": "open"}

    user = user_of(api, "viewer")
    page = user.get(api.client, f"/p/{user.project}/routes")
    assert page.status_code == 200, page.text
    text = page.text
    canary = section(text, "canary-chat")
    assert "project" in canary
    assert "replaces shared" not in canary
    assert "75.0%" in row(canary, "stable")
    assert "25.0%" in row(canary, "canary")
    assert "fallback" in row(canary, "spare")
    assert "closed" in row(canary, "stable")
    flaky = section(text, "flaky")
    assert "shared (gateway file)" in flaky
    assert 'wk-badge-crit">open' in row(flaky, "broken")
    assert "breaker opens after 1 failures" in flaky
    assert "Retries: 0" in flaky
    assert "replaces shared" in section(text, "shared-chat")
    assert re.search(r'data-nav-key="r"\s+class="is-active" aria-current="page">Routes', text)
    # A viewer sees no edit controls.
    assert "New route" not in text
    assert "/edit" not in text
    assert "/delete" not in text


def test_admin_edits_weights_and_the_gateway_serves_them(api: Api) -> None:
    assert put(api, "canary-chat", CANARY).status_code == 200
    admin = user_of(api, "admin")
    base = f"/p/{admin.project}/routes"
    listing = admin.get(api.client, base).text
    assert "New route" in listing
    assert f"{base}/canary-chat/edit" in listing
    form = admin.get(api.client, f"{base}/canary-chat/edit")
    assert form.status_code == 200
    assert 'name="weight:canary"' in form.text

    saved = admin.post(
        api.client, f"{base}/canary-chat/edit", {"mode": "fields", "weight:stable": "0", "weight:canary": "1"}
    )
    assert saved.status_code == 303, saved.text
    weights = {d["name"]: d["weight"] for d in route(api, "canary-chat").json()["deployments"]}
    assert weights == {"stable": 0.0, "canary": 1.0}
    assert {answer(api, "canary-chat").json()["choices"][0]["message"]["content"] for _ in range(5)} == {
        "canary"
    }

    # The whole route as YAML: a new reply reaches the gateway the same way.
    body = {"deployments": [{"name": "only", "backend": "mock", "mock": {"reply": "from yaml"}}]}
    saved = admin.post(api.client, f"{base}/canary-chat/edit", {"mode": "yaml", "spec": yaml.safe_dump(body)})
    assert saved.status_code == 303, saved.text
    assert answer(api, "canary-chat").json()["choices"][0]["message"]["content"] == "from yaml"

    # A shared route edited here becomes the project's own; deleting it restores the shared one.
    saved = admin.post(api.client, f"{base}/shared-chat/edit", {"mode": "fields", "model:main": "tuned"})
    assert saved.status_code == 303, saved.text
    assert route(api, "shared-chat").json()["scope"] == "project"
    assert route(api, "shared-chat").json()["deployments"][0]["model"] == "tuned"
    assert admin.post(api.client, f"{base}/shared-chat/delete").status_code == 303
    assert route(api, "shared-chat").json()["scope"] == "shared"
    assert admin.post(api.client, f"{base}/shared-chat/delete").status_code == 404  # nothing of its own

    created = admin.post(api.client, f"{base}/new", {"name": "fresh", "spec": yaml.safe_dump(CANARY)})
    assert created.status_code == 303, created.text
    assert route(api, "fresh").json()["scope"] == "project"
    again = admin.post(api.client, f"{base}/new", {"name": "fresh", "spec": yaml.safe_dump(CANARY)})
    assert again.status_code == 400
    assert "already has a route of this name" in again.text
    assert verbs(api, admin) == ["edited", "edited", "edited", "deleted", "created"]


@pytest.mark.parametrize("role", ["viewer", "member"])
def test_without_routes_write_no_controls_and_posts_are_refused(api: Api, role: str) -> None:
    assert put(api, "canary-chat", CANARY).status_code == 200
    user = user_of(api, role)
    base = f"/p/{user.project}/routes"
    assert user.get(api.client, base).status_code == 200
    assert "/edit" not in user.get(api.client, base).text
    assert user.get(api.client, f"{base}/canary-chat/edit").status_code == 403
    assert user.get(api.client, f"{base}/new").status_code == 403
    posts = [
        (f"{base}/canary-chat/edit", {"mode": "fields", "weight:canary": "100"}),
        (f"{base}/new", {"name": "sneaky", "spec": yaml.safe_dump(CANARY)}),
        (f"{base}/canary-chat/delete", {}),
    ]
    for path, data in posts:
        assert user.post(api.client, path, data).status_code == 403
    weights = {d["name"]: d["weight"] for d in route(api, "canary-chat").json()["deployments"]}
    assert weights == {"stable": 3.0, "canary": 1.0}
    assert route(api, "sneaky").status_code == 404


@pytest.mark.parametrize("url", ["http://169.254.169.254/v1", "http://10.0.0.1/v1"])
def test_an_internal_upstream_is_refused_as_the_api_refuses_it(api: Api, url: str) -> None:
    body = {"deployments": [{"name": "up", "backend": "openai_compatible", "base_url": url}]}
    refused = put(api, "internal", body)
    assert refused.status_code == 422
    message = refused.json()["error"]["message"]
    assert "egress policy" in message

    admin = user_of(api, "admin")
    base = f"/p/{admin.project}/routes"
    page = admin.post(api.client, f"{base}/new", {"name": "internal", "spec": yaml.safe_dump(body)})
    assert page.status_code == 400
    assert html.escape(message) in page.text
    assert route(api, "internal").status_code == 404

    # The same through the common fields of a route whose upstream the operator allows.
    allowed = {"deployments": [{"name": "up", "backend": "openai_compatible", "base_url": f"{EXAMPLE}/v1"}]}
    assert put(api, "external", allowed).status_code == 200
    page = admin.post(api.client, f"{base}/external/edit", {"mode": "fields", "base_url:up": url})
    assert page.status_code == 400
    assert html.escape(message) in page.text
    assert route(api, "external").json()["deployments"][0]["base_url"] == f"{EXAMPLE}/v1"


def test_invalid_input_shows_errors_and_stores_nothing(api: Api) -> None:
    assert put(api, "canary-chat", CANARY).status_code == 200
    admin = user_of(api, "admin")
    edit = f"/p/{admin.project}/routes/canary-chat/edit"
    cases = [
        ({"mode": "fields", "weight:canary": "-1"}, "weight:canary", "greater than or equal to 0"),
        ({"mode": "fields", "weight:canary": "lots"}, "weight:canary", "valid number"),
        ({"mode": "fields", "weight:canary": "0", "weight:stable": "0"}, None, "must not all be 0"),
        ({"mode": "yaml", "spec": "deployments: [oops"}, "spec", "not valid YAML"),
        ({"mode": "yaml", "spec": "a: &x [1]\nb: *x"}, "spec", "anchors and aliases"),
        ({"mode": "yaml", "spec": "x" * 64_001}, "spec", "at most 64,000 characters"),
        ({"mode": "yaml", "spec": "- 1"}, "spec", "must be a mapping"),
        ({"mode": "yaml", "spec": yaml.safe_dump({**CANARY, "name": "other"})}, "spec", "names the route"),
        ({"mode": "yaml", "spec": yaml.safe_dump({"deployments": []})}, None, "spec (deployments): "),
    ]
    for data, field, message in cases:
        page = admin.post(api.client, edit, data)
        assert page.status_code == 400, (data, page.status_code)
        shown = field_error(page.text, field) if field else summary(page.text)
        assert message in shown, (data, shown)
    bad_name = admin.post(api.client, f"/p/{admin.project}/routes/new", {"name": "no spaces", "spec": "{}"})
    assert bad_name.status_code == 400
    assert "should match pattern" in field_error(bad_name.text, "name")
    weights = {d["name"]: d["weight"] for d in route(api, "canary-chat").json()["deployments"]}
    assert weights == {"stable": 3.0, "canary": 1.0}
    assert verbs(api, admin) == []


def test_another_organisations_user_gets_404(api: Api) -> None:
    assert put(api, "canary-chat", CANARY).status_code == 200
    ours = project_of(api.database_url, api.key)
    with people_on(api.database_url) as people:
        theirs = people.project(people.organisation()).name
    stranger = console_user(api.database_url, theirs, role="admin")
    assert stranger.get(api.client, f"/p/{ours}/routes").status_code == 404
    assert stranger.get(api.client, f"/p/{ours}/routes/canary-chat/edit").status_code == 404
    assert stranger.post(api.client, f"/p/{ours}/routes/canary-chat/delete").status_code == 404
    # In their own project our route does not exist, and nothing of ours changes.
    assert stranger.get(api.client, f"/p/{theirs}/routes/canary-chat/edit").status_code == 404
    edit = {"mode": "fields", "weight:canary": "9"}
    assert stranger.post(api.client, f"/p/{theirs}/routes/canary-chat/edit", edit).status_code == 404
    assert stranger.post(api.client, f"/p/{theirs}/routes/canary-chat/delete").status_code == 404
    assert "canary-chat" not in stranger.get(api.client, f"/p/{theirs}/routes").text
    assert route(api, "canary-chat").json()["deployments"][1]["weight"] == 1.0


def test_user_text_is_escaped(api: Api) -> None:
    body = {"deployments": [{"name": "d", "backend": "mock", "model": SCRIPT}]}
    assert put(api, "escaped", body).status_code == 200
    admin = user_of(api, "admin")
    for path in ("routes", "routes/escaped/edit"):
        page = admin.get(api.client, f"/p/{admin.project}/{path}").text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert "<script>alert" not in page


@pytest.fixture
def without_gateway(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings.model_copy(update={"gateway_enabled": False}))
    with TestClient(app, client=("127.0.0.1", 50000)) as client:
        yield client


def test_a_server_without_the_gateway_says_so(api: Api, without_gateway: TestClient) -> None:
    admin = user_of(api, "admin")
    page = admin.get(without_gateway, f"/p/{admin.project}/routes")
    assert page.status_code == 200
    assert "gateway is not enabled" in page.text
    assert admin.get(without_gateway, f"/p/{admin.project}/routes/new").status_code == 404
