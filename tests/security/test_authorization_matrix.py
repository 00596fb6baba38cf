"""Authentication is not authorisation: every route, every role, the status it must answer.

The expected status of each route for each principal is written out here, not derived
from the implementation's role table, so a wrong entry in that table (or a route that
forgets its permission check) fails this test. "Allowed" is the exact success status of
a realistic request that reaches the handler (it sets up the ids it names), never a 5xx;
"denied" is exactly 401 or 403. The table must name every operation the app serves
(its routes, its OpenAPI document and the gateway's fast path), and nothing else.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from fastapi.routing import RouteContext, iter_route_contexts
from fastapi.testclient import TestClient
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from tests.support.canary_data import stage_canary, stage_canary_model
from tests.support.eval_api import stage_dataset, stage_feedback, stage_run
from tests.support.keys import new_key
from tests.support.otlp_json import attr, two_span_trace
from tests.support.registry_api import MODEL_BODY, stage_gated, stage_release
from tests.support.tenant import (
    MOCK_ROUTE,
    OPERATOR_TOKEN,
    PROTOBUF,
    seed_trace,
    tenant_settings,
    unique,
)
from watchkeep.app import create_app
from watchkeep.devtools.synthetic_otlp import build_request
from watchkeep.gateway.web import GatewayFastPath

ROLES = ("admin", "member", "ingest", "viewer")
PRINCIPALS = (*ROLES, "operator", "none", "invalid", "revoked")
OK = "ok"  # the row's success status
DENIED = "denied"  # 401 or 403: which one is the implementation's choice
Expect = int | str
Call = tuple[str, dict[str, Any]]  # url, request keyword arguments


def expect(
    admin: Expect,
    member: Expect,
    ingest: Expect,
    viewer: Expect,
    *,
    operator: Expect = 401,
    none: Expect = 401,
    invalid: Expect = 401,
    revoked: Expect = 401,
) -> dict[str, Expect]:
    """One row's cells; a project route's key-less columns are 401 (the operator token is no project key)."""
    return {
        "admin": admin,
        "member": member,
        "ingest": ingest,
        "viewer": viewer,
        "operator": operator,
        "none": none,
        "invalid": invalid,
        "revoked": revoked,
    }


OPEN = expect(200, 200, 200, 200, operator=200, none=200, invalid=200, revoked=200)
OPERATOR_ONLY = expect(403, 403, 403, 403, operator=OK, none=401, invalid=DENIED, revoked=DENIED)


@dataclass
class Tenant:
    """A fresh project: the key under test, and an admin key of the same project that sets the stage."""

    client: TestClient
    admin: dict[str, str]
    _trace: str | None = field(default=None)

    def make(self, method: str, url: str, **kwargs: Any) -> Any:
        headers = {**kwargs.pop("headers", {}), **self.admin}
        response = self.client.request(method, url, headers=headers, **kwargs)
        assert response.status_code in (200, 201), (url, response.status_code, response.text)
        return response.json() if response.headers["content-type"] == "application/json" else None

    def monitor(self) -> tuple[int, dict[str, Any]]:
        spec = {**MONITOR, "name": unique("mon")}
        return int(self.make("POST", "/api/v1/monitors", json=spec)["id"]), spec

    def channel(self) -> int:
        return int(self.make("POST", "/api/v1/alert-channels", json=channel_body())["id"])

    def evaluator(self) -> int:
        return int(self.make("POST", "/api/v1/online-evaluators", json=evaluator_body())["id"])

    def route(self) -> str:
        name = unique("route")
        self.make("PUT", f"/api/v1/routes/{name}", json=ROUTE)
        return name

    def comment(self) -> int:
        """A comment by the tenant's admin key on the tenant's trace."""
        return int(self.make("POST", "/api/v1/comments", json=comment_body(self))["id"])

    def trace(self) -> str:
        """A stored trace of this project (seeded once)."""
        if self._trace is None:
            self._trace = seed_trace(self.client, self.admin)[0][0]
        return self._trace


MONITOR = {
    "name": "m",
    "kind": "metric",
    "metric": "requests",
    "schedule": 60,
    "condition": {"op": ">", "alert": 1000},
}
ROUTE = MOCK_ROUTE
DAY = {"reference_from": "2026-01-01T00:00:00Z", "reference_to": "2026-01-02T00:00:00Z"}
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def comment_body(t: Tenant) -> dict[str, Any]:
    return {"target_kind": "trace", "target_id": t.trace(), "body": "looks off @nobody"}


def channel_body() -> dict[str, Any]:
    """A webhook channel on loopback (allow-listed for this app; never delivered to here)."""
    return {"name": unique("chan"), "kind": "webhook", "config": {"url": "http://127.0.0.1:9/hook"}}


def evaluator_body() -> dict[str, Any]:
    return {"name": unique("eval"), "evaluator": "json_valid", "sample_rate": 0.5}


def tenant_key(t: Tenant) -> dict[str, Any]:
    """A fresh viewer key of the tenant's project, made by its admin (project name and prefix)."""
    return dict(t.make("POST", "/api/v1/keys", json={"role": "viewer"}))


