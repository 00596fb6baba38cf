"""The registry's REST API on both databases: registration and dedupe, reads, the SDK's
prompt fetch, diffs, alias moves and rollbacks with their history and activity entries,
bounds, permissions (an ingest key fetches but cannot register) and project isolation."""

from __future__ import annotations

from typing import Any

from tests.support.apps import Api
from tests.support.console import project_of

from watchkeep.api.registry_schemas import MAX_JSON_BYTES
from watchkeep.registry.prompts import MAX_TEMPLATE_CHARS

MODEL = {
    "backend": "openai",
    "params": {"model": "gpt-4o-mini", "temperature": 0.2},
    "metadata": {"team": "qa"},
}


def call(api: Api, method: str, url: str, key: str | None = None, **kwargs: Any) -> Any:
    headers = {"Authorization": f"Bearer {key or api.key}"}
    return api.client.request(method, f"/api/v1{url}", headers=headers, **kwargs)


def register_prompt(api: Api, name: str, template: Any, **extra: Any) -> Any:
    response = call(api, "POST", f"/prompts/{name}/versions", json={"template": template, **extra})
    assert response.status_code in (200, 201), response.text
    return response.json()


def move(api: Api, kind: str, name: str, alias: str, version: int | None, reason: str | None = None) -> Any:
    return call(api, "PUT", f"/{kind}/{name}/aliases/{alias}", json={"version": version, "reason": reason})


def test_model_registration_numbers_versions_and_deduplicates_identical_content(api: Api) -> None:
    first = call(api, "POST", "/models/clf/versions", json=MODEL)
    assert first.status_code == 201, first.text
    v1 = first.json()
    assert (v1["name"], v1["version"], v1["created"], v1["backend"]) == ("clf", 1, True, "openai")
    assert v1["params"] == MODEL["params"]
    assert v1["metadata"] == {"team": "qa"}

    # Metadata does not define a version: the same backend and params is the same version.
    again = call(api, "POST", "/models/clf/versions", json={**MODEL, "metadata": {"team": "other"}})
    assert again.status_code == 200
    assert (again.json()["version"], again.json()["created"]) == (1, False)

    changed = {**MODEL, "params": {"model": "gpt-4o"}, "parent": 1, "eval_runs": [7]}
    second = call(api, "POST", "/models/clf/versions", json=changed)
    assert second.status_code == 201
    assert (second.json()["version"], second.json()["parent"], second.json()["eval_runs"]) == (2, 1, [7])

    listed = call(api, "GET", "/models").json()["items"]
    assert [(n["name"], n["versions"], n["latest"]) for n in listed] == [("clf", 2, 2)]
    detail = call(api, "GET", "/models/clf").json()
    assert [v["version"] for v in detail["versions"]] == [2, 1]
    assert detail["aliases"] == {}
    one = call(api, "GET", "/models/clf/versions/1")
    assert one.status_code == 200
    assert one.json()["params"] == MODEL["params"]
    assert call(api, "GET", "/models/clf/versions/3").status_code == 404
    assert call(api, "GET", "/models/nope").status_code == 404


def test_bad_and_oversized_registrations_are_clear_422s(api: Api) -> None:
    huge = {"backend": "openai", "params": {"blob": "x" * (MAX_JSON_BYTES + 1)}}
    too_big = call(api, "POST", "/models/m/versions", json=huge)
    assert too_big.status_code == 422
    assert "params" in too_big.text
    assert call(api, "POST", "/models/m/versions", json={"params": {}}).status_code == 422  # no backend
    assert (
        call(api, "POST", "/models/m/versions", json={"backend": "x", "params": {"n": 2**70}}).status_code
        == 422
    )
    for runs in ([2**70], [0], [-3]):  # run ids are positive and fit the store (a 500 before)
        bad_runs = call(api, "POST", "/models/m/versions", json={"backend": "x", "eval_runs": runs})
        assert bad_runs.status_code == 422, runs
    long_template = call(
        api, "POST", "/prompts/p/versions", json={"template": "x" * (MAX_TEMPLATE_CHARS + 1)}
    )
    assert long_template.status_code == 422
    assert str(MAX_TEMPLATE_CHARS) in long_template.text
    nul = call(api, "POST", "/prompts/p/versions", json={"template": "a", "model_settings": {"stop": "\x00"}})
    assert nul.status_code == 422
    assert "NUL" in nul.text
    broken = call(api, "POST", "/prompts/p/versions", json={"template": "Hello {{ name "})
    assert broken.status_code == 422
    assert call(api, "POST", "/prompts/p/versions", json={"template": "hi", "parent": 5}).status_code == 422
    assert call(api, "GET", "/prompts").json()["items"] == []  # nothing was stored


