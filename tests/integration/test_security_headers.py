"""Security headers on every response, the console's strict policy, and CORS closed unless
the operator opens it (then only to the listed origins, never with credentials)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.support.apps import Api
from watchkeep.api.security_headers import API_CSP, CONSOLE_CSP
from watchkeep.app import create_app
from watchkeep.config import Settings

TEMPLATES = Path(__file__).parents[2] / "src" / "watchkeep" / "ui" / "templates"
EVIL = "https://evil.example"


def _baseline(headers: Mapping[str, str]) -> None:
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "same-origin"
    assert "camera=()" in headers["permissions-policy"]


def test_api_answers_carry_a_policy_that_allows_nothing(api: Api) -> None:
    for response in (
        api.client.get("/api/v1/traces", headers=api.auth),
        api.client.get("/api/v1/traces"),  # 401
        api.client.get("/api/v1/no-such-route"),  # 404
    ):
        _baseline(response.headers)
        assert response.headers["content-security-policy"] == API_CSP
        assert "strict-transport-security" not in response.headers  # plain http: no HSTS


def test_console_pages_forbid_inline_script_and_framing(api: Api) -> None:
    page = api.client.get("/login")
    _baseline(page.headers)
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    assert "unsafe" not in CONSOLE_CSP
    docs = api.client.get("/docs")  # Swagger UI keeps its own (data: icons)
    assert "img-src 'self' data:" in docs.headers["content-security-policy"]
    _baseline(docs.headers)


def test_templates_hold_no_inline_code_the_policy_would_block() -> None:
    """An inline script, style or event handler would break under the console's policy."""
    offending = re.compile(
        r"<script(?![^>]*\b(src=|type=\"application/json\"))|<style|\sstyle=|\son[a-z]+=|javascript:"
    )
    found = [
        f"{path.relative_to(TEMPLATES)}: {match.group(0)}"
        for path in TEMPLATES.rglob("*.html")
        for match in offending.finditer(path.read_text())
    ]
    assert found == []


def test_hsts_only_over_https(settings: Settings) -> None:
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        response = client.get("/healthz")
        assert response.headers["strict-transport-security"].startswith("max-age=31536000")
        _baseline(response.headers)


def test_cors_is_closed_by_default(api: Api) -> None:
    preflight = api.client.options(
        "/api/v1/traces",
        headers={
            "Origin": EVIL,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert "access-control-allow-origin" not in preflight.headers
    plain = api.client.get("/api/v1/traces", headers={**api.auth, "Origin": EVIL})
    assert "access-control-allow-origin" not in plain.headers


@pytest.mark.parametrize("origin", ["https://app.example"])
def test_cors_opens_only_to_the_listed_origins_without_credentials(settings: Settings, origin: str) -> None:
    opened = settings.model_copy(update={"cors_allow_origins": [origin]})
    with TestClient(create_app(opened)) as client:
        ask = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
        allowed = client.options("/api/v1/traces", headers={"Origin": origin, **ask})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == origin
        assert "access-control-allow-credentials" not in allowed.headers
        _baseline(allowed.headers)
        refused = client.options("/api/v1/traces", headers={"Origin": EVIL, **ask})
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers
        simple = client.get("/api/v1/traces", headers={"Origin": EVIL})
        assert "access-control-allow-origin" not in simple.headers