def usage_of(kind: str) -> Callable[[Tenant], Call]:
    """GET one user's or session's totals after the tenant stored a span of ``who``."""

    def send(t: Tenant) -> Call:
        who = unique(kind)
        span = two_span_trace(1, [attr(f"watchkeep.{kind}.id", who)])
        body = {"resourceSpans": [{"scopeSpans": [{"spans": span}]}]}
        t.make("POST", "/v1/traces", json=body)
        return f"/api/v1/{kind}s/{who}", {}

    return send


def otlp(_: Tenant) -> Call:
    body, _ids = build_request(2, rng=random.Random())
    return "/v1/traces", {"content": body, "headers": PROTOBUF}


def otlp_logs(_: Tenant) -> Call:
    """A GenAI user-message event record of a random span."""
    request = ExportLogsServiceRequest()
    record = request.resource_logs.add().scope_logs.add().log_records.add()
    record.trace_id, record.span_id = random.randbytes(16), random.randbytes(8)
    record.event_name = "gen_ai.user.message"
    record.body.string_value = "hi"
    return "/v1/logs", {"content": request.SerializeToString(), "headers": PROTOBUF}


def get(url: str, **params: Any) -> Callable[[Tenant], Call]:
    return lambda _: (url, {"params": params} if params else {})


def put_monitor(t: Tenant) -> Call:
    monitor_id, spec = t.monitor()
    return f"/api/v1/monitors/{monitor_id}", {"json": {**spec, "description": "changed"}}


def apply_monitors(_: Tenant) -> Call:
    text = yaml.safe_dump({"monitors": [{**MONITOR, "name": unique("mon")}]})
    return "/api/v1/monitors/apply", {"content": text, "headers": {"Content-Type": "application/yaml"}}


def annotation_queue(t: Tenant) -> int:
    """A fresh annotation queue of the tenant's project."""
    body = {"name": unique("queue"), "score_name": "verdict", "labels": ["good", "bad"]}
    return int(t.make("POST", "/api/v1/annotation-queues", json=body)["id"])


@dataclass(frozen=True)
class Row:
    """A route's realistic request, its success status, and the status each principal gets."""

    send: Callable[[Tenant], Call]
    ok: int
    cells: dict[str, Expect]


READ = expect(OK, OK, 403, OK)  # traces, scores, metrics, monitors, alerts, routes: read
WRITE_TRACES = expect(OK, OK, OK, 403)  # ingest and feedback: the apps' role
MONITORS_WRITE = expect(OK, OK, 403, 403)
ANNOTATE = expect(OK, OK, 403, 403)  # annotation queues: create, fill, delete
ADMIN_ONLY = expect(OK, 403, 403, 403)
INVOKE = expect(OK, OK, OK, 403)
EVALS_WRITE = expect(OK, OK, 403, 403)  # datasets and runs: create, delete
REGISTRY_WRITE = expect(OK, OK, 403, 403)  # register versions, move and roll back aliases
PROMPT_FETCH = expect(OK, OK, OK, OK)  # the SDK's get_prompt: ingest keys too

