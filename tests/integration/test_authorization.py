"""Deny by default: every API route demands a key, and the right permission for its role."""

from __future__ import annotations

from tests.conftest import Api
from watchkeep.security.authz import ROLE_PERMISSIONS, Permission, Role

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
MONITOR = {"name": "m", "kind": "metric", "metric": "requests", "condition": {"alert": 1}}
DAY = {"reference_from": "2026-01-01T00:00:00Z", "reference_to": "2026-01-02T00:00:00Z"}
OPEN_PATHS = {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}

# Every protected route, a request that reaches its handler, and the permission it needs.
ROUTES: dict[tuple[str, str], tuple[dict[str, object], Permission]] = {
    ("POST", "/v1/traces"): (
        {"content": b"{}", "headers": {"Content-Type": "application/json"}},
        Permission.TRACES_WRITE,
    ),
    ("GET", "/api/v1/traces"): ({}, Permission.TRACES_READ),
    ("GET", "/api/v1/traces/{trace_id}"): ({}, Permission.TRACES_READ),
    ("GET", "/api/v1/spans"): ({}, Permission.TRACES_READ),
    ("POST", "/api/v1/scores"): (
        {"json": {"name": "n", "value": 1, "trace_id": TRACE}},
        Permission.SCORES_WRITE,
    ),
    ("GET", "/api/v1/scores"): ({}, Permission.SCORES_READ),
    ("GET", "/api/v1/metrics"): ({}, Permission.METRICS_READ),
    ("GET", "/api/v1/metrics/resources"): ({}, Permission.METRICS_READ),
    ("GET", "/api/v1/quality"): ({"params": {"name": "n"}}, Permission.SCORES_READ),
    ("GET", "/api/v1/drift"): ({"params": {"feature": "latency_ms", **DAY}}, Permission.METRICS_READ),
    ("GET", "/api/v1/evaluators"): ({}, Permission.MONITORS_READ),
    ("GET", "/api/v1/online-evaluators"): ({}, Permission.MONITORS_READ),
    ("POST", "/api/v1/online-evaluators"): (
        {"json": {"name": "n", "evaluator": "json_valid"}},
        Permission.MONITORS_WRITE,
    ),
    ("DELETE", "/api/v1/online-evaluators/{evaluator_id}"): ({}, Permission.MONITORS_WRITE),
    ("GET", "/api/v1/monitors"): ({}, Permission.MONITORS_READ),
    ("POST", "/api/v1/monitors"): ({"json": MONITOR}, Permission.MONITORS_WRITE),
    ("POST", "/api/v1/monitors/apply"): (
        {"content": b"monitors: []", "headers": {"Content-Type": "application/yaml"}},
        Permission.MONITORS_WRITE,
    ),
    ("GET", "/api/v1/monitors/{monitor_id}"): ({}, Permission.MONITORS_READ),
    ("PUT", "/api/v1/monitors/{monitor_id}"): ({"json": MONITOR}, Permission.MONITORS_WRITE),
    ("DELETE", "/api/v1/monitors/{monitor_id}"): ({}, Permission.MONITORS_WRITE),
    ("POST", "/api/v1/monitors/{monitor_id}/evaluate"): ({}, Permission.MONITORS_WRITE),
    ("GET", "/api/v1/alerts"): ({}, Permission.ALERTS_READ),
    ("GET", "/api/v1/alert-channels"): ({}, Permission.ALERTS_READ),
    ("POST", "/api/v1/alert-channels"): (
        {"json": {"name": "c", "kind": "slack", "config": {"url": "http://127.0.0.1:9/x"}}},
        Permission.ALERTS_WRITE,
    ),
    ("DELETE", "/api/v1/alert-channels/{channel_id}"): ({}, Permission.ALERTS_WRITE),
    ("POST", "/v1/chat/completions"): (
        {"json": {"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}},
        Permission.MODELS_INVOKE,
    ),
    ("POST", "/v1/embeddings"): (
        {"json": {"model": "no-such-model", "input": "hi"}},
        Permission.MODELS_INVOKE,
    ),
    ("GET", "/v1/models"): ({}, Permission.MODELS_INVOKE),
    ("GET", "/api/v1/routes"): ({}, Permission.ROUTES_READ),
    ("GET", "/api/v1/routes/{name}"): ({}, Permission.ROUTES_READ),
    ("PUT", "/api/v1/routes/{name}"): (
        {"json": {"deployments": [{"name": "a", "backend": "mock"}]}},
        Permission.ROUTES_WRITE,
    ),
    ("DELETE", "/api/v1/routes/{name}"): ({}, Permission.ROUTES_WRITE),
}


def app_routes(api: Api) -> set[tuple[str, str]]:
    """Every operation the app documents (the OpenAPI schema lists all included routes)."""
    paths = api.app.openapi()["paths"]
    return {(m.upper(), p) for p, ops in paths.items() if p not in OPEN_PATHS for m in ops}


def call(api: Api, method: str, path: str, headers: dict[str, str]) -> int:
    kwargs, _ = ROUTES[(method, path)]
    extra = dict(kwargs)
    merged = {**headers, **dict(extra.pop("headers", {}))}  # type: ignore[arg-type]
    url = path.replace("{trace_id}", TRACE)
    for name in ("monitor_id", "evaluator_id", "channel_id"):
        url = url.replace("{" + name + "}", "1")  # reaches the handler: 404 after authorisation
    url = url.replace("{name}", "smollm2")
    return api.client.request(method, url, headers=merged, **extra).status_code  # type: ignore[arg-type]


def test_every_route_is_in_the_matrix(api: Api) -> None:
    assert app_routes(api) == set(ROUTES), "a new route needs its row in ROUTES"


def test_no_key_and_bad_keys_are_401(api: Api) -> None:
    revoked = api.key_for()
    api.app.state.services.projects.revoke_key(revoked[:15])
    for method, path in ROUTES:
        for headers in (
            {},
            {"Authorization": "Bearer"},
            {"Authorization": "Basic dXNlcjpwYXNz"},
            {"Authorization": "Bearer wk_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
            {"Authorization": f"Bearer {api.key[:-2]}xx"},
            {"Authorization": f"Bearer {revoked}"},
        ):
            assert call(api, method, path, headers) == 401, (method, path, headers)


def test_each_role_gets_exactly_its_permissions(api: Api) -> None:
    for role in Role:
        headers = {"Authorization": f"Bearer {api.key_for(role.value)}"}
        for (method, path), (_, needed) in ROUTES.items():
            status = call(api, method, path, headers)
            if needed in ROLE_PERMISSIONS[role]:
                assert status not in (401, 403), (role, method, path, status)
            else:
                assert status == 403, (role, method, path, status)


def test_metrics_can_require_a_key(api: Api) -> None:
    assert api.client.get("/metrics").status_code == 200
    api.app.state.services.settings.metrics_require_key = True
    try:
        assert api.client.get("/metrics").status_code == 401
        ingest = {"Authorization": f"Bearer {api.key_for('ingest')}"}
        assert api.client.get("/metrics", headers=ingest).status_code == 403
        assert api.client.get("/metrics", headers=api.auth).status_code == 200
    finally:
        api.app.state.services.settings.metrics_require_key = False
