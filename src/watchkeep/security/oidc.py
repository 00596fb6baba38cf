"""Signing in to the console with OpenID Connect (authorization code flow with PKCE).

authlib builds the authorization request and exchanges the code (client authentication,
PKCE S256); joserfc (authlib's own JOSE library, which replaces the deprecated
``authlib.jose``) verifies the ID token against the provider's published keys. We keep
only the policy: discovery cached for an hour, keys fetched again once when a token names
an unknown one, asymmetric algorithms only (never ``none`` or HMAC), the issuer, audience,
expiry and the nonce of this very login checked, and the address used only when the
provider says it is verified.

Who may sign in (docs/decisions/0022-oidc-and-csp.md): an existing, enabled account whose
e-mail address equals the verified one. A person without an account gets one only through
an invitation to that same address, carried through the login; SSO never creates accounts
on its own, so a provider shared with other tenants cannot mint members.
"""

from __future__ import annotations

import ipaddress
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from watchkeep.config import Settings
from watchkeep.security.people import PeopleService
from watchkeep.store.people_repository import SessionUser, User, UserExists, normalise_email
from watchkeep.store.people_tokens import InvitationInvalid

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")
DISCOVERY_SECONDS = 3600.0
LEEWAY_SECONDS = 60
NO_ACCOUNT = "there is no account for that address; ask an administrator for an invitation and open its link"


class OidcError(Exception):
    """A sign-on that did not succeed; ``message`` is safe to show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """The parts of the provider's discovery document the flow uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


@dataclass(frozen=True, slots=True)
class LoginStart:
    """Where to send the browser, and what to keep (in a cookie) until it comes back."""

    url: str
    state: str
    nonce: str
    code_verifier: str


@dataclass(frozen=True, slots=True)
class VerifiedIdentity:
    """What a verified ID token says about the person."""

    subject: str
    email: str
    name: str


def _loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def issuer_problems(issuer: str, *, secure: bool) -> list[str]:
    """Why ``issuer`` may not be used: only https, or http on loopback outside secure mode
    (``WATCHKEEP_SECURE`` refuses plain http altogether)."""
    parts = urlsplit(issuer)
    if parts.scheme == "https" and parts.hostname:
        return []
    if parts.scheme == "http" and not secure and _loopback(parts.hostname or ""):
        return []
    where = "" if not secure else " in secure mode"
    return [f"WATCHKEEP_OIDC_ISSUER must be an https URL{where} (got {issuer!r})"]


def settings_problems(settings: Settings, *, secure: bool | None = None) -> list[str]:
    """What is wrong with the OpenID Connect settings (nothing when it is off); ``secure``
    judges them as secure mode would (default: ``settings.secure``)."""
    if not settings.oidc_issuer:
        return []
    problems = issuer_problems(settings.oidc_issuer, secure=settings.secure if secure is None else secure)
    if not settings.oidc_client_id:
        problems.append("WATCHKEEP_OIDC_CLIENT_ID is required with WATCHKEEP_OIDC_ISSUER")
    if "openid" not in settings.oidc_scopes.split():
        problems.append("WATCHKEEP_OIDC_SCOPES must include openid")
    return problems


