"""PII protection end to end: spans, score comments and dataset items are stored redacted,
per project, and only privacy admins change what is redacted."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.apps import Api
from tests.support.keys import new_key
from tests.support.otlp_json import attr, chat_trace, two_span_trace
from tests.support.otlp_post import post_spans
from watchkeep.app import create_app
from watchkeep.config import Settings

PROMPT = "I am bob@example.com, card 4111 1111 1111 1111, ip 192.168.1.20"


def project_keys(api: Api) -> tuple[str, str, str]:
    project = f"p-{uuid.uuid4().hex[:10]}"
    return project, api.key_for("admin", project), api.key_for("member", project)


def stored_input(client: TestClient, key: str, n: int) -> str:
    response = client.get(f"/api/v1/traces/{n:032x}", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    nodes = list(response.json()["roots"])
    while nodes:
        node = nodes.pop()
        if node["name"] == "chat":
            return json.dumps(node["input"])
        nodes += node.get("children") or []
    raise AssertionError("no chat span")


def put_pii(api: Api, key: str, actions: dict[str, str]) -> Any:
    return api.client.put(
        "/api/v1/privacy/pii", json={"actions": actions}, headers={"Authorization": f"Bearer {key}"}
    )


def test_spans_are_stored_masked_by_default(api: Api) -> None:
    post_spans(api.client, api.key, chat_trace(1, PROMPT, "mail eve@example.com"))
    stored = stored_input(api.client, api.key, 1)
    assert "bob@example.com" not in stored
    assert "4111" not in stored
    assert "192.168" not in stored
    assert "[EMAIL]" in stored
    assert "[CARD]" in stored
    assert "[IP]" in stored


def test_project_actions_apply_and_stay_in_their_project(api: Api) -> None:
    _, admin, member = project_keys(api)
    assert put_pii(api, member, {"email": "keep"}).status_code == 403
    answer = put_pii(api, admin, {"email": "keep", "card": "hash"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["actions"]["email"] == "keep"
    assert answer.json()["actions"]["ip"] == "mask"
    post_spans(api.client, member, chat_trace(2, PROMPT, "ok"))
    stored = stored_input(api.client, member, 2)
    assert "bob@example.com" in stored
    assert "[CARD:" in stored
    assert "4111" not in stored
    # another project (the fixture's) is not touched by this admin's settings
    post_spans(api.client, api.key, chat_trace(3, PROMPT, "ok"))
    assert "bob@example.com" not in stored_input(api.client, api.key, 3)
    got = api.client.get("/api/v1/privacy/pii", headers={"Authorization": f"Bearer {admin}"})
    assert got.json()["actions"]["card"] == "hash"
    assert api.client.get("/api/v1/privacy/pii", headers=api.auth).status_code == 403


def test_bad_settings_are_refused_with_the_reason(api: Api) -> None:
    _, admin, _ = project_keys(api)
    answer = put_pii(api, admin, {"email": "blur"})
    assert answer.status_code == 422
    assert "blur" in answer.text
    assert put_pii(api, admin, {"names": "mask"}).status_code == 422


def test_score_comments_and_dataset_items_are_stored_redacted(api: Api) -> None:
    post_spans(api.client, api.key, chat_trace(4, "hello", "ok"))
    score = {"trace_id": f"{4:032x}", "name": "q", "value": 1.0, "comment": "call me at bob@example.com"}
    created = api.client.post("/api/v1/scores", json=score, headers=api.auth)
    assert created.status_code == 201, created.text
    assert created.json()["comment"] == "call me at [EMAIL]"
    items = {"items": [{"id": "a", "input": {"q": "ssn 123-45-6789"}, "expected": "bob@example.com"}]}
    made = api.client.post("/api/v1/datasets/d/versions", json=items, headers=api.auth)
    assert made.status_code == 201, made.text
    listed = api.client.get("/api/v1/datasets/d/versions/1/items", headers=api.auth)
    assert listed.status_code == 200, listed.text
    text = listed.text
    assert "123-45-6789" not in text
    assert "bob@example.com" not in text
    assert "[SSN]" in text


@pytest.fixture
def api_off(settings: Settings, database_url: str) -> Iterator[Api]:
    app = create_app(settings.model_copy(update={"pii_redaction": False}))
    with TestClient(app, client=("127.0.0.1", 50000)) as client:
        yield Api(app, client, new_key(database_url), database_url)


def test_switched_off_server_wide_stores_as_sent(api_off: Api) -> None:
    post_spans(api_off.client, api_off.key, chat_trace(5, PROMPT, "ok"))
    assert "bob@example.com" in stored_input(api_off.client, api_off.key, 5)


def test_status_messages_attributes_and_events_are_stored_masked(api: Api) -> None:
    """Not only payloads: an exception's text, an application's own attribute and a kept
    event hold customer data too."""
    spans = two_span_trace(7, [attr("app.note", "call carol@example.com back")], [attr("input.value", "hi")])
    child = spans[1]
    child["status"] = {"code": 2, "message": "card 4111 1111 1111 1111 was declined"}
    child["events"] = [
        {
            "timeUnixNano": child["startTimeUnixNano"],
            "name": "exception",
            "attributes": [attr("exception.message", "no account for dave@example.com")],
        }
    ]
    post_spans(api.client, api.key, spans)
    stored = json.dumps(
        api.client.get(f"/api/v1/traces/{7:032x}", headers={"Authorization": f"Bearer {api.key}"}).json()
    )
    for shown in ("call", "back", "was declined", "no account for"):  # the fields are read back
        assert shown in stored
    for plain in ("carol@example.com", "4111 1111 1111 1111", "dave@example.com"):
        assert plain not in stored
    assert "[EMAIL]" in stored
    assert "[CARD]" in stored


def test_phone_regions_add_national_numbers_and_are_validated(api: Api) -> None:
    _, admin, member = project_keys(api)
    french = "appelez le 06 12 34 56 78 demain"
    answer = api.client.put(
        "/api/v1/privacy/pii",
        json={"actions": {}, "phone_regions": ["US", "FR"]},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["phone_regions"] == ["US", "FR"]
    assert put_pii(api, admin, {"email": "keep"}).json()["phone_regions"] == ["US", "FR"]  # kept
    post_spans(api.client, member, chat_trace(5, french, "ok"))
    assert "[PHONE]" in stored_input(api.client, member, 5)
    post_spans(api.client, api.key, chat_trace(6, french, "ok"))  # the default: US only
    assert "06 12 34 56 78" in stored_input(api.client, api.key, 6)
    for bad in (["XX"], [], ["US", "US"], ["US"] * 9, [1]):
        refused = api.client.put(
            "/api/v1/privacy/pii",
            json={"actions": {}, "phone_regions": bad},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert refused.status_code == 422, (bad, refused.text)
