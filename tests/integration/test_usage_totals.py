"""Per-user and per-session totals through ``/api/v1/users`` and ``/api/v1/sessions``."""

from __future__ import annotations

from typing import Any

from tests.support.apps import Api
from tests.support.keys import new_key
from tests.support.otlp_json import T0, attr, two_span_trace
from tests.support.otlp_post import post_spans as post
from tests.support.tenant import unique

LLM = [
    attr("gen_ai.operation.name", "chat"),
    attr("gen_ai.request.model", "m"),
    attr("gen_ai.usage.input_tokens", 10),
    attr("gen_ai.usage.output_tokens", 5),
]


def seed(api: Api, key: str) -> None:
    # alice: traces 1 and 2 (the user rides on the root only; the child is an LLM call)
    post(
        api.client,
        key,
        two_span_trace(1, [attr("watchkeep.user.id", "alice"), attr("watchkeep.session.id", "s1")], LLM),
    )
    post(
        api.client,
        key,
        two_span_trace(
            2,
            [attr("watchkeep.user.id", "alice"), attr("watchkeep.environment", "prod")],
            LLM,
            child_error=True,
        ),
    )
    post(
        api.client,
        key,
        two_span_trace(3, [attr("watchkeep.user.id", "bob"), attr("watchkeep.session.id", "s1")], LLM),
    )


def get(api: Api, path: str, key: str | None = None, status: int = 200, **params: Any) -> Any:
    headers = {"Authorization": f"Bearer {key or api.key}"}
    response = api.client.get(path, params=params, headers=headers)
    assert response.status_code == status, response.text
    return response.json()


def test_user_totals_count_spans_that_inherit_the_user(api: Api) -> None:
    seed(api, api.key)
    page = get(api, "/api/v1/users", sort="traces")
    assert [u["id"] for u in page["items"]] == ["alice", "bob"]
    alice = page["items"][0]
    assert (alice["traces"], alice["spans"], alice["calls"], alice["errors"]) == (2, 4, 2, 1)
    assert (alice["input_tokens"], alice["output_tokens"]) == (20, 10)
    assert alice["first_seen_unix_nano"] == T0 + 1_000_000_000
    assert get(api, "/api/v1/users/alice") == alice
    assert get(api, "/api/v1/users/alice", environment="prod")["traces"] == 1
    get(api, "/api/v1/users/carol", status=404)


def test_session_totals_sort_and_pages(api: Api) -> None:
    seed(api, api.key)
    s1 = get(api, "/api/v1/sessions/s1")
    assert (s1["traces"], s1["calls"], s1["errors"]) == (2, 2, 0)
    first = get(api, "/api/v1/users", sort="errors", limit=1)
    assert [u["id"] for u in first["items"]] == ["alice"]
    assert first["next_offset"] == 1
    second = get(api, "/api/v1/users", sort="errors", limit=1, offset=1)
    assert [u["id"] for u in second["items"]] == ["bob"]
    assert second["next_offset"] is None
    assert [u["id"] for u in get(api, "/api/v1/users", sort="errors", order="asc")["items"]] == [
        "bob",
        "alice",
    ]
    late = get(api, "/api/v1/users", start_from="2023-11-14T22:13:23Z")  # T0 + 3 s: trace 3 only
    assert [u["id"] for u in late["items"]] == ["bob"]
    get(api, "/api/v1/users", status=422, offset=10_001)


def test_totals_stay_in_the_project(api: Api, database_url: str) -> None:
    seed(api, api.key)
    other = new_key(database_url, project=unique("usage-b"))
    assert get(api, "/api/v1/users", key=other)["items"] == []
    get(api, "/api/v1/users/alice", key=other, status=404)
    get(api, "/api/v1/sessions/s1", key=other, status=404)
