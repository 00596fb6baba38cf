"""YAML from callers: alias-expansion bombs ("billion laughs") and deep nesting are refused
with 422 before any expansion, and only after the permission check."""

from __future__ import annotations

import httpx
import pytest

from tests.support.apps import Api
from tests.support.keys import new_key
from tests.support.servers import LiveServer
from watchkeep.monitor.spec import load_yaml

# Nine levels of ten references: about 10^9 strings once expanded, a few hundred bytes as text.
BOMB = "\n".join(
    [
        'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)),
        "monitors: *a8",
    ]
)
YAML = "application/yaml"


def test_a_billion_laughs_document_is_refused_quickly(live_server: LiveServer) -> None:
    # Before the fix the server expands the aliases while checking the document (hours of
    # CPU on a worker thread); the client gives up long before that.
    with httpx.Client(base_url=live_server.url, timeout=60) as client:
        response = client.post(
            "/api/v1/monitors/apply",
            content=BOMB,
            headers={"Authorization": f"Bearer {live_server.api_key}", "Content-Type": YAML},
        )
    assert response.status_code == 422
    assert "alias" in response.json()["error"]["message"]


def test_a_key_without_monitors_write_gets_403_not_a_parse(api: Api) -> None:
    viewer = new_key(api.database_url, "viewer")
    response = api.client.post(
        "/api/v1/monitors/apply",
        content=BOMB,
        headers={"Authorization": f"Bearer {viewer}", "Content-Type": YAML},
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


def test_any_alias_is_refused_by_load_yaml() -> None:
    text = (
        "monitors:\n  - &m {name: a, kind: metric, metric: error_rate, condition: {alert: 0.5}}\n"
        "  - {<<: *m, name: b}\n"
    )
    with pytest.raises(ValueError, match="alias"):
        load_yaml(text)


@pytest.mark.parametrize("opener", ["[", "{a: "])
def test_deep_nesting_is_422_not_500(api: Api, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    text = "monitors: " + opener * 5000 + closer * 5000
    response = api.client.post(
        "/api/v1/monitors/apply", content=text, headers={**api.auth, "Content-Type": YAML}
    )
    assert response.status_code == 422, response.text[:300]
    assert "deep" in response.json()["error"]["message"]
