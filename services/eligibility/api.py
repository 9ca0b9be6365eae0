"""Eligibility's HTTP routes: `POST /v1/evaluate`, the assessment with no side effect (the
catalog versions' and calls' routes are services/eligibility/policy/api.py's)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request

from services.eligibility.deps import PartnerOrOperatorDep, PolicySnapshotDep
from services.eligibility.handlers import evaluate as evaluate_application
from shared.kernel.errors import MalformedJson
from shared.web.openapi import APPLICATION_BODY, AUTHENTICATED, problems

router = APIRouter()


@router.post(
    "/v1/evaluate", tags=["eligibility"], openapi_extra=APPLICATION_BODY, responses=problems(400, *AUTHENTICATED)
)
async def evaluate(request: Request, principal: PartnerOrOperatorDep, repo: PolicySnapshotDep) -> dict[str, Any]:
    """The receipt the application would get now: under the open call for its program and year
    (that call's catalog version), else under the latest version."""
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise MalformedJson(f"the request body is not valid JSON: {exc}") from exc
    return await evaluate_application(repo, body)