MATRIX: dict[tuple[str, str], Row] = {
    ("GET", "/healthz"): Row(get("/healthz"), 200, OPEN),
    ("GET", "/readyz"): Row(get("/readyz"), 200, OPEN),
    ("GET", "/openapi.json"): Row(get("/openapi.json"), 200, OPEN),
    ("GET", "/docs"): Row(get("/docs"), 200, OPEN),
    ("GET", "/static/{path}"): Row(get("/static/vendor/htmx.min.js"), 200, OPEN),
    ("GET", "/metrics"): Row(
        get("/metrics"), 200, expect(403, 403, 403, 403, operator=OK, none=401, invalid=DENIED, revoked=403)
    ),
    ("POST", "/v1/traces"): Row(otlp, 200, WRITE_TRACES),
    ("POST", "/v1/logs"): Row(otlp_logs, 200, WRITE_TRACES),
    ("GET", "/api/v1/traces"): Row(get("/api/v1/traces"), 200, READ),
    ("GET", "/api/v1/users"): Row(get("/api/v1/users"), 200, READ),
    ("GET", "/api/v1/users/{user_id}"): Row(usage_of("user"), 200, READ),
    ("GET", "/api/v1/sessions"): Row(get("/api/v1/sessions"), 200, READ),
    ("GET", "/api/v1/sessions/{session_id}"): Row(usage_of("session"), 200, READ),
    ("GET", "/api/v1/traces/{trace_id}"): Row(lambda t: (f"/api/v1/traces/{t.trace()}", {}), 200, READ),
    ("GET", "/api/v1/spans"): Row(
        lambda t: ("/api/v1/spans", {"params": {"trace_id": t.trace()}}), 200, READ
    ),
    ("GET", "/api/v1/export"): Row(
        lambda t: ("/api/v1/export", {"params": {"trace_id": t.trace()}}), 200, READ
    ),
    ("POST", "/api/v1/scores"): Row(
        lambda t: ("/api/v1/scores", {"json": {"name": "q", "value": 1, "trace_id": t.trace()}}),
        201,
        WRITE_TRACES,
    ),
    ("GET", "/api/v1/scores"): Row(get("/api/v1/scores"), 200, READ),
    ("GET", "/api/v1/comments"): Row(
        lambda t: ("/api/v1/comments", {"params": {"target_kind": "trace", "target_id": t.trace()}}),
        200,
        READ,
    ),
    ("POST", "/api/v1/comments"): Row(
        lambda t: ("/api/v1/comments", {"json": comment_body(t)}), 201, expect(OK, OK, 403, 403)
    ),
    # Only its author edits a comment: the tenant's admin key wrote it, every key under test is another.
    ("PATCH", "/api/v1/comments/{comment_id}"): Row(
        lambda t: (f"/api/v1/comments/{t.comment()}", {"json": {"body": "edited"}}),
        200,
        expect(403, 403, 403, 403),
    ),
    ("DELETE", "/api/v1/comments/{comment_id}"): Row(
        lambda t: (f"/api/v1/comments/{t.comment()}", {}), 204, ADMIN_ONLY
    ),
    ("GET", "/api/v1/activity"): Row(get("/api/v1/activity"), 200, READ),
    ("GET", "/api/v1/annotation-queues"): Row(get("/api/v1/annotation-queues"), 200, READ),
    ("POST", "/api/v1/annotation-queues"): Row(
        lambda _: (
            "/api/v1/annotation-queues",
            {"json": {"name": unique("queue"), "score_name": "v", "labels": ["a", "b"]}},
        ),
        201,
        ANNOTATE,
    ),
    ("GET", "/api/v1/annotation-queues/{queue_id}"): Row(
        lambda t: (f"/api/v1/annotation-queues/{annotation_queue(t)}", {}), 200, READ
    ),
    ("DELETE", "/api/v1/annotation-queues/{queue_id}"): Row(
        lambda t: (f"/api/v1/annotation-queues/{annotation_queue(t)}", {}), 204, ANNOTATE
    ),
    ("POST", "/api/v1/annotation-queues/{queue_id}/items"): Row(
        lambda t: (
            f"/api/v1/annotation-queues/{annotation_queue(t)}/items",
            {"json": {"filter": {"trace_id": t.trace()}, "limit": 1}},
        ),
        200,
        ANNOTATE,
    ),
    ("GET", "/api/v1/annotation-queues/{queue_id}/items"): Row(
        lambda t: (f"/api/v1/annotation-queues/{annotation_queue(t)}/items", {}), 200, READ
    ),
    ("GET", "/api/v1/annotation-queues/{queue_id}/agreement"): Row(
        lambda t: (f"/api/v1/annotation-queues/{annotation_queue(t)}/agreement", {}), 200, READ
    ),
    ("GET", "/api/v1/quality"): Row(get("/api/v1/quality", name="q"), 200, READ),
    ("GET", "/api/v1/metrics"): Row(get("/api/v1/metrics", bucket_seconds=60), 200, READ),
    ("GET", "/api/v1/metrics/resources"): Row(get("/api/v1/metrics/resources"), 200, OPERATOR_ONLY),
    ("GET", "/api/v1/drift"): Row(get("/api/v1/drift", feature="latency_ms", **DAY), 200, READ),
    ("GET", "/api/v1/evaluators"): Row(get("/api/v1/evaluators"), 200, READ),
    ("GET", "/api/v1/online-evaluators"): Row(get("/api/v1/online-evaluators"), 200, READ),
    ("POST", "/api/v1/online-evaluators"): Row(
        lambda _: ("/api/v1/online-evaluators", {"json": evaluator_body()}), 201, MONITORS_WRITE
    ),
    ("DELETE", "/api/v1/online-evaluators/{evaluator_id}"): Row(
        lambda t: (f"/api/v1/online-evaluators/{t.evaluator()}", {}), 204, MONITORS_WRITE
    ),
    ("GET", "/api/v1/monitors"): Row(get("/api/v1/monitors"), 200, READ),
    ("POST", "/api/v1/monitors"): Row(
        lambda _: ("/api/v1/monitors", {"json": {**MONITOR, "name": unique("mon")}}), 201, MONITORS_WRITE
    ),
    ("POST", "/api/v1/monitors/apply"): Row(apply_monitors, 200, MONITORS_WRITE),
    ("GET", "/api/v1/monitors/{monitor_id}"): Row(
        lambda t: (f"/api/v1/monitors/{t.monitor()[0]}", {}), 200, READ
    ),
    ("PUT", "/api/v1/monitors/{monitor_id}"): Row(put_monitor, 200, MONITORS_WRITE),
    ("DELETE", "/api/v1/monitors/{monitor_id}"): Row(
        lambda t: (f"/api/v1/monitors/{t.monitor()[0]}", {}), 204, MONITORS_WRITE
    ),
    ("POST", "/api/v1/monitors/{monitor_id}/evaluate"): Row(
        lambda t: (f"/api/v1/monitors/{t.monitor()[0]}/evaluate", {}), 200, MONITORS_WRITE
    ),
    ("POST", "/api/v1/monitors/{monitor_id}/silence"): Row(
        lambda t: (f"/api/v1/monitors/{t.monitor()[0]}/silence", {"json": {"for": "2h"}}), 200, MONITORS_WRITE
    ),
    ("DELETE", "/api/v1/monitors/{monitor_id}/silence"): Row(
        lambda t: (f"/api/v1/monitors/{t.monitor()[0]}/silence", {}), 200, MONITORS_WRITE
    ),
    ("GET", "/api/v1/monitors/{monitor_id}/signal"): Row(
        lambda t: (f"/api/v1/monitors/{t.monitor()[0]}/signal", {}), 200, READ
    ),
    ("GET", "/api/v1/alerts"): Row(get("/api/v1/alerts"), 200, READ),
    ("GET", "/api/v1/alert-channels"): Row(get("/api/v1/alert-channels"), 200, READ),
    ("POST", "/api/v1/alert-channels"): Row(
        lambda _: ("/api/v1/alert-channels", {"json": channel_body()}), 201, ADMIN_ONLY
    ),
    ("DELETE", "/api/v1/alert-channels/{channel_id}"): Row(
        lambda t: (f"/api/v1/alert-channels/{t.channel()}", {}), 204, ADMIN_ONLY
    ),
    ("POST", "/v1/chat/completions"): Row(lambda _: ("/v1/chat/completions", {"json": CHAT}), 200, INVOKE),
    ("POST", "/v1/embeddings"): Row(
        lambda _: ("/v1/embeddings", {"json": {"model": "m", "input": ["hi", "there"]}}), 200, INVOKE
    ),
    ("GET", "/v1/models"): Row(get("/v1/models"), 200, INVOKE),
    ("GET", "/api/v1/routes"): Row(get("/api/v1/routes"), 200, READ),
    ("GET", "/api/v1/routes/{name}"): Row(lambda t: (f"/api/v1/routes/{t.route()}", {}), 200, READ),
    ("PUT", "/api/v1/routes/{name}"): Row(
        lambda _: (f"/api/v1/routes/{unique('route')}", {"json": ROUTE}), 200, ADMIN_ONLY
    ),
    ("DELETE", "/api/v1/routes/{name}"): Row(lambda t: (f"/api/v1/routes/{t.route()}", {}), 204, ADMIN_ONLY),
    ("POST", "/api/v1/keys"): Row(lambda _: ("/api/v1/keys", {"json": {"role": "viewer"}}), 201, ADMIN_ONLY),
    ("GET", "/api/v1/keys"): Row(get("/api/v1/keys"), 200, ADMIN_ONLY),
    ("DELETE", "/api/v1/keys/{prefix}"): Row(
        lambda t: (f"/api/v1/keys/{tenant_key(t)['prefix']}", {}), 204, ADMIN_ONLY
    ),
    ("GET", "/api/v1/projects"): Row(get("/api/v1/projects"), 200, OPERATOR_ONLY),
    ("POST", "/api/v1/projects"): Row(
        lambda _: ("/api/v1/projects", {"json": {"name": unique("proj")}}), 201, OPERATOR_ONLY
    ),
    ("GET", "/api/v1/projects/{name}/keys"): Row(
        lambda t: (f"/api/v1/projects/{tenant_key(t)['project']}/keys", {}), 200, OPERATOR_ONLY
    ),
    ("POST", "/api/v1/projects/{name}/keys"): Row(
        lambda t: (f"/api/v1/projects/{tenant_key(t)['project']}/keys", {"json": {"role": "ingest"}}),
        201,
        OPERATOR_ONLY,
    ),
    ("DELETE", "/api/v1/projects/{name}/keys/{prefix}"): Row(
        lambda t: ("/api/v1/projects/{project}/keys/{prefix}".format(**tenant_key(t)), {}), 204, OPERATOR_ONLY
    ),
    ("GET", "/api/v1/datasets"): Row(get("/api/v1/datasets"), 200, READ),
    ("GET", "/api/v1/datasets/{name}"): Row(
        lambda t: (f"/api/v1/datasets/{stage_dataset(t)}", {}), 200, READ
    ),
    ("DELETE", "/api/v1/datasets/{name}"): Row(
        lambda t: (f"/api/v1/datasets/{stage_dataset(t)}", {}), 204, EVALS_WRITE
    ),
    ("GET", "/api/v1/datasets/{name}/versions"): Row(
        lambda t: (f"/api/v1/datasets/{stage_dataset(t)}/versions", {}), 200, READ
    ),
    ("POST", "/api/v1/datasets/{name}/versions"): Row(
        lambda _: (f"/api/v1/datasets/{unique('ds')}/versions", {"json": {"items": [{"input": "hi"}]}}),
        201,
        EVALS_WRITE,
    ),
    ("GET", "/api/v1/datasets/{name}/versions/{version}"): Row(
        lambda t: (f"/api/v1/datasets/{stage_dataset(t)}/versions/latest", {}), 200, READ
    ),
    ("GET", "/api/v1/datasets/{name}/versions/{version}/items"): Row(
        lambda t: (f"/api/v1/datasets/{stage_dataset(t)}/versions/1/items", {}), 200, READ
    ),
    ("GET", "/api/v1/datasets/{name}/versions/{version}/export"): Row(
        lambda t: (f"/api/v1/datasets/{stage_dataset(t)}/versions/1/export", {"params": {"format": "csv"}}),
        200,
        READ,
    ),
    ("GET", "/api/v1/datasets/{name}/diff"): Row(
        lambda t: (f"/api/v1/datasets/{stage_dataset(t)}/diff", {"params": {"from": 1, "to": "latest"}}),
        200,
        READ,
    ),
    ("POST", "/api/v1/datasets/{dataset}/from-traces"): Row(
        lambda t: (
            f"/api/v1/datasets/{unique('ds')}/from-traces",
            {"params": {"trace_id": t.trace()}, "json": {"limit": 5}},
        ),
        201,
        EVALS_WRITE,
    ),
    ("POST", "/api/v1/datasets/{name}/from-feedback"): Row(
        lambda t: (f"/api/v1/datasets/{unique('ds')}/from-feedback", {"json": stage_feedback(t)}),
        201,
        EVALS_WRITE,
    ),
    ("GET", "/api/v1/eval-runs"): Row(get("/api/v1/eval-runs"), 200, READ),
    ("GET", "/api/v1/eval-runs/{run_id}"): Row(
        lambda t: (f"/api/v1/eval-runs/{stage_run(t)}", {}), 200, READ
    ),
    ("GET", "/api/v1/eval-runs/{run_id}/results"): Row(
        lambda t: (f"/api/v1/eval-runs/{stage_run(t)}/results", {}), 200, READ
    ),
    ("GET", "/api/v1/eval-runs/{run_id}/compare"): Row(
        lambda t: (f"/api/v1/eval-runs/{stage_run(t)}/compare", {"params": {"baseline": stage_run(t)}}),
        200,
        READ,
    ),
    ("DELETE", "/api/v1/eval-runs/{run_id}"): Row(
        lambda t: (f"/api/v1/eval-runs/{stage_run(t)}", {}), 204, EVALS_WRITE
    ),
    ("GET", "/api/v1/models"): Row(get("/api/v1/models"), 200, READ),
    ("GET", "/api/v1/prompts"): Row(get("/api/v1/prompts"), 200, READ),
    ("POST", "/api/v1/models/{name}/versions"): Row(
        lambda _: (f"/api/v1/models/{unique('model')}/versions", {"json": MODEL_BODY}), 201, REGISTRY_WRITE
    ),
    ("POST", "/api/v1/prompts/{name}/versions"): Row(
        lambda _: (f"/api/v1/prompts/{unique('prompt')}/versions", {"json": {"template": "hi"}}),
        201,
        REGISTRY_WRITE,
    ),
    ("GET", "/api/v1/models/{name}"): Row(
        lambda t: (f"/api/v1/models/{stage_release(t, 'models')}", {}), 200, READ
    ),
    ("GET", "/api/v1/prompts/{name}"): Row(
        lambda t: (f"/api/v1/prompts/{stage_release(t, 'prompts')}", {"params": {"label": "production"}}),
        200,
        PROMPT_FETCH,
    ),
    ("GET", "/api/v1/prompts/{name}/diff"): Row(
        lambda t: (f"/api/v1/prompts/{stage_release(t, 'prompts')}/diff", {"params": {"from": 1, "to": 2}}),
        200,
        READ,
    ),
}
MATRIX[("GET", "/api/v1/audit")] = Row(get("/api/v1/audit"), 200, ADMIN_ONLY)
MATRIX[("GET", "/api/v1/privacy/pii")] = Row(get("/api/v1/privacy/pii"), 200, ADMIN_ONLY)
MATRIX[("PUT", "/api/v1/privacy/pii")] = Row(
    lambda _: ("/api/v1/privacy/pii", {"json": {"actions": {"email": "hash"}}}), 200, ADMIN_ONLY
)
MATRIX[("GET", "/api/v1/privacy/retention")] = Row(get("/api/v1/privacy/retention"), 200, ADMIN_ONLY)
MATRIX[("PUT", "/api/v1/privacy/retention")] = Row(
    lambda _: ("/api/v1/privacy/retention", {"json": {"spans": 30}}), 200, ADMIN_ONLY
)
MATRIX[("POST", "/api/v1/privacy/subjects/{user_id}/erase")] = Row(
    lambda _: (f"/api/v1/privacy/subjects/{unique('user')}/erase", {}), 200, ADMIN_ONLY
)
MATRIX[("GET", "/api/v1/privacy/subjects/{user_id}/export")] = Row(
    lambda _: (f"/api/v1/privacy/subjects/{unique('user')}/export", {}), 200, ADMIN_ONLY
)
MATRIX[("POST", "/api/v1/canaries")] = Row(
    lambda t: (
        "/api/v1/canaries",
        {"json": {"name": stage_canary_model(t), "route": unique("route"), "configure_route": False}},
    ),
    201,
    REGISTRY_WRITE,
)
MATRIX[("GET", "/api/v1/canaries")] = Row(get("/api/v1/canaries"), 200, READ)
MATRIX[("GET", "/api/v1/canaries/{canary_id}")] = Row(
    lambda t: (f"/api/v1/canaries/{stage_canary(t)}", {}), 200, READ
)
MATRIX[("POST", "/api/v1/canaries/{canary_id}/stop")] = Row(
    lambda t: (f"/api/v1/canaries/{stage_canary(t)}/stop", {}), 200, REGISTRY_WRITE
)
for _kind in ("models", "prompts"):
    _base = f"/api/v1/{_kind}/{{name}}"

    def _at(suffix: str, kind: str = _kind, **kwargs: Any) -> Callable[[Tenant], Call]:
        return lambda t: (f"/api/v1/{kind}/{stage_release(t, kind)}{suffix}", dict(kwargs))

    MATRIX[("GET", f"{_base}/versions/{{version}}")] = Row(_at("/versions/1"), 200, READ)
    MATRIX[("GET", f"{_base}/aliases")] = Row(_at("/aliases"), 200, READ)
    MATRIX[("GET", f"{_base}/aliases/{{alias}}/history")] = Row(_at("/aliases/production/history"), 200, READ)
    MATRIX[("PUT", f"{_base}/aliases/{{alias}}")] = Row(
        _at("/aliases/staging", json={"version": 1, "reason": "try"}), 200, REGISTRY_WRITE
    )
    MATRIX[("POST", f"{_base}/aliases/{{alias}}/rollback")] = Row(
        _at("/aliases/production/rollback", json={"reason": "bad"}), 200, REGISTRY_WRITE
    )

    def _gated(suffix: str, kind: str = _kind, **kwargs: Any) -> Callable[[Tenant], Call]:
        return lambda t: (f"/api/v1/{kind}/{stage_gated(t, kind)}{suffix}", dict(kwargs))

    MATRIX[("GET", f"{_base}/aliases/{{alias}}/policy")] = Row(
        _gated("/aliases/production/policy"), 200, READ
    )
    MATRIX[("PUT", f"{_base}/aliases/{{alias}}/policy")] = Row(
        _at("/aliases/production/policy", json={"required_gates": [{"dataset": "qa"}]}), 200, ADMIN_ONLY
    )
    MATRIX[("DELETE", f"{_base}/aliases/{{alias}}/policy")] = Row(
        _gated("/aliases/production/policy"), 204, ADMIN_ONLY
    )
    MATRIX[("GET", f"{_base}/aliases/{{alias}}/gates")] = Row(
        _at("/aliases/production/gates", params={"version": 1}), 200, READ
    )
    MATRIX[("POST", f"{_base}/aliases/{{alias}}/promote")] = Row(
        _gated("/aliases/production/promote", json={"version": 1}), 200, REGISTRY_WRITE
    )


