"""Eligibility's HTTP routes: `POST /v1/evaluate`, the assessment with no side effect."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request

from services.eligibility.deps import PartnerOrOperatorDep
from services.eligibility.handlers import receipt_for
from services.eligibility.schemas import CatalogListing
from shared.kernel.errors import FieldProblem, MalformedJson, ValidationFailed
from shared.policy.catalog import load_catalog
from shared.policy.validation import validate_application
from shared.web.openapi import APPLICATION_BODY, AUTHENTICATED, PUBLIC, problems

router = APIRouter()


@router.post(
    "/v1/evaluate", tags=["eligibility"], openapi_extra=APPLICATION_BODY, responses=problems(400, *AUTHENTICATED)
)
async def evaluate(request: Request, principal: PartnerOrOperatorDep) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise MalformedJson(f"the request body is not valid JSON: {exc}") from exc
    catalog = load_catalog()
    application, errors = validate_application(body, catalog)
    if errors or application is None:
        raise ValidationFailed(
            "the application has invalid fields", errors=[FieldProblem(e.field, e.message) for e in errors]
        )
    return receipt_for(application, catalog)


@router.get("/v1/catalog", tags=["eligibility"], responses=problems(*PUBLIC))
async def catalog() -> CatalogListing:
    current = load_catalog()
    return CatalogListing(catalog_version=current.version, items=current.public_listing())
