"""A minimal OpenID Connect provider on loopback, so the real authlib client flow runs.

Discovery, JWKS (an RSA key made at start), an authorize endpoint that approves the
configured person at once and redirects back with a code, and a token endpoint that checks
the client secret, the redirect URI and the PKCE verifier and issues an RS256 ID token.
``Person`` and the ``tamper`` knobs let attack tests make it lie (another nonce, another
audience, a key it does not publish, an unverified address).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from tests.support.servers import free_port, serve
from watchkeep.config import Settings

CLIENT_ID = "watchkeep-console"
CLIENT_SECRET = "oidc-client-secret-never-logged-3f9a"


@dataclass
class Person:
    """Who the provider signs in."""

    email: str
    email_verified: bool = True
    name: str = "Sso Person"
    subject: str = field(default_factory=lambda: secrets.token_hex(8))


@dataclass
class Provider:
    """The running provider: its issuer URL, who it approves, and how it may lie."""

    issuer: str
    person: Person
    key: RSAKey
    tamper: dict[str, Any] = field(default_factory=dict)  # claims to override, or "foreign_key"
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    token_requests: int = 0

    def id_token(self, grant: dict[str, Any]) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": self.person.subject,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": grant["nonce"],
            "email": self.person.email,
            "email_verified": self.person.email_verified,
            "name": self.person.name,
        }
        overrides = {k: v for k, v in self.tamper.items() if k != "foreign_key"}
        claims.update(overrides)
        key = (
            RSAKey.generate_key(2048, parameters={"kid": "foreign"})
            if self.tamper.get("foreign_key")
            else self.key
        )
        return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _client_ok(request: Request, client_id: str | None, client_secret: str | None) -> bool:
    basic = request.headers.get("authorization", "")
    if basic.startswith("Basic "):
        client_id, _, client_secret = base64.b64decode(basic[6:]).decode().partition(":")
    return client_id == CLIENT_ID and client_secret == CLIENT_SECRET


def provider_app(provider: Provider) -> FastAPI:
    """The provider's endpoints."""
    app = FastAPI()

    @app.get("/.well-known/openid-configuration")
    def discovery() -> dict[str, Any]:
        return {
            "issuer": provider.issuer,
            "authorization_endpoint": f"{provider.issuer}/authorize",
            "token_endpoint": f"{provider.issuer}/token",
            "jwks_uri": f"{provider.issuer}/jwks",
            "response_types_supported": ["code"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
        }

    @app.get("/jwks")
    def jwks() -> dict[str, Any]:
        return dict(KeySet([provider.key]).as_dict(private=False))

    @app.get("/authorize")
    def authorize(request: Request) -> RedirectResponse:
        q = request.query_params
        assert q["client_id"] == CLIENT_ID
        assert q["response_type"] == "code"
        assert q["code_challenge_method"] == "S256"
        assert "openid" in q["scope"].split()
        code = secrets.token_urlsafe(16)
        provider.codes[code] = {k: q[k] for k in ("redirect_uri", "nonce", "code_challenge")}
        return RedirectResponse(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}", 302)

    @app.post("/token")
    def token(
        request: Request,
        grant_type: str = Form(),
        code: str = Form(),
        redirect_uri: str = Form(),
        code_verifier: str = Form(),
        client_id: str | None = Form(None),
        client_secret: str | None = Form(None),
    ) -> JSONResponse:
        provider.token_requests += 1
        grant = provider.codes.pop(code, None)
        refused = (
            grant_type != "authorization_code"
            or grant is None
            or not _client_ok(request, client_id, client_secret)
            or grant["redirect_uri"] != redirect_uri
            or grant["code_challenge"] != _s256(code_verifier)
        )
        if refused or grant is None:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        body = {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 300}
        return JSONResponse({**body, "id_token": provider.id_token(grant)})

    return app


@contextmanager
def oidc_provider(email: str) -> Iterator[Provider]:
    """A provider on a free loopback port approving ``email``, stopped afterwards."""
    port = free_port()
    provider = Provider(
        f"http://127.0.0.1:{port}", Person(email), RSAKey.generate_key(2048, parameters={"kid": "k1"})
    )
    server, thread = serve(provider_app(provider), port)
    try:
        yield provider
    finally:
        server.should_exit = True
        thread.join(30)


def sso_settings(database_url: str, home: Path, provider: Provider) -> Settings:
    """A server's settings with single sign-on through ``provider``."""
    return Settings(
        home=home,
        database_url=database_url,
        ingest_decode_workers=0,
        log_format="text",
        key_cache_seconds=0,
        oidc_issuer=provider.issuer,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
    )
