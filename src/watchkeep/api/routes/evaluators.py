"""Evaluators: the registry, and online evaluators run by the worker on live traffic."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from watchkeep.api.auth import require, services
from watchkeep.api.errors import ApiError
from watchkeep.api.openapi import errors
from watchkeep.api.routes._monitoring import AUTH_ERRORS
from watchkeep.api.schemas import RowIdPath, check_json_bounds
from watchkeep.evaluators import InvalidParams, UnknownEvaluator
from watchkeep.monitor.online import NameTaken
from watchkeep.monitor.quota import QuotaExceeded
from watchkeep.monitor.spec import contains_nul
from watchkeep.security.authz import Permission
from watchkeep.security.keys import Principal

router = APIRouter(prefix="/api/v1", tags=["evaluators"])
PARAMS_MAX_BYTES = 64 * 1024
PARAMS_MAX_DEPTH = 32
PARAMS_MAX_KEYS = 5000


class OnlineEvaluatorIn(BaseModel):
    """Run ``evaluator`` on a ``sample_rate`` share of new LLM calls; scores are named ``name``."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    evaluator: str = Field(min_length=1, max_length=64)
    params: dict[str, Any] | None = Field(
        default=None,
        description=f"The evaluator's parameters: at most {PARAMS_MAX_BYTES} bytes as JSON, "
        f"{PARAMS_MAX_DEPTH} levels deep.",
    )
    sample_rate: float = Field(default=0.1, gt=0, le=1)
    model: str | None = Field(default=None, max_length=256)

    @model_validator(mode="before")
    @classmethod
    def _bounded(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("params") is not None:
            check_json_bounds(
                data["params"],
                "params",
                max_bytes=PARAMS_MAX_BYTES,
                max_depth=PARAMS_MAX_DEPTH,
                max_keys=PARAMS_MAX_KEYS,
            )
        if contains_nul(data):
            raise ValueError("text fields may not contain NUL characters")
        return data


@router.get("/evaluators", responses=AUTH_ERRORS)
def list_evaluators(
    request: Request, _: Annotated[Principal, Depends(require(Permission.MONITORS_READ))]
) -> dict[str, Any]:
    """Every registered evaluator with its description and parameter schema."""
    return {"items": [asdict(i) for i in services(request).monitoring.evaluators.info()]}


@router.get("/online-evaluators", responses=AUTH_ERRORS)
def list_online(
    request: Request, principal: Annotated[Principal, Depends(require(Permission.MONITORS_READ))]
) -> dict[str, Any]:
    """The project's online evaluators."""
    return {"items": [asdict(c) for c in services(request).monitoring.online.configs(principal.project_id)]}


@router.post("/online-evaluators", status_code=201, responses={**AUTH_ERRORS, **errors(409)})
def create_online(
    request: Request,
    body: OnlineEvaluatorIn,
    principal: Annotated[Principal, Depends(require(Permission.MONITORS_WRITE))],
) -> dict[str, Any]:
    """Start evaluating new calls (calls stored before this request are not evaluated).

    Regular expressions in the parameters run on RE2 (linear time); what RE2 cannot run is
    refused. A project has at most ``quota_evaluators`` online evaluators.
    """
    svc = services(request)
    try:
        config = svc.monitoring.online.create(
            principal.project_id,
            body.name,
            body.evaluator,
            body.params,
            body.sample_rate,
            body.model,
            limit=svc.settings.quota_evaluators,
        )
    except QuotaExceeded as exc:
        raise ApiError(422, "quota_exceeded", exc.message) from exc
    except UnknownEvaluator as exc:
        raise ApiError(422, "unknown_evaluator", exc.message) from exc
    except InvalidParams as exc:
        raise ApiError(422, "invalid_params", str(exc)) from exc
    except NameTaken as exc:
        raise ApiError(409, "conflict", str(exc)) from exc
    return asdict(config)


@router.delete(
    "/online-evaluators/{evaluator_id}",
    status_code=204,
    responses={**AUTH_ERRORS, **errors((404, "No such online evaluator"))},
)
def delete_online(
    request: Request,
    evaluator_id: RowIdPath,
    principal: Annotated[Principal, Depends(require(Permission.MONITORS_WRITE))],
) -> Response:
    """Stop an online evaluator (its scores stay)."""
    if not services(request).monitoring.online.delete(principal.project_id, evaluator_id):
        raise ApiError(404, "not_found", "no such online evaluator")
    return Response(status_code=204)