def test_prompt_versions_the_sdk_fetch_and_the_diff(api: Api) -> None:
    v1 = register_prompt(api, "greet", "Hello {{ name }}!", message="first")
    assert (v1["version"], v1["variables"], v1["created"]) == (1, ["name"], True)
    chat = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi {{ name }} from {{ city }}"},
    ]
    v2 = register_prompt(api, "greet", chat, model_settings={"temperature": 0.1})
    assert v2["version"] == 2
    assert v2["template"] == chat
    assert sorted(v2["variables"]) == ["city", "name"]
    assert register_prompt(api, "greet", "Hello {{ name }}!")["created"] is False

    assert move(api, "prompts", "greet", "production", 1, "first release").status_code == 200
    by_label = call(api, "GET", "/prompts/greet", params={"label": "production"}).json()
    assert by_label == {
        "name": "greet",
        "version": 1,
        "label": "production",
        "template": "Hello {{ name }}!",
        "variables": ["name"],
        "model_settings": {},
    }
    pinned = call(api, "GET", "/prompts/greet", params={"version": 2}).json()
    assert (pinned["version"], pinned["label"], pinned["model_settings"]) == (2, None, {"temperature": 0.1})
    assert call(api, "GET", "/prompts/greet", params={"label": "staging"}).status_code == 404
    assert call(api, "GET", "/prompts/greet", params={"version": 9}).status_code == 404
    assert call(api, "GET", "/prompts/greet", params={"label": "production", "version": 1}).status_code == 422

    summary = call(api, "GET", "/prompts/greet").json()
    assert summary["aliases"] == {"production": 1}
    assert [v["version"] for v in summary["versions"]] == [2, 1]
    assert call(api, "GET", "/prompts/greet/versions/2").json()["template"] == chat

    diff = call(api, "GET", "/prompts/greet/diff", params={"from": "production", "to": 2}).json()
    assert (diff["from_version"], diff["to_version"], diff["changed"]) == (1, 2, True)
    assert diff["variables_added"] == ["city"]
    assert diff["variables_removed"] == []
    assert diff["settings"] == [{"key": "temperature", "change": "added", "old": None, "new": 0.1}]
    assert "-Hello {{ name }}!" in diff["text"]
    assert "+Be brief." in diff["text"]
    same = call(api, "GET", "/prompts/greet/diff", params={"from": 1, "to": 1}).json()
    assert same["changed"] is False
    assert call(api, "GET", "/prompts/greet/diff", params={"from": 1, "to": 8}).status_code == 404


