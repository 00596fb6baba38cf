"""Authentication and per-route authorisation as FastAPI dependencies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from watchkeep.api.errors import ApiError
from watchkeep.api.services import Services
from watchkeep.security.authz import Permission
from watchkeep.security.keys import Principal

bearer = HTTPBearer(auto_error=False, description="A project API key: `Authorization: Bearer wk_...`")


def services(request: Request) -> Services:
    """The app's services."""
    svc: Services = request.app.state.services
    return svc


def authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    """The caller behind the request's bearer key; 401 when there is none or it is bad."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(401, "unauthorized", "missing API key: send 'Authorization: Bearer <key>'")
    principal = services(request).keys.verify(credentials.credentials)
    if principal is None:
        raise ApiError(401, "unauthorized", "invalid or revoked API key")
    return principal


def require(permission: Permission) -> Callable[..., Principal]:
    """A dependency that authenticates and demands ``permission`` (403 without it)."""

    def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        principal = authenticate(request, credentials)
        if not principal.can(permission):
            raise ApiError(403, "forbidden", f"this key's role lacks the '{permission}' permission")
        request.state.principal = principal
        return principal

    dependency.__name__ = f"require_{permission.value.replace(':', '_')}"
    return dependency
