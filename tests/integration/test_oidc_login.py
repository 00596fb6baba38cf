"""Signing in with OpenID Connect against a provider the test starts (authlib's real client
flow: discovery, PKCE, code exchange, ID token checked with the provider's keys). The attacks
first: a forged state, a lying provider (nonce, audience, issuer, key, unverified address),
a replayed callback, no account, a disabled account, an invitation to someone else; then
the flows that must work (both databases)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.support.apps import Api
from tests.support.console import console_user, project_of
from tests.support.oidc_provider import Provider, oidc_provider, sso_settings
from watchkeep.api.wiring import Services
from watchkeep.app import create_app
from watchkeep.config import Settings
from watchkeep.security.oidc import NO_ACCOUNT, settings_problems
from watchkeep.security.secure_mode import secure_mode_problems
from watchkeep.store.engine import make_engine
from watchkeep.store.tables import users


@pytest.fixture
def email() -> str:
    return f"sso-{uuid.uuid4().hex[:8]}@example.com"


@pytest.fixture
def provider(email: str) -> Iterator[Provider]:
    with oidc_provider(email) as running:
        yield running


@pytest.fixture
def settings(database_url: str, tmp_path: Path, provider: Provider) -> Settings:
    return sso_settings(database_url, tmp_path, provider)


def _svc(api: Api) -> Services:
    svc: Services = api.app.state.services
    return svc


def start(api: Api, **params: str) -> str:
    """Begin a sign-on; the provider's approval's redirect back (a callback path and query)."""
    api.client.cookies.clear()
    begun = api.client.get("/auth/oidc/login", params=params, follow_redirects=False)
    assert begun.status_code == 303, begun.text
    approved = httpx.get(begun.headers["location"], follow_redirects=False, timeout=10)
    assert approved.status_code == 302
    back = urlsplit(approved.headers["location"])
    assert back.path == "/auth/oidc/callback"
    return f"{back.path}?{back.query}"


def sso(api: Api, **params: str) -> Any:
    return api.client.get(start(api, **params), follow_redirects=False)


def signed_in(response: Any) -> bool:
    return response.status_code == 303 and "wk_session" in response.headers.get("set-cookie", "")


def test_a_person_without_an_account_is_refused(api: Api, email: str) -> None:
    refused = sso(api)
    assert refused.status_code == 401
    assert NO_ACCOUNT in refused.text
    assert "wk_session" not in refused.headers.get("set-cookie", "")
    assert _svc(api).people.repository.user_by_email(email) is None
    refusals = _svc(api).audit.entries(action="login.sso_failed", limit=500)
    assert any(NO_ACCOUNT in (e.detail or "") for e in refusals)


def test_a_forged_state_or_a_missing_cookie_is_refused_before_the_code_is_used(
    api: Api, provider: Provider, email: str
) -> None:
    console_user(api.database_url, project_of(api.database_url, api.key), email=email)
    callback = start(api)
    kept = dict(api.client.cookies)

    def restore() -> None:
        api.client.cookies.clear()
        for name, value in kept.items():
            api.client.cookies.set(name, value)

    forged = callback.replace("state=", "state=x")
    assert api.client.get(forged, follow_redirects=False).status_code == 401
    assert provider.token_requests == 0
    api.client.cookies.clear()  # the answer arrives in another browser
    assert api.client.get(callback, follow_redirects=False).status_code == 401
    assert provider.token_requests == 0
    restore()
    assert signed_in(api.client.get(callback, follow_redirects=False))
    replay = api.client.get(callback, follow_redirects=False)  # the login cookie is gone
    assert replay.status_code == 401


@pytest.mark.parametrize(
    "tamper",
    [
        {"nonce": "another-login"},
        {"aud": "another-client"},
        {"iss": "https://evil.example"},
        {"exp": 1},
        {"foreign_key": True},
        {"email_verified": False},
        {"email_verified": "true"},
    ],
)
def test_a_lying_provider_signs_nobody_in(
    api: Api, provider: Provider, email: str, tamper: dict[str, Any]
) -> None:
    console_user(api.database_url, project_of(api.database_url, api.key), email=email)
    provider.tamper = tamper
    refused = sso(api)
    assert refused.status_code == 401
    assert "wk_session" not in refused.headers.get("set-cookie", "")
    provider.tamper = {}
    assert signed_in(sso(api))


def test_a_disabled_account_is_refused(api: Api, email: str) -> None:
    user = console_user(api.database_url, project_of(api.database_url, api.key), email=email)
    _svc(api).people.disable_user(user.user_id)
    refused = sso(api)
    assert refused.status_code == 401
    assert "disabled" in refused.text


def _invite(api: Api, invited: str) -> str:
    project = project_of(api.database_url, api.key)
    repo = _svc(api).people.repository
    found = repo.project_organisation(project)
    assert found is not None
    organisation = repo.organisation_by_id(found[1])
    assert organisation is not None
    token, _ = _svc(api).people.invite(None, organisation, invited, "viewer", project)
    return token


def test_an_invitation_to_another_address_makes_no_account(api: Api, email: str) -> None:
    token = _invite(api, f"other-{uuid.uuid4().hex[:8]}@example.com")
    refused = sso(api, invitation=token)
    assert refused.status_code == 401
    assert _svc(api).people.repository.user_by_email(email) is None


def test_an_invited_person_gets_an_account_for_the_invited_address(api: Api, email: str) -> None:
    token = _invite(api, email)
    project = project_of(api.database_url, api.key)
    done = sso(api, invitation=token, next=f"/p/{project}/")
    assert signed_in(done)
    assert done.headers["location"] == f"/p/{project}/"
    user = _svc(api).people.repository.user_by_email(email)
    assert user is not None
    access = _svc(api).people.access(user.id, project)
    assert access is not None
    assert access.role == "viewer"
    engine = make_engine(api.database_url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(select(users.c.password_hash).where(users.c.id == user.id)).scalar_one()
    finally:
        engine.dispose()
    assert stored is None  # no password: this account signs in only through the provider
    assert api.client.get(f"/p/{project}/", follow_redirects=False).status_code == 200
    again = sso(api, invitation=token)  # used once
    assert again.status_code == 401


def test_an_existing_account_signs_in_and_lands_where_it_asked(api: Api, email: str) -> None:
    project = project_of(api.database_url, api.key)
    console_user(api.database_url, project, email=email.upper().replace("@EXAMPLE.COM", "@example.com"))
    done = sso(api, next=f"/p/{project}/traces")
    assert signed_in(done)
    assert done.headers["location"] == f"/p/{project}/traces"
    assert api.client.get(f"/p/{project}/traces", follow_redirects=False).status_code == 200
    escaped = sso(api, next="//evil.example/")
    assert signed_in(escaped)
    assert escaped.headers["location"] == "/"
    signed = [
        e for e in _svc(api).audit.entries(action="login.sso", limit=500) if e.target == f"user:{email}"
    ]
    assert len(signed) == 2  # each sign-on is in the audit log


def test_the_login_page_offers_sso_only_when_configured(api: Api, settings: Settings) -> None:
    api.client.cookies.clear()
    page = api.client.get("/login?next=/p/x/")
    assert 'href="/auth/oidc/login?next=/p/x/"' in page.text
    plain = settings.model_copy(update={"oidc_issuer": None})
    with TestClient(create_app(plain)) as client:
        assert "Sign in with SSO" not in client.get("/login").text
        off = client.get("/auth/oidc/login", follow_redirects=False)
        assert off.status_code == 503
        assert "not configured" in off.text


def test_issuers_must_be_https_except_on_loopback_and_never_in_secure_mode(tmp_path: Path) -> None:
    def problems(issuer: str, *, secure: bool = False) -> list[str]:
        return settings_problems(
            Settings(home=tmp_path, oidc_issuer=issuer, oidc_client_id="c", secure=secure)
        )

    assert problems("https://login.example.com") == []
    assert problems("http://127.0.0.1:9000") == []
    assert problems("http://login.example.com") != []
    assert problems("http://127.0.0.1:9000", secure=True) != []
    assert problems("https://login.example.com", secure=True) == []
    assert settings_problems(Settings(home=tmp_path, oidc_issuer="https://x.example")) != []  # no client id
    loopback = Settings(home=tmp_path, oidc_issuer="http://127.0.0.1:9000", oidc_client_id="c")
    assert any("WATCHKEEP_OIDC_ISSUER" in p for p in secure_mode_problems(loopback))