def test_alias_moves_and_rollbacks_are_events_with_history_and_activity(api: Api) -> None:
    for params in ({"model": "a"}, {"model": "b"}, {"model": "c"}):
        assert call(
            api, "POST", "/models/clf/versions", json={"backend": "openai", "params": params}
        ).is_success
    assert move(api, "models", "clf", "production", 1, "launch").json()["kind"] == "move"
    assert move(api, "models", "clf", "production", 2).status_code == 200
    assert move(api, "models", "clf", "production", 3, "better").status_code == 200
    assert move(api, "models", "clf", "production", 3).status_code == 409  # no change
    assert move(api, "models", "clf", "production", 9).status_code == 404  # unknown version
    assert call(api, "GET", "/models/clf/aliases").json() == {"name": "clf", "aliases": {"production": 3}}

    back = call(api, "POST", "/models/clf/aliases/production/rollback", json={"reason": "errors up"})
    assert back.status_code == 200, back.text
    assert (back.json()["kind"], back.json()["from_version"], back.json()["to_version"]) == ("rollback", 3, 2)
    assert call(api, "POST", "/models/clf/aliases/production/rollback", json={}).json()["to_version"] == 1
    assert call(api, "POST", "/models/clf/aliases/production/rollback", json={}).status_code == 409

    history = call(api, "GET", "/models/clf/aliases/production/history").json()["items"]
    steps = [(e["seq"], e["kind"], e["from_version"], e["to_version"], e["reason"]) for e in history]
    assert steps == [
        (1, "move", None, 1, "launch"),
        (2, "move", 1, 2, None),
        (3, "move", 2, 3, "better"),
        (4, "rollback", 3, 2, "errors up"),
        (5, "rollback", 2, 1, None),
    ]
    assert all(e["actor"].startswith("key:") for e in history)

    removed = move(api, "models", "clf", "production", None, "retire")
    assert (removed.status_code, removed.json()["kind"], removed.json()["to_version"]) == (
        200,
        "remove",
        None,
    )
    assert call(api, "GET", "/models/clf/aliases").json()["aliases"] == {}

    feed = call(api, "GET", "/activity").json()["items"]
    summaries = [item["summary"] for item in feed]
    assert any("registered model clf@3" in s for s in summaries)
    assert any(s.startswith("rolled back model clf@production from 3 to 2: errors up") for s in summaries)
    assert any(s.startswith("moved model clf@production from 2 to 3: better") for s in summaries)


def test_unknown_names_and_aliases_are_404s(api: Api) -> None:
    assert call(api, "GET", "/prompts/ghost/aliases").status_code == 404
    assert call(api, "GET", "/models/ghost/aliases/production/history").status_code == 404
    assert move(api, "prompts", "ghost", "production", 1).status_code == 404
    assert call(api, "POST", "/prompts/ghost/aliases/production/rollback", json={}).status_code == 404
    assert call(api, "GET", "/prompts/ghost", params={"label": "production"}).status_code == 404
    bad_name = call(api, "POST", "/models/bad..name/versions", json=MODEL)
    assert bad_name.status_code == 422
    assert ".." in bad_name.text


def test_an_ingest_key_fetches_by_label_but_cannot_register_or_browse(api: Api) -> None:
    register_prompt(api, "greet", "Hello {{ name }}")
    move(api, "prompts", "greet", "production", 1)
    ingest = api.key_for("ingest", project_of(api.database_url, api.key))
    fetched = call(api, "GET", "/prompts/greet", ingest, params={"label": "production"})
    assert fetched.status_code == 200
    assert fetched.json()["version"] == 1
    assert call(api, "GET", "/prompts/greet", ingest).status_code == 403  # the summary is REGISTRY_READ
    assert call(api, "POST", "/prompts/greet/versions", ingest, json={"template": "x"}).status_code == 403
    assert move(api, "prompts", "greet", "production", None).status_code == 200  # the member may
    viewer = api.key_for("viewer", project_of(api.database_url, api.key))
    assert call(api, "GET", "/prompts/greet/aliases/production/history", viewer).status_code == 200
    assert call(api, "POST", "/prompts/greet/aliases/production/rollback", viewer, json={}).status_code == 403


def test_another_projects_names_are_invisible(api: Api) -> None:
    register_prompt(api, "greet", "Hello {{ name }}")
    move(api, "prompts", "greet", "production", 1)
    assert call(api, "POST", "/models/clf/versions", json=MODEL).status_code == 201
    other = api.key_for("member")
    assert call(api, "GET", "/prompts", other).json()["items"] == []
    assert call(api, "GET", "/models", other).json()["items"] == []
    assert call(api, "GET", "/prompts/greet", other, params={"label": "production"}).status_code == 404
    assert call(api, "GET", "/models/clf/versions/1", other).status_code == 404
    assert call(api, "GET", "/prompts/greet/aliases", other).status_code == 404
    assert call(api, "POST", "/prompts/greet/aliases/production/rollback", other, json={}).status_code == 404
    # The same name in the other project is its own: numbered from 1, no aliases.
    mine = call(api, "POST", "/prompts/greet/versions", other, json={"template": "Other {{ x }}"})
    assert (mine.status_code, mine.json()["version"]) == (201, 1)
    assert (
        call(api, "GET", "/prompts/greet", params={"label": "production"}).json()["template"]
        == "Hello {{ name }}"
    )