def _operations(ctx: RouteContext) -> set[tuple[str, str]]:
    """The (method, path) pairs of one routing entry; anything but a plain route needs a row too."""
    if isinstance(ctx.original_route, Mount) and isinstance(ctx.original_route.app, StaticFiles):
        return {("GET", f"{ctx.path}/{{path}}")}  # public files, read-only
    if not isinstance(ctx.original_route, Route) or ctx.methods is None:
        return {(type(ctx.original_route).__name__, str(ctx.path))}
    methods = set(ctx.methods)
    if "GET" in methods:
        methods.discard("HEAD")  # Starlette answers HEAD for every GET
    return {(m, str(ctx.path)) for m in methods}


def _console_page(ctx: RouteContext) -> bool:
    """Console pages answer people with sessions, not keys: test_console_authorization.py
    holds their matrix."""
    endpoint = getattr(ctx.original_route, "endpoint", None)
    return str(getattr(endpoint, "__module__", "")).startswith("watchkeep.ui.pages.")


def _fast_path(app: FastAPI) -> GatewayFastPath:
    layer: Any = app.front  # type: ignore[attr-defined]
    while not isinstance(layer, GatewayFastPath):
        layer = layer.app
    return layer


def served_operations(app: FastAPI) -> set[tuple[str, str]]:
    """Every operation the app answers: its routing table, its OpenAPI document, the gateway fast path."""
    served = {
        op for ctx in iter_route_contexts(app.routes) if not _console_page(ctx) for op in _operations(ctx)
    }
    http = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    served |= {(m.upper(), p) for p, item in app.openapi()["paths"].items() for m in item if m in http}
    served |= set(_fast_path(app)._routes)
    return served


