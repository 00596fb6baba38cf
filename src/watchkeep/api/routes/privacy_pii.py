"""A project's PII actions and phone regions: ``GET/PUT /api/v1/privacy/pii``.

Reading needs ``audit:read`` (what is hidden is itself a compliance fact); changing needs
``privacy:admin`` and is recorded in the audit log with the before and after.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from watchkeep.api.auth import require, services
from watchkeep.api.errors import ApiError
from watchkeep.api.openapi import errors
from watchkeep.api.routes.monitors import actor_of
from watchkeep.sdk.redact import ACTIONS, ENTITIES, Action
from watchkeep.security.authz import Permission
from watchkeep.security.keys import Principal
from watchkeep.security.pii import MAX_REGIONS, PRESIDIO_ENTITIES

router = APIRouter(prefix="/api/v1/privacy", tags=["privacy"])


class PiiSettingsOut(BaseModel):
    """The effective action per entity, and what can be set."""

    enabled: bool = Field(description="False when redaction is off server-wide (WATCHKEEP_PII_REDACTION=0).")
    actions: dict[str, Action]
    entities: list[str]
    choices: list[str]
    phone_regions: list[str] = Field(
        description='Regions whose national phone numbers (without +) are detected; default ["US"].'
    )


class PiiSettingsIn(BaseModel):
    """Actions to store; entities left out keep the default (mask)."""

    actions: dict[str, str] = Field(max_length=32)
    phone_regions: list[str] | None = Field(
        default=None,
        max_length=MAX_REGIONS,
        description="ISO 3166 region codes (1 to 8); left out: unchanged.",
    )


def _out(enabled: bool, actions: dict[str, Action], regions: tuple[str, ...]) -> PiiSettingsOut:
    return PiiSettingsOut(
        enabled=enabled,
        actions=actions,
        entities=[*ENTITIES, *PRESIDIO_ENTITIES],
        choices=list(ACTIONS),
        phone_regions=list(regions),
    )


@router.get("/pii", response_model=PiiSettingsOut, responses=errors(401, 403))
def get_pii(
    request: Request, principal: Annotated[Principal, Depends(require(Permission.AUDIT_READ))]
) -> PiiSettingsOut:
    """The key's project's PII actions (defaults filled in)."""
    pii = services(request).pii
    return _out(pii.enabled, pii.actions(principal.project_id), pii.regions(principal.project_id))


@router.put("/pii", response_model=PiiSettingsOut, responses=errors(400, 401, 403, 422))
def put_pii(
    request: Request,
    principal: Annotated[Principal, Depends(require(Permission.PRIVACY_ADMIN))],
    body: PiiSettingsIn,
) -> PiiSettingsOut:
    """Replace the project's PII actions (and phone regions, when given); applies to writes
    within a few seconds."""
    svc = services(request)
    actor = actor_of(principal)
    project_id = principal.project_id
    before = {**svc.pii.actions(project_id), "phone_regions": list(svc.pii.regions(project_id))}
    try:
        actions = svc.pii.update(project_id, body.actions, actor, body.phone_regions)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from exc
    regions = svc.pii.regions(project_id)
    after = {**actions, "phone_regions": list(regions)}
    svc.audit.record(
        actor=actor,
        action="privacy.pii.update",
        project_id=principal.project_id,
        target="privacy/pii",
        before=before,
        after=after,
    )
    return _out(svc.pii.enabled, actions, regions)
