"""Authentication and per-route authorisation as FastAPI dependencies.

The key check itself is ``security.bearer`` (shared with the gateway's fast path);
this module maps its refusals to the REST error shape.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from watchkeep.api.errors import ApiError
from watchkeep.api.wiring import Services
from watchkeep.security.authz import Permission
from watchkeep.security.bearer import KeyRefused, principal_for
from watchkeep.security.keys import Principal

bearer = HTTPBearer(auto_error=False, description="A project API key: `Authorization: Bearer wk_...`")


def services(request: Request) -> Services:
    """The app's services."""
    svc: Services = request.app.state.services
    return svc


async def authenticate(request: Request) -> Principal:
    """The caller behind the request's bearer key; 401 when there is none or it is bad."""
    try:
        return await principal_for(services(request).keys, request.headers.get("authorization"))
    except KeyRefused as exc:
        raise ApiError(401, "unauthorized", exc.message) from None


def require(permission: Permission) -> Callable[..., Awaitable[Principal]]:
    """A dependency that authenticates and demands ``permission`` (403 without it)."""

    async def dependency(
        request: Request,
        # Declared so the OpenAPI document names the bearer scheme; ``authenticate`` parses.
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        principal = await authenticate(request)
        if not principal.can(permission):
            raise ApiError(403, "forbidden", f"this key's role lacks the '{permission}' permission")
        request.state.principal = principal
        return principal

    dependency.__name__ = f"require_{permission.value.replace(':', '_')}"
    return dependency
