"""Drift of a feature between a reference window and a current window: ``GET /api/v1/drift``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime

from watchkeep.api.auth import require, services
from watchkeep.api.errors import ApiError
from watchkeep.api.routes._monitoring import AUTH_ERRORS, CallFilter, time_range
from watchkeep.monitor.drift import Method
from watchkeep.monitor.drift_service import ReferenceSpec
from watchkeep.monitor.features import FEATURES, FeatureRequest, UnknownFeature
from watchkeep.security.authz import Permission
from watchkeep.security.keys import Principal

router = APIRouter(prefix="/api/v1", tags=["drift"])
DAY_NS = 86400 * 1_000_000_000


@router.get("/drift", responses=AUTH_ERRORS)
def get_drift(
    request: Request,
    principal: Annotated[Principal, Depends(require(Permission.METRICS_READ))],
    calls: Annotated[CallFilter, Depends()],
    feature: Annotated[str, Query(max_length=64, description=f"One of: {', '.join(FEATURES)}")],
    reference_from: AwareDatetime,
    reference_to: AwareDatetime,
    current_from: AwareDatetime | None = None,
    current_to: AwareDatetime | None = None,
    score_name: Annotated[str | None, Query(max_length=256)] = None,
    method: Method = "auto",
    threshold: Annotated[float | None, Query(gt=0)] = None,
) -> dict[str, Any]:
    """The drift test (chosen by sample size unless ``method`` is given) of ``feature``;
    a closed reference window is summarised once and cached."""
    ref_start, ref_end = time_range(reference_from, reference_to)
    cur_start, cur_end = time_range(current_from, current_to, DAY_NS)
    try:
        req = FeatureRequest(feature, calls.to_filter(), score_name)
        report = services(request).monitoring.drift.compute(
            principal.project_id,
            req,
            ReferenceSpec(start_ns=ref_start, end_ns=ref_end),
            cur_start,
            cur_end,
            method=method,
            threshold=threshold,
        )
    except (UnknownFeature, ValueError) as exc:
        raise ApiError(422, "invalid_request", str(exc)) from exc
    out = asdict(report)
    stat = out["result"]["statistic"]
    out["result"]["statistic"] = None if stat != stat else stat  # NaN is not JSON
    return out
