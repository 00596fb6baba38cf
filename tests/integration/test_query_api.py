"""The query API: filters, keyset pagination, project isolation, trace detail, scores."""

from __future__ import annotations

import json

import pytest

from tests.support.apps import Api
from tests.support.otlp_json import attr, two_span_trace


def trace_spans(
    n: int, *, model: str, user: str, error: bool = False, env: str = "prod"
) -> list[dict[str, object]]:
    return two_span_trace(
        n,
        [attr("watchkeep.user.id", user), attr("watchkeep.environment", env)],
        [
            attr("gen_ai.operation.name", "chat"),
            attr("gen_ai.provider.name", "openai"),
            attr("gen_ai.request.model", model),
            attr("gen_ai.usage.input_tokens", 10 * n),
            attr("gen_ai.usage.output_tokens", n),
        ],
        child_error=error,
    )


@pytest.fixture
def loaded(api: Api) -> Api:
    """Twelve traces: models alternate, users cycle, every fifth fails."""
    spans = []
    for n in range(1, 13):
        model = "gpt-4o" if n % 2 else "claude-3-5-haiku"
        spans += trace_spans(
            n, model=model, user=f"u{n % 3}", error=n % 5 == 0, env="dev" if n > 10 else "prod"
        )
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]})
    response = api.client.post(
        "/v1/traces", content=body, headers={**api.auth, "Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    return api


def traces(api: Api, **params: object) -> dict[str, object]:
    response = api.client.get("/api/v1/traces", params=params, headers=api.auth)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    return dict(response.json())


def names(page: dict[str, object]) -> list[str]:
    return [t["name"] for t in page["items"]]  # type: ignore[attr-defined,index]


def test_newest_first_with_summed_counters(loaded: Api) -> None:
    page = traces(loaded)
    assert names(page) == [f"request-{n}" for n in range(12, 0, -1)]
    first = page["items"][0]  # type: ignore[index]
    assert first["span_count"] == 2
    assert first["input_tokens"] == 120
    assert first["models"] == ["claude-3-5-haiku"]
    assert first["duration_ms"] == 500.0
    assert page["next_cursor"] is None


def test_keyset_pagination_walks_every_trace_once(loaded: Api) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 5}
        if cursor:
            params["cursor"] = cursor
        page = traces(loaded, **params)
        seen += names(page)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"request-{n}" for n in range(12, 0, -1)]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"model": "gpt-4o"}, [11, 9, 7, 5, 3, 1]),
        ({"provider": "openai", "limit": 3}, [12, 11, 10]),
        ({"user_id": "u0"}, [12, 9, 6, 3]),
        ({"status": "error"}, [10, 5]),
        ({"status": "ok", "model": "gpt-4o"}, [11, 9, 7, 3, 1]),
        ({"environment": "dev"}, [12, 11]),
        ({"name": "QUEST-1"}, [12, 11, 10, 1]),
        ({"start_from": "2023-11-14T22:13:25Z", "start_to": "2023-11-14T22:13:28Z"}, [7, 6, 5]),
        ({"operation": "chat", "user_id": "u1", "status": "error"}, [10]),
        ({"name": "100%_"}, []),
    ],
)
def test_filters(loaded: Api, params: dict[str, object], expected: list[int]) -> None:
    assert names(traces(loaded, **params)) == [f"request-{n}" for n in expected]


def test_span_list_filters_and_pagination(loaded: Api) -> None:
    r = loaded.client.get("/api/v1/spans", params={"model": "gpt-4o", "limit": 4}, headers=loaded.auth).json()
    assert [s["name"] for s in r["items"]] == ["chat"] * 4
    assert {s["request_model"] for s in r["items"]} == {"gpt-4o"}
    rest = loaded.client.get(
        "/api/v1/spans", params={"model": "gpt-4o", "cursor": r["next_cursor"]}, headers=loaded.auth
    ).json()
    assert len(rest["items"]) == 2
    assert rest["next_cursor"] is None


def test_trace_detail_is_a_tree_with_scores(loaded: Api) -> None:
    trace_id = f"{3:032x}"
    score = {"name": "correct", "value": True, "trace_id": trace_id, "source": "human"}
    assert loaded.client.post("/api/v1/scores", json=score, headers=loaded.auth).status_code == 201
    detail = loaded.client.get(f"/api/v1/traces/{trace_id.upper()}", headers=loaded.auth).json()
    assert detail["span_count"] == 2
    (root,) = detail["roots"]
    assert root["name"] == "request-3"
    assert [c["name"] for c in root["children"]] == ["chat"]
    assert root["children"][0]["user_id"] == "u0"
    assert [(s["name"], s["value"], s["data_type"]) for s in detail["scores"]] == [
        ("correct", 1.0, "boolean")
    ]


def test_projects_are_isolated(loaded: Api) -> None:
    other = {"Authorization": f"Bearer {loaded.key_for()}"}
    assert loaded.client.get("/api/v1/traces", headers=other).json()["items"] == []
    assert loaded.client.get("/api/v1/spans", headers=other).json()["items"] == []
    assert loaded.client.get(f"/api/v1/traces/{3:032x}", headers=other).status_code == 404


def test_bad_parameters_are_client_errors(loaded: Api) -> None:
    for params in ({"cursor": "not-a-cursor"}, {"cursor": "WyJhIl0"}):
        r = loaded.client.get("/api/v1/traces", params=params, headers=loaded.auth)
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "invalid_cursor"
    for params in (
        {"limit": 0},
        {"status": "meh"},
        {"start_from": "2024-01-01T00:00:00"},
        {"trace_id": "xyz"},
    ):
        r = loaded.client.get("/api/v1/traces", params=params, headers=loaded.auth)
        assert r.status_code == 422, params
        assert r.json()["error"]["code"] == "invalid_request"
    assert loaded.client.get("/api/v1/traces?name=a%00b", headers=loaded.auth).status_code == 400
    assert loaded.client.get("/api/v1/traces/nothex", headers=loaded.auth).status_code == 422
    far = loaded.client.get(
        "/api/v1/traces", params={"start_from": "9999-12-31T00:00:00Z"}, headers=loaded.auth
    )
    assert far.status_code == 200
    assert far.json()["items"] == []
