"""``tag`` and ``metadata`` filters on the trace and span lists, on both databases."""

from __future__ import annotations

from typing import Any

from tests.support.apps import Api
from tests.support.keys import new_key
from tests.support.otlp_json import attr, two_span_trace
from tests.support.otlp_post import post_spans as post
from tests.support.tenant import unique


def ids(api: Api, path: str, key: str | None = None, **params: Any) -> list[str]:
    response = api.client.get(path, params=params, headers={"Authorization": f"Bearer {key or api.key}"})
    assert response.status_code == 200, response.text
    return sorted(i.get("span_id") or i["trace_id"] for i in response.json()["items"])


def seed(api: Api, key: str) -> None:
    post(
        api.client,
        key,
        two_span_trace(
            1, [attr("watchkeep.tags", "beta,checkout")], [attr("watchkeep.metadata.customer", "acme")]
        ),
    )
    post(
        api.client,
        key,
        two_span_trace(
            2,
            [attr("watchkeep.tags", "beta")],
            [attr("watchkeep.metadata.customer", "globex"), attr("watchkeep.metadata.tier", 3)],
        ),
    )


def test_traces_have_every_tag_given(api: Api) -> None:
    seed(api, api.key)
    t1, t2 = f"{1:032x}", f"{2:032x}"
    assert ids(api, "/api/v1/traces", tag="beta") == [t1, t2]
    assert ids(api, "/api/v1/traces", tag=["beta", "checkout"]) == [t1]
    assert ids(api, "/api/v1/traces", tag=["nope"]) == []
    # the child span carries no tags of its own: it inherits its trace's
    assert ids(api, "/api/v1/spans", tag="checkout") == [f"{1:015x}1", f"{1:015x}2"]


def test_metadata_filters_match_the_value_as_text(api: Api) -> None:
    seed(api, api.key)
    assert ids(api, "/api/v1/traces", metadata="customer:acme") == [f"{1:032x}"]
    assert ids(api, "/api/v1/spans", metadata=["customer:globex", "tier:3"]) == [f"{2:015x}2"]
    assert ids(api, "/api/v1/spans", metadata=["customer:acme", "tier:3"]) == []
    assert ids(api, "/api/v1/traces", metadata="customer:") == []


def test_filters_are_bounded_and_scoped(api: Api, database_url: str) -> None:
    seed(api, api.key)
    other = new_key(database_url, project=unique("tags-b"))
    assert ids(api, "/api/v1/traces", key=other, tag="beta") == []
    assert ids(api, "/api/v1/spans", key=other, metadata="customer:acme") == []
    too_many = api.client.get("/api/v1/traces", params={"tag": [str(i) for i in range(11)]}, headers=api.auth)
    assert too_many.status_code == 422
    bad_key = api.client.get("/api/v1/spans", params={"metadata": "no-colon"}, headers=api.auth)
    assert bad_key.status_code == 422
