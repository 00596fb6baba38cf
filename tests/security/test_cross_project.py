"""Another project's ids are not there: every resource reachable by id or name, seen from project B.

Project A owns one of everything (a trace with spans and a score, a gateway route, a
monitor with alert history, an online evaluator, an alert channel). Project B holds an
admin key, so no permission can be the reason for a refusal: for A's ids B must get the
same 404 as for ids that do not exist (not 403, not the data), B's lists must not show
A's items, and where things are addressed by name, B's name is B's own and leaves A's
untouched. A's own view is checked alongside, so each negative has a positive control.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.keys import new_key
from tests.support.monitor import Receiver, running_receiver
from tests.support.tenant import MOCK_ROUTE, seed_trace, tenant_settings, unique
from watchkeep.app import create_app

Response = Any  # the TestClient's response: httpx's or httpx2's, whichever Starlette found
MISSING_ID = 2_000_000_000
MISSING_TRACE = "0123456789abcdef0123456789abcdef"


def firing_monitor(name: str, channels: list[str]) -> dict[str, Any]:
    """A monitor that alerts on its first evaluation (zero requests >= 0)."""
    return {
        "name": name,
        "kind": "metric",
        "metric": "requests",
        "schedule": 60,
        "min_samples": 0,
        "condition": {"op": ">=", "alert": 0},
        "channels": channels,
    }


@dataclass
class ProjectA:
    """What project A owns, by id and name."""

    trace_id: str
    span_id: str
    score_id: int
    score_name: str
    idempotency_key: str
    route: str
    monitor_id: int
    monitor: dict[str, Any]
    evaluator_id: int
    evaluator: str
    channel_id: int
    channel: str


@dataclass
class Tenants:
    client: TestClient
    a: dict[str, str]
    b: dict[str, str]
    owned: ProjectA
    receiver: Receiver

    def as_a(self, method: str, url: str, **kwargs: Any) -> Response:
        return self.client.request(method, url, headers=self.a, **kwargs)

    def as_b(self, method: str, url: str, **kwargs: Any) -> Response:
        return self.client.request(method, url, headers=self.b, **kwargs)


def _created(response: Response) -> Any:
    assert response.status_code in (200, 201), response.text
    return response.json()


@pytest.fixture
def tenants(database_url: str, tmp_path: Path) -> Iterator[Tenants]:
    app = create_app(tenant_settings(database_url, tmp_path))
    a = {"Authorization": f"Bearer {new_key(database_url, 'admin', unique('a'))}"}
    b = {"Authorization": f"Bearer {new_key(database_url, 'admin', unique('b'))}"}
    with running_receiver() as receiver, TestClient(app, raise_server_exceptions=False) as client:
        trace_id, span_id = seed_trace(client, a)[0]
        score: dict[str, Any] = {
            "name": unique("score"),
            "value": 0.5,
            "trace_id": trace_id,
            "idempotency_key": unique("k"),
        }
        score_id = _created(client.post("/api/v1/scores", json=score, headers=a))["id"]
        route = unique("route")
        _created(client.put(f"/api/v1/routes/{route}", json=MOCK_ROUTE, headers=a))
        channel = unique("chan")
        config = {"url": f"{receiver.url}/a"}
        body = {"name": channel, "kind": "webhook", "config": config}
        channel_id = _created(client.post("/api/v1/alert-channels", json=body, headers=a))["id"]
        monitor = firing_monitor(unique("mon"), [channel])
        monitor_id = _created(client.post("/api/v1/monitors", json=monitor, headers=a))["id"]
        _created(client.post(f"/api/v1/monitors/{monitor_id}/evaluate", headers=a))
        assert len(receiver.requests) == 1, "A's alert reached A's channel (the positive control)"
        evaluator = {"name": unique("eval"), "evaluator": "json_valid"}
        evaluator_id = _created(client.post("/api/v1/online-evaluators", json=evaluator, headers=a))["id"]
        owned = ProjectA(
            trace_id,
            span_id,
            score_id,
            score["name"],
            score["idempotency_key"],
            route,
            monitor_id,
            monitor,
            evaluator_id,
            evaluator["name"],
            channel_id,
            channel,
        )
        yield Tenants(client, a, b, owned, receiver)


def _not_found_like_a_missing_id(
    t: Tenants, method: str, template: str, owned: object, missing: object, **kwargs: Any
) -> None:
    """B gets for A's id exactly what it gets for an id nobody has: 404 and the same error code."""
    theirs = t.as_b(method, template.format(owned), **kwargs)
    nobody = t.as_b(method, template.format(missing), **kwargs)
    assert theirs.status_code == 404, (method, template, theirs.status_code, theirs.text)
    assert nobody.status_code == 404, (method, template, nobody.status_code, nobody.text)
    assert theirs.json()["error"]["code"] == nobody.json()["error"]["code"]


