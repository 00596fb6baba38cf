"""Online monitors refuse judge evaluators (they would call a model per span); the API lists ours."""

from __future__ import annotations

from tests.support.apps import Api

JUDGE = {"name": "graded", "evaluator": "judge", "params": {"rubric": "Be right."}, "sample_rate": 1.0}


def test_creating_an_online_judge_is_refused_with_a_clear_error(api: Api) -> None:
    headers = api.auth
    refused = api.client.post("/api/v1/online-evaluators", json=JUDGE, headers=headers)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "invalid_params"
    assert "evaluation runs only" in refused.json()["error"]["message"]
    assert api.client.get("/api/v1/online-evaluators", headers=headers).json()["items"] == []
    cheap = {**JUDGE, "evaluator": "exact_match", "params": {"value": "yes", "case_insensitive": True}}
    assert api.client.post("/api/v1/online-evaluators", json=cheap, headers=headers).status_code == 201


def test_the_evaluator_list_describes_the_new_evaluators(api: Api) -> None:
    items = api.client.get("/api/v1/evaluators", headers=api.auth).json()["items"]
    schemas = {i["name"]: i["params_schema"] for i in items}
    for name in ("exact_match", "contains", "classification", "similarity", "embedding_similarity"):
        assert name in schemas
    assert schemas["judge"]["required"] == ["rubric"]
    assert schemas["latency"]["required"] == ["max_ms"]
    assert set(schemas["similarity"]["properties"]["method"]["enum"]) >= {"ratio", "jaro_winkler"}
