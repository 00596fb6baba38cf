"""No secret and no payload reaches a log record, whatever the server does.

One representative run against a live server, every log record captured (the watchkeep,
authlib and httpx loggers at DEBUG, the rest at INFO): keys created over REST, gateway
calls carrying a seeded prompt (one to an upstream whose error body echoes a secret),
OTLP spans with payloads, a password login (and a failed one), and a sign-on through
the test's OpenID Connect provider. Then every record (message, arguments, extra fields,
traceback) is searched for the key material, the passwords, the client secret, the
upstream's secret and the seeded text.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.support.gateway import RecordingUpstream, chat, live_gateway, project_of
from tests.support.keys import new_key
from tests.support.oidc_provider import CLIENT_ID, CLIENT_SECRET, oidc_provider
from watchkeep.store.engine import make_engine

PROMPT = "seeded-prompt-Zq7 the patient's diagnosis is confidential"
SPAN_PAYLOAD = "seeded-span-Wx4 account balance 91234"
PASSWORD = "seeded password Kp3 never logged"
WRONG_PASSWORD = "wrong password Tb8 never logged"
UPSTREAM_SECRET = "sk-operator-seeded-0123456789abcdef"
DEBUG_LOGGERS = ("watchkeep", "authlib", "httpx", "uvicorn")


def _otlp_span(payload: str) -> dict[str, Any]:
    now = time.time_ns()
    return {
        "traceId": secrets.token_hex(16),
        "spanId": secrets.token_hex(8),
        "name": "llm call",
        "startTimeUnixNano": str(now - 10**6),
        "endTimeUnixNano": str(now),
        "attributes": [
            {"key": "input.value", "value": {"stringValue": payload}},
            {"key": "gen_ai.prompt.0.content", "value": {"stringValue": payload}},
        ],
    }


def _login(server: str, email: str, password: str) -> httpx.Response:
    with httpx.Client(base_url=server, timeout=30) as browser:
        form = browser.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None
        return browser.post(
            "/login", data={"email": email, "password": password, "csrf_token": token.group(1), "next": "/"}
        )


def _record_text(record: logging.LogRecord) -> str:
    return f"{logging.Formatter().format(record)} {vars(record)!r}"


def test_a_full_run_logs_no_secret_and_no_payload(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WK_SEEDED_SECRET", UPSTREAM_SECRET)
    caplog.set_level(logging.INFO)
    for name in DEBUG_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    email = f"logs-{uuid.uuid4().hex[:8]}@example.com"
    secrets_seen: list[str] = [PROMPT, SPAN_PAYLOAD, PASSWORD, WRONG_PASSWORD, UPSTREAM_SECRET, CLIENT_SECRET]
    with RecordingUpstream() as upstream, oidc_provider(email) as provider:
        deployment = {"backend": "openai_compatible", "api_key_env": "WK_SEEDED_SECRET"}
        config = {
            "routes": [
                {"name": "m", "deployments": [{"name": "a", "base_url": upstream.url(), **deployment}]},
                {
                    "name": "bad",
                    "deployments": [{"name": "b", "base_url": upstream.url("status401"), **deployment}],
                },
            ],
        }
        sso = {
            "oidc_issuer": provider.issuer,
            "oidc_client_id": CLIENT_ID,
            "oidc_client_secret": CLIENT_SECRET,
        }
        with live_gateway(tmp_path, database_url, config, egress_allow_networks="127.0.0.0/8", **sso) as gw:
            admin = new_key(database_url, "admin", project_of(gw))
            with httpx.Client(base_url=gw.url, timeout=30) as client:
                created = client.post(
                    "/api/v1/keys",
                    json={"role": "member", "name": "logs"},
                    headers={"Authorization": f"Bearer {admin}"},
                )
                assert created.status_code == 201, created.text
                minted = created.json()["key"]
                secrets_seen += [gw.key, admin, minted]
                bearer = {"Authorization": f"Bearer {minted}"}
                answered = client.post("/v1/chat/completions", json=chat(PROMPT), headers=bearer)
                assert answered.status_code == 200, answered.text
                failed = client.post(
                    "/v1/chat/completions", json={**chat(PROMPT), "model": "bad"}, headers=bearer
                )
                assert failed.status_code >= 400
                span = _otlp_span(SPAN_PAYLOAD)
                exported = client.post(
                    "/v1/traces",
                    json={"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]},
                    headers=bearer,
                )
                assert exported.status_code == 200, exported.text
            people = gw.app.state.services.people
            people.create_user(email, "Logs Person", PASSWORD)
            assert _login(gw.url, email, WRONG_PASSWORD).status_code == 401
            assert _login(gw.url, email, PASSWORD).status_code == 303
            with httpx.Client(base_url=gw.url, timeout=30, follow_redirects=True) as browser:
                landed = browser.get("/auth/oidc/login")
                assert landed.status_code == 200
                assert "wk_session" in browser.cookies
                session = browser.cookies["wk_session"]
                secrets_seen.append(session)
            gw.wait_spans(str(span["traceId"]), 1)  # written: the writer's logs are in too
    secrets_seen.append(upstream.LEAK)
    assert len(caplog.records) > 10  # the run did log: the scan looked at something
    leaks = [
        (record.name, seen[:12])
        for record in caplog.records
        for seen in secrets_seen
        if seen in _record_text(record)
    ]
    assert leaks == []


def test_a_failed_statement_does_not_show_its_values(database_url: str) -> None:
    """SQL errors are logged with tracebacks; their text must not carry the bound payload."""
    engine = make_engine(database_url)
    try:
        with pytest.raises(DBAPIError) as failed, engine.begin() as conn:
            conn.execute(text("SELECT CAST(:payload AS INTEGER) FROM no_such_table"), {"payload": PROMPT})
    finally:
        engine.dispose()
    assert PROMPT not in str(failed.value)
    assert "hidden due to hide_parameters" in str(failed.value)