class OidcClient:
    """The relying party for one provider; caches its discovery document and keys."""

    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str | None,
        *,
        scopes: str = "openid email profile",
        clock: Callable[[], float] = time.time,
        timeout: float = 10.0,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self._secret = client_secret
        self.scopes = scopes
        self._clock = clock
        self._timeout = timeout
        self._metadata: tuple[float, ProviderMetadata] | None = None
        self._keys: KeySet | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcClient | None:
        """The client the settings describe; None when sign-on is off; ``ValueError``
        when the settings are unusable."""
        if not settings.oidc_issuer:
            return None
        problems = settings_problems(settings)
        if problems:
            raise ValueError("; ".join(problems))
        secret = settings.oidc_client_secret
        return cls(
            settings.oidc_issuer,
            settings.oidc_client_id or "",
            None if secret is None else secret.get_secret_value(),
            scopes=settings.oidc_scopes,
        )

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as http:
                response = await http.get(url, headers={"Accept": "application/json"})
                response.raise_for_status()
                body = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise OidcError(f"the sign-on provider did not answer ({type(error).__name__})") from None
        if not isinstance(body, dict):
            raise OidcError("the sign-on provider answered with something other than a JSON object")
        return body

    async def metadata(self) -> ProviderMetadata:
        """The provider's endpoints (discovery, cached for an hour); its issuer must be ours."""
        now = self._clock()
        if self._metadata is not None and now - self._metadata[0] < DISCOVERY_SECONDS:
            return self._metadata[1]
        doc = await self._get_json(f"{self.issuer}/.well-known/openid-configuration")
        fields = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
        if not all(isinstance(doc.get(name), str) for name in fields):
            raise OidcError("the sign-on provider's discovery document lacks its endpoints")
        if doc["issuer"].rstrip("/") != self.issuer:
            raise OidcError("the sign-on provider names another issuer than the one configured")
        found = ProviderMetadata(*(str(doc[name]) for name in fields))
        self._metadata = (now, found)
        return found

    async def _key_set(self, *, refresh: bool) -> KeySet:
        if self._keys is None or refresh:
            doc = await self._get_json((await self.metadata()).jwks_uri)
            try:
                self._keys = KeySet.import_key_set(doc)  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError, KeyError):
                raise OidcError("the sign-on provider's keys could not be read") from None
        return self._keys

    def _oauth(self, redirect_uri: str) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.client_id,
            client_secret=self._secret,
            scope=self.scopes,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            timeout=self._timeout,
        )

    async def start(self, redirect_uri: str) -> LoginStart:
        """A new authorization request with fresh state, nonce and PKCE verifier."""
        endpoint = (await self.metadata()).authorization_endpoint
        state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
        verifier = verifier + secrets.token_urlsafe(16)  # 64+ characters, as RFC 7636 wants
        async with self._oauth(redirect_uri) as oauth:
            url, _ = oauth.create_authorization_url(
                endpoint, state=state, code_verifier=verifier, nonce=nonce
            )
        return LoginStart(url=str(url), state=state, nonce=nonce, code_verifier=verifier)

    async def finish(
        self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str
    ) -> VerifiedIdentity:
        """Exchange ``code`` and verify the ID token it brings; ``OidcError`` otherwise."""
        meta = await self.metadata()
        try:
            async with self._oauth(redirect_uri) as oauth:
                token = await oauth.fetch_token(meta.token_endpoint, code=code, code_verifier=code_verifier)
        except Exception as error:  # authlib raises its own errors, httpx's and ValueError
            raise OidcError(f"the sign-on provider refused the code ({type(error).__name__})") from None
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise OidcError("the sign-on provider sent no ID token")
        return await self.verify(id_token, nonce=nonce)

    async def _decode(self, id_token: str) -> dict[str, Any]:
        for refresh in (False, True):  # a key rotated since the last fetch: fetch once more
            keys = await self._key_set(refresh=refresh)
            try:
                return dict(jwt.decode(id_token, keys, algorithms=list(ALGORITHMS)).claims)
            except InvalidKeyIdError:
                if refresh:
                    break
            except (JoseError, ValueError):
                break
        raise OidcError("the ID token's signature does not verify")

    async def verify(self, id_token: str, *, nonce: str) -> VerifiedIdentity:
        """The identity in ``id_token`` once its signature and claims check out."""
        claims = await self._decode(id_token)
        registry = JWTClaimsRegistry(
            now=int(self._clock()),
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": (await self.metadata()).issuer},
            aud={"essential": True, "value": self.client_id},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            registry.validate(claims)
        except JoseError as error:
            raise OidcError(f"the ID token is not valid for this login ({error.error})") from None
        audience = claims["aud"]
        if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != self.client_id:
            raise OidcError("the ID token was issued to another client")
        email = claims.get("email")
        if not isinstance(email, str) or claims.get("email_verified") is not True:
            raise OidcError("the sign-on provider did not vouch for an e-mail address")
        name = claims.get("name")
        return VerifiedIdentity(
            subject=str(claims["sub"]),
            email=normalise_email(email),
            name=name[:100] if isinstance(name, str) else "",
        )


def _invited_user(people: PeopleService, identity: VerifiedIdentity, invitation: str) -> User:
    """A new account for an invited address, accepting the invitation (no password: SSO only)."""
    found = people.repository.pending_invitation(invitation)
    if found is None:
        raise OidcError("this invitation is unknown, used, revoked or expired")
    if found.email != identity.email:
        raise OidcError(f"this invitation is for another address than {identity.email}")
    try:
        user = people.repository.create_user(
            identity.email, identity.name or identity.email.split("@")[0], None
        )
    except UserExists:
        raise OidcError("an account for this address exists: sign in, then open the invitation") from None
    try:
        people.repository.accept_invitation(invitation, user)
    except InvitationInvalid as refused:
        raise OidcError(str(refused)) from None
    return user


def sign_in(
    people: PeopleService,
    identity: VerifiedIdentity,
    *,
    invitation: str | None = None,
    user_agent: str | None = None,
    address: str | None = None,
) -> tuple[str, SessionUser]:
    """A console session for the verified identity (its token and user); ``OidcError``
    when no enabled account matches and no invitation to that address was brought."""
    found = people.repository.credentials(identity.email)
    if found is None:
        if invitation is None:
            raise OidcError(NO_ACCOUNT)
        user = _invited_user(people, identity, invitation)
    elif found.disabled:
        raise OidcError("this account is disabled")
    else:
        user = found.user
        if invitation is not None:
            try:
                people.repository.accept_invitation(invitation, user)
            except InvitationInvalid as refused:
                raise OidcError(str(refused)) from None
    now = time.time_ns()
    people.repository.record_login(user.id, now)
    return people.repository.create_session(
        user, lifetime_ns=people.session_ns, user_agent=user_agent, address=address, now=now
    )
