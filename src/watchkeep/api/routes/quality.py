"""Quality from feedback: ``GET /api/v1/quality``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime

from watchkeep.api.auth import require, services
from watchkeep.api.routes._monitoring import AUTH_ERRORS, time_range
from watchkeep.security.authz import Permission
from watchkeep.security.keys import Principal

router = APIRouter(prefix="/api/v1", tags=["quality"])
DAY_NS = 86400 * 1_000_000_000


@router.get("/quality", responses=AUTH_ERRORS)
def get_quality(
    request: Request,
    principal: Annotated[Principal, Depends(require(Permission.SCORES_READ))],
    name: Annotated[str, Query(min_length=1, max_length=256, description="The score name.")],
    start: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    end: Annotated[AwareDatetime | None, Query(alias="to")] = None,
    model: Annotated[str | None, Query(max_length=256)] = None,
    confidence: Annotated[float, Query(gt=0.5, lt=1)] = 0.95,
) -> dict[str, Any]:
    """Accuracy, precision, recall, F1 (per class, macro, micro) and the confusion matrix for
    labelled categorical scores; a mean for numeric ones; a rate for booleans — each with
    its sample count and confidence interval (default window: the last day)."""
    start_ns, end_ns = time_range(start, end, DAY_NS)
    report = services(request).monitoring.quality.report(
        principal.project_id, name, start_ns, end_ns, model=model, confidence=confidence
    )
    return asdict(report)