def _items(response: Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def test_traces_spans_and_scores_of_another_project_are_not_found(tenants: Tenants) -> None:
    t, a = tenants, tenants.owned
    assert t.as_a("GET", f"/api/v1/traces/{a.trace_id}").status_code == 200
    _not_found_like_a_missing_id(t, "GET", "/api/v1/traces/{}", a.trace_id, MISSING_TRACE)
    by_trace = {"params": {"trace_id": a.trace_id}}
    assert _items(t.as_a("GET", "/api/v1/spans", **by_trace))
    assert _items(t.as_b("GET", "/api/v1/spans", **by_trace)) == []
    assert _items(t.as_b("GET", "/api/v1/traces", **by_trace)) == []
    assert all(s["span_id"] != a.span_id for s in _items(t.as_b("GET", "/api/v1/spans")))
    # the user filter picks traces first (by the traces' user index): never another project's
    user = _items(t.as_a("GET", "/api/v1/spans", **by_trace))[0]["user_id"]
    by_user = {"params": {"user_id": user}}
    assert a.span_id in {s["span_id"] for s in _items(t.as_a("GET", "/api/v1/spans", **by_user))}
    assert _items(t.as_b("GET", "/api/v1/spans", **by_user)) == []
    assert all(r["trace_id"] != a.trace_id for r in _items(t.as_b("GET", "/api/v1/traces")))
    assert [s["id"] for s in _items(t.as_a("GET", "/api/v1/scores", **by_trace))] == [a.score_id]
    assert _items(t.as_b("GET", "/api/v1/scores", **by_trace)) == []
    assert _items(t.as_b("GET", "/api/v1/scores", params={"name": a.score_name})) == []
    for auth, n in ((t.a, 1), (t.b, 0)):
        quality = t.client.get("/api/v1/quality", params={"name": a.score_name}, headers=auth)
        assert quality.status_code == 200, quality.text
        assert quality.json()["n"] == n


def test_a_score_under_another_projects_idempotency_key_and_trace_stays_in_its_project(
    tenants: Tenants,
) -> None:
    """B reusing A's idempotency key stores B's own score (no 200 with A's, no 409 that
    confirms the key), and a score B aims at A's trace never shows in A's trace."""
    t, a = tenants, tenants.owned
    body = {"name": a.score_name, "value": 0.5, "trace_id": a.trace_id, "idempotency_key": a.idempotency_key}
    mine = t.as_b("POST", "/api/v1/scores", json=body)
    assert mine.status_code == 201, mine.text
    assert mine.json()["id"] != a.score_id
    detail = t.as_a("GET", f"/api/v1/traces/{a.trace_id}").json()
    assert [s["id"] for s in detail["scores"]] == [a.score_id]


def test_routes_of_another_project_are_not_found_and_its_names_are_free(tenants: Tenants) -> None:
    t, a = tenants, tenants.owned
    assert t.as_a("GET", f"/api/v1/routes/{a.route}").json()["scope"] == "project"
    _not_found_like_a_missing_id(t, "GET", "/api/v1/routes/{}", a.route, unique("nobody"))
    _not_found_like_a_missing_id(t, "DELETE", "/api/v1/routes/{}", a.route, unique("nobody"))
    assert a.route not in [r["name"] for r in _items(t.as_b("GET", "/api/v1/routes"))]
    assert a.route not in [m["id"] for m in t.as_b("GET", "/v1/models").json()["data"]]
    chat = {"model": a.route, "messages": [{"role": "user", "content": "hi"}]}
    assert t.as_a("POST", "/v1/chat/completions", json=chat).status_code == 200
    assert t.as_b("POST", "/v1/chat/completions", json=chat).status_code == 404
    assert t.as_b("POST", "/v1/embeddings", json={"model": a.route, "input": "hi"}).status_code == 404
    other = {"deployments": [{"name": "b-own", "backend": "mock"}]}
    assert t.as_b("PUT", f"/api/v1/routes/{a.route}", json=other).status_code == 200
    assert t.as_b("DELETE", f"/api/v1/routes/{a.route}").status_code == 204
    kept = t.as_a("GET", f"/api/v1/routes/{a.route}").json()
    assert [d["name"] for d in kept["deployments"]] == ["a"]


def test_monitors_and_their_alerts_of_another_project_are_not_found(tenants: Tenants) -> None:
    t, a = tenants, tenants.owned
    spec = {**a.monitor, "description": "taken over"}
    for method, template, kwargs in (
        ("GET", "/api/v1/monitors/{}", {}),
        ("PUT", "/api/v1/monitors/{}", {"json": spec}),
        ("POST", "/api/v1/monitors/{}/evaluate", {}),
        ("DELETE", "/api/v1/monitors/{}", {}),
    ):
        _not_found_like_a_missing_id(t, method, template, a.monitor_id, MISSING_ID, **kwargs)
    assert _items(t.as_b("GET", "/api/v1/monitors")) == []
    assert [r["monitor_id"] for r in _items(t.as_a("GET", "/api/v1/alerts"))] == [a.monitor_id]
    assert _items(t.as_b("GET", "/api/v1/alerts")) == []
    assert _items(t.as_b("GET", "/api/v1/alerts", params={"monitor_id": a.monitor_id})) == []
    same_name = t.as_b("POST", "/api/v1/monitors", json=firing_monitor(a.monitor["name"], []))
    assert same_name.status_code == 201, same_name.text  # a 409 would confirm A's name
    mine = t.as_a("GET", f"/api/v1/monitors/{a.monitor_id}").json()
    assert mine["spec"]["description"] is None
    assert mine["spec"]["channels"] == [a.channel]


def test_online_evaluators_of_another_project_are_not_found_and_their_names_are_free(
    tenants: Tenants,
) -> None:
    t, a = tenants, tenants.owned
    _not_found_like_a_missing_id(t, "DELETE", "/api/v1/online-evaluators/{}", a.evaluator_id, MISSING_ID)
    assert _items(t.as_b("GET", "/api/v1/online-evaluators")) == []
    body = {"name": a.evaluator, "evaluator": "json_valid"}
    assert t.as_b("POST", "/api/v1/online-evaluators", json=body).status_code == 201
    assert [e["id"] for e in _items(t.as_a("GET", "/api/v1/online-evaluators"))] == [a.evaluator_id]


def test_alert_channels_of_another_project_are_not_found_and_never_notified(tenants: Tenants) -> None:
    """B's monitor naming A's channel notifies nothing; B's channel of that name is B's own."""
    t, a = tenants, tenants.owned
    _not_found_like_a_missing_id(t, "DELETE", "/api/v1/alert-channels/{}", a.channel_id, MISSING_ID)
    assert _items(t.as_b("GET", "/api/v1/alert-channels")) == []
    hijack = _created(t.as_b("POST", "/api/v1/monitors", json=firing_monitor(unique("mon"), [a.channel])))
    evaluated = t.as_b("POST", f"/api/v1/monitors/{hijack['id']}/evaluate")
    assert evaluated.status_code == 200, evaluated.text
    assert evaluated.json()["state"] == "ALERT"
    assert len(t.receiver.requests) == 1, "B's alert went to A's channel"
    (event,) = _items(t.as_b("GET", "/api/v1/alerts"))
    assert event["deliveries"] == []
    body = {"name": a.channel, "kind": "webhook", "config": {"url": f"{t.receiver.url}/b"}}
    assert t.as_b("POST", "/api/v1/alert-channels", json=body).status_code == 201
    (kept,) = _items(t.as_a("GET", "/api/v1/alert-channels"))
    assert (kept["id"], kept["config"]["url"]) == (a.channel_id, f"{t.receiver.url}/a")


def test_metrics_of_another_project_do_not_count_its_calls(tenants: Tenants) -> None:
    t, a = tenants, tenants.owned
    chat = {"model": a.route, "messages": [{"role": "user", "content": "hi"}]}
    assert t.as_a("POST", "/v1/chat/completions", json=chat).status_code == 200
    mine = t.as_a("GET", "/api/v1/metrics", params={"metrics": "requests"}).json()["summary"]
    theirs = t.as_b("GET", "/api/v1/metrics", params={"metrics": "requests"}).json()["summary"]
    assert mine["requests"] > 0
    assert theirs["requests"] == 0
