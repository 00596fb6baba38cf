"""Gated promotion over HTTP: an alias's promotion policy, the evidence preview, and promote.

``/api/v1/{models|prompts}/{name}/aliases/{alias}/policy`` (GET ``registry:read``; PUT and
DELETE ``registry:admin``), ``.../gates?version=N`` (what a promotion to N would be judged
on) and ``POST .../promote`` (``registry:write``; ``force`` needs ``registry:admin`` and a
reason). A refused promotion is a 409 whose ``reasons`` list every unmet gate; the plain
``PUT .../aliases/{alias}`` goes through the same check. Every lookup is in the key's project.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from watchkeep.api.auth import require, services
from watchkeep.api.errors import ApiError
from watchkeep.api.openapi import errors
from watchkeep.api.registry_schemas import AliasEventOut, event_out
from watchkeep.api.routes.monitors import actor_of
from watchkeep.api.routes.promotion_schemas import (
    GatesOut,
    PromoteIn,
    PromotionPolicyIn,
    PromotionPolicyOut,
    check_force,
    gate_out,
    policy_out,
    refused,
)
from watchkeep.api.routes.registry import (
    AUTH,
    INVALID,
    NOT_FOUND,
    PLURAL,
    Alias,
    Name,
    Reader,
    Writer,
    _answers,
    _record,
    _record_event,
)
from watchkeep.registry.policy import PromotionPolicy, decide_promotion
from watchkeep.registry.promotion import PromotionRefused, PromotionService, policy_to_json
from watchkeep.registry.repository import Kind
from watchkeep.security.authz import Permission
from watchkeep.security.keys import Principal

router = APIRouter(prefix="/api/v1", tags=["registry"])
Admin = Annotated[Principal, Depends(require(Permission.REGISTRY_ADMIN))]
GATED = errors((409, "Refused by the alias's promotion policy: `reasons` lists every unmet gate"))


def _service(request: Request) -> PromotionService:
    return services(request).promotions


def _policy_routes(kind: Kind) -> None:
    """The policy, gates and promote endpoints under ``/{models|prompts}/{name}/aliases/{alias}``."""
    base = f"/{PLURAL[kind]}/{{name}}/aliases/{{alias}}"

    @router.get(
        f"{base}/policy",
        response_model=PromotionPolicyOut,
        responses={**AUTH, **NOT_FOUND},
        name=f"{kind}_policy",
    )
    def get_policy(request: Request, principal: Reader, name: Name, alias: Alias) -> PromotionPolicyOut:
        """The alias's promotion policy (404 when the alias moves without gates)."""
        with _answers():
            found = _service(request).policy(principal.project_id, kind, name, alias)
        if found is None:
            raise ApiError(404, "not_found", f"{name}@{alias} has no promotion policy")
        return policy_out(name, alias, found)

    @router.put(
        f"{base}/policy",
        response_model=PromotionPolicyOut,
        responses={**AUTH, **NOT_FOUND, **INVALID},
        name=f"{kind}_set_policy",
    )
    def set_policy(
        request: Request, principal: Admin, name: Name, alias: Alias, body: PromotionPolicyIn
    ) -> PromotionPolicyOut:
        """Create or replace the alias's promotion policy."""
        with _answers():
            policy = body.to_policy()
            _service(request).set_policy(
                principal.project_id, kind, name, alias, policy, actor=actor_of(principal)
            )
        gates = ", ".join(g.dataset for g in policy.required_gates) or "no gate"
        services(request).audit.record(
            actor=actor_of(principal),
            action="promotion_policy.set",
            project_id=principal.project_id,
            target=f"{kind}:{name}@{alias}",
            after=policy_to_json(policy),
        )
        _record(
            request,
            principal,
            "policy",
            kind,
            f"{name}@{alias}",
            f"set the promotion policy of {name}@{alias} ({gates})",
        )
        return policy_out(name, alias, policy)

    @router.delete(
        f"{base}/policy", status_code=204, responses={**AUTH, **NOT_FOUND}, name=f"{kind}_delete_policy"
    )
    def delete_policy(request: Request, principal: Admin, name: Name, alias: Alias) -> Response:
        """Remove the alias's policy: it moves freely again."""
        with _answers():
            removed = _service(request).delete_policy(principal.project_id, kind, name, alias)
        if not removed:
            raise ApiError(404, "not_found", f"{name}@{alias} has no promotion policy")
        services(request).audit.record(
            actor=actor_of(principal),
            action="promotion_policy.delete",
            project_id=principal.project_id,
            target=f"{kind}:{name}@{alias}",
        )
        _record(
            request,
            principal,
            "policy",
            kind,
            f"{name}@{alias}",
            f"removed the promotion policy of {name}@{alias}",
        )
        return Response(status_code=204)

    @router.get(
        f"{base}/gates", response_model=GatesOut, responses={**AUTH, **NOT_FOUND}, name=f"{kind}_gates"
    )
    def gates(
        request: Request,
        principal: Reader,
        name: Name,
        alias: Alias,
        version: Annotated[int, Query(ge=1, le=2**31 - 1, description="The candidate version.")],
    ) -> GatesOut:
        """What a promotion of the alias to ``version`` would be judged on, gate by gate."""
        service = _service(request)
        with _answers():
            policy = service.policy(principal.project_id, kind, name, alias)
            evidence = service.evidence(principal.project_id, kind, name, alias, version)
        if policy is None:
            return GatesOut(name=name, alias=alias, version=version, gated=False, allowed=True, gates=[])
        results = {e.requirement.dataset: e.outcome for e in evidence}
        allowed = decide_promotion(
            policy, gate_results=results, actor_role="member", force=False, reason=None
        )
        out = []
        for e in evidence:
            one = PromotionPolicy((e.requirement,))
            met = decide_promotion(one, gate_results=results, actor_role="member", force=False, reason=None)
            out.append(gate_out(e, met.allowed))
        return GatesOut(
            name=name, alias=alias, version=version, gated=True, allowed=allowed.allowed, gates=out
        )

    @router.post(
        f"{base}/promote",
        response_model=AliasEventOut,
        responses={**AUTH, **NOT_FOUND, **GATED, **INVALID},
        name=f"{kind}_promote",
    )
    def promote(
        request: Request, principal: Writer, name: Name, alias: Alias, body: PromoteIn
    ) -> Response | AliasEventOut:
        """Move the alias to ``version`` if its gates pass (``promote``), or past them by force
        (``forced``, ``registry:admin`` and a reason); a plain ``move`` when the alias is not gated."""
        can_force = check_force(principal, body.force, body.reason)
        try:
            with _answers():
                event, _ = _service(request).promote(
                    principal.project_id,
                    kind,
                    name,
                    alias,
                    body.version,
                    actor=actor_of(principal),
                    can_force=can_force,
                    force=body.force,
                    reason=body.reason,
                )
        except PromotionRefused as exc:
            return refused(exc)
        verb = {"promote": "promoted", "forced": "force-promoted"}.get(event.kind, "moved")
        _record_event(
            request, principal, kind, verb, event.from_version, event.to_version, name, alias, event.reason
        )
        return event_out(event)


for _kind in PLURAL:
    _policy_routes(_kind)