@pytest.fixture
def client(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(tenant_settings(database_url, tmp_path))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def header_variants(principal: str, database_url: str, project: str, app: FastAPI) -> list[dict[str, str]]:
    """The Authorization headers a principal sends (several ways of having no valid key)."""
    if principal in ROLES:
        return [{"Authorization": f"Bearer {new_key(database_url, principal, project)}"}]
    if principal == "operator":
        return [{"Authorization": f"Bearer {OPERATOR_TOKEN}"}]
    if principal == "none":
        return [{}]
    if principal == "revoked":
        key = new_key(database_url, "admin", project)
        assert app.state.services.projects.revoke_key(key[:15])
        return [{"Authorization": f"Bearer {key}"}]
    real = new_key(database_url, "admin", project)
    return [
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": f"Bearer wk_{'a' * 43}"},
        {"Authorization": f"Bearer {real[:-2]}{'xx' if not real.endswith('xx') else 'yy'}"},
        {"Authorization": f"bearer{real}"},
    ]


def test_the_matrix_names_every_route_the_app_serves_and_no_other(client: TestClient) -> None:
    served = served_operations(client.app)  # type: ignore[arg-type]
    assert not served - set(MATRIX), f"routes without a row in MATRIX: {sorted(served - set(MATRIX))}"
    assert not set(MATRIX) - served, f"rows for routes the app does not serve: {sorted(set(MATRIX) - served)}"


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_each_principal_gets_exactly_the_status_in_the_matrix(
    principal: str, client: TestClient, database_url: str
) -> None:
    """All mismatches of a column are reported together, each with the answer's start."""
    project = unique("authz")
    tenant = Tenant(client, {"Authorization": f"Bearer {new_key(database_url, 'admin', project)}"})
    variants = header_variants(principal, database_url, project, client.app)  # type: ignore[arg-type]
    wrong: list[str] = []
    for (method, path), row in MATRIX.items():
        want = row.cells[principal]
        for headers in variants:
            url, kwargs = row.send(tenant)
            sent = {**kwargs.pop("headers", {}), **headers}
            response = client.request(method, url, headers=sent, **kwargs)
            got = response.status_code
            fine = got in (401, 403) if want == DENIED else got == (row.ok if want == OK else want)
            if not fine:
                wrong.append(
                    f"{method} {path} {headers or 'no key'}: {got} (want {want}) {response.text[:160]}"
                )
    assert not wrong, f"{principal}: {len(wrong)} mismatches\n" + "\n".join(wrong)


def test_the_matrix_itself_is_complete_and_well_formed() -> None:
    """Every row names every principal, and denials are 401/403 only (no other 4xx counts as denied)."""
    for op, row in MATRIX.items():
        assert set(row.cells) == set(PRINCIPALS), op
        assert 200 <= row.ok < 300, op
        for cell in row.cells.values():
            assert cell in (OK, DENIED, 200, 401, 403), (op, cell)
